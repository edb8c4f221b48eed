// SPDX-License-Identifier: Apache-2.0
// Test images for the registry tests: the busybox fixture, and a two-platform image index made from it.
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { busyboxOciLayout } from '../../helpers/probe-image.js';

/** The GOARCH of this host, and another one. */
export const hostArch = process.arch === 'x64' ? 'amd64' : process.arch;
export const otherArch = hostArch === 'amd64' ? 'arm64' : 'amd64';

/** What {@link multiPlatformLayout} made. */
export interface MultiPlatformLayout {
  /** OCI layout whose tag `multi` is an image index. */
  dir: string;
  tag: 'multi';
  /** Manifest digests of the two entries: linux/<hostArch> (the busybox fixture) and linux/<otherArch>. */
  hostDigest: string;
  otherDigest: string;
}

/** Digest of `data` and its path in a layout. */
async function writeBlob(layout: string, data: Buffer): Promise<{ digest: string; size: number }> {
  const hex = createHash('sha256').update(data).digest('hex');
  await fs.writeFile(path.join(layout, 'blobs/sha256', hex), data);
  return { digest: `sha256:${hex}`, size: data.length };
}

async function readBlob(layout: string, digest: string): Promise<Buffer> {
  return fs.readFile(path.join(layout, 'blobs/sha256', digest.slice('sha256:'.length)));
}

/**
 * Copies the busybox fixture layout into `scratch` and adds tag `multi`: an image index with
 * the fixture's manifest as linux/<host arch>, and as linux/<other arch> a manifest with the same
 * layers and a config saying that architecture (so its digest differs; it is never run).
 */
export async function multiPlatformLayout(scratch: string): Promise<MultiPlatformLayout> {
  const dir = path.join(scratch, 'multi-oci');
  await fs.cp((await busyboxOciLayout()).dir, dir, { recursive: true });
  const index = JSON.parse(await fs.readFile(path.join(dir, 'index.json'), 'utf8'));
  const hostEntry = index.manifests[0];
  const manifest = JSON.parse((await readBlob(dir, hostEntry.digest)).toString());
  const config = JSON.parse((await readBlob(dir, manifest.config.digest)).toString());
  const otherConfig = await writeBlob(dir, Buffer.from(JSON.stringify({ ...config, architecture: otherArch })));
  const otherManifest = await writeBlob(dir, Buffer.from(JSON.stringify({ ...manifest, config: { ...manifest.config, ...otherConfig } })));
  const manifestType = 'application/vnd.oci.image.manifest.v1+json';
  const imageIndex = await writeBlob(dir, Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      { mediaType: manifestType, digest: hostEntry.digest, size: hostEntry.size, platform: { os: 'linux', architecture: hostArch } },
      { mediaType: manifestType, ...otherManifest, platform: { os: 'linux', architecture: otherArch } },
    ],
  })));
  index.manifests.push({ mediaType: 'application/vnd.oci.image.index.v1+json', ...imageIndex, annotations: { 'org.opencontainers.image.ref.name': 'multi' } });
  await fs.writeFile(path.join(dir, 'index.json'), JSON.stringify(index));
  return { dir, tag: 'multi', hostDigest: hostEntry.digest, otherDigest: otherManifest.digest };
}
