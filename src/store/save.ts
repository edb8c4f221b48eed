// SPDX-License-Identifier: Apache-2.0
// Saves images of the store as an OCI image layout: a directory, or a tar of one streamed to a file or a stream.

import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { SandboxError } from '../errors.js';
import { digestHex, sha256 } from '../image/digest.js';
import { isRecord, type BlobRef } from '../image/manifest.js';
import { openBlob, readJsonBlob } from '../image/oci-layout.js';
import { tarHeader, tarPadding, tarTrailer, type TarEntry } from '../image/tar-writer.js';
import type { ImageRecord } from './references.js';
import { readStoredImage } from './stored-image.js';

/**
 * Options of {@link ImageStore.save}.
 *
 * @example
 * ```ts
 * await store.save(['127.0.0.1:5000/busybox:1'], './busybox-oci', { format: 'oci-dir' });
 * ```
 */
export interface SaveOptions {
  /**
   * `'oci-archive'` (default): a tar of an OCI image layout, what `docker save -o FILE` and
   * `skopeo copy … oci-archive:FILE` write; `'oci-dir'`: the layout as a directory, which must
   * not exist yet (or be empty).
   */
  format?: 'oci-archive' | 'oci-dir';
  /** Aborts the save (ERR_CANCELED); a file or directory being written is removed. */
  signal?: AbortSignal;
}

/** @internal One image to save and the `name:tag` references to give it in index.json. */
export interface SaveItem {
  record: ImageRecord;
  names: string[];
}

const refNameAnnotation = 'org.opencontainers.image.ref.name';
const imageNameAnnotation = 'io.containerd.image.name';
const ociLayout = `${JSON.stringify({ imageLayoutVersion: '1.0.0' })}\n`;
// Archive entries get a fixed time, so that saving the same images twice gives the same bytes.
const epoch = new Date(0);

/**
 * @internal Writes `items` from the store at `root` as an OCI image layout: `oci-layout`,
 * `index.json` (one entry per name, annotated `org.opencontainers.image.ref.name` with the full
 * reference, and `io.containerd.image.name` for Docker and containerd; one entry without
 * annotations for an image without a name) and `blobs/sha256/`. Every blob is checked against
 * its digest as it is copied. A file or directory destination is written beside its place and
 * renamed there when complete.
 * @throws SandboxError ERR_INVALID_OPTION (an `oci-dir` destination that exists and is not
 *   empty, or is a stream), ERR_DIGEST_MISMATCH / ERR_IMAGE_NOT_FOUND (a blob of the store is
 *   corrupt or missing), ERR_CANCELED.
 */
export async function saveImages(root: string, items: SaveItem[], destination: string | Writable, options: SaveOptions): Promise<void> {
  const format = options.format ?? 'oci-archive';
  const { index, blobs } = await layoutOf(root, items);
  try {
    if (format === 'oci-dir') {
      if (typeof destination !== 'string') throw new SandboxError('ERR_INVALID_OPTION', 'Invalid image store argument: format `oci-dir` needs a directory path as destination, not a stream');
      await writeDirectory(root, index, blobs, destination, options.signal);
    } else if (typeof destination === 'string') {
      await writeBeside(destination, async (temp) => {
        await pipeline(Readable.from(archive(root, index, blobs, options.signal), { objectMode: false }), createWriteStream(temp, { flags: 'wx' }), { signal: options.signal });
      });
    } else {
      await pipeline(Readable.from(archive(root, index, blobs, options.signal), { objectMode: false }), destination, { signal: options.signal });
    }
  } catch (error) {
    if (options.signal?.aborted) throw new SandboxError('ERR_CANCELED', 'Saving images was canceled', { cause: options.signal.reason });
    throw error;
  }
}

/** A blob of the layout: from the store, or (a converted manifest) from memory. */
type LayoutBlob = BlobRef & { what: string; bytes?: Buffer };

const ociManifestType = 'application/vnd.oci.image.manifest.v1+json';
const dockerManifestType = 'application/vnd.docker.distribution.manifest.v2+json';
// Docker schema 2 media types → OCI's, as `skopeo copy … oci:` converts them.
const ociMediaTypes: Record<string, string> = {
  'application/vnd.docker.container.image.v1+json': 'application/vnd.oci.image.config.v1+json',
  'application/vnd.docker.image.rootfs.diff.tar': 'application/vnd.oci.image.layer.v1.tar',
  'application/vnd.docker.image.rootfs.diff.tar.gzip': 'application/vnd.oci.image.layer.v1.tar+gzip',
  'application/vnd.docker.image.rootfs.foreign.diff.tar': 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip': 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
};

/**
 * index.json and the blobs (each once, manifests first) of the layout holding `items`. A Docker
 * schema 2 manifest is written as the OCI manifest of the same config and layers (so its digest
 * changes): tools that read OCI layouts (skopeo, containerd) skip index entries of Docker media types.
 */
async function layoutOf(root: string, items: SaveItem[]): Promise<{ index: string; blobs: LayoutBlob[] }> {
  const manifests: object[] = [];
  const blobs = new Map<string, LayoutBlob>();
  for (const { record, names } of items) {
    const image = await readStoredImage(root, record);
    const raw = await readJsonBlob(root, record, 'manifest');
    let manifest: LayoutBlob = { ...record, what: 'manifest' };
    let mediaType = isRecord(raw) && typeof raw.mediaType === 'string' ? raw.mediaType : ociManifestType;
    if (mediaType === dockerManifestType && isRecord(raw)) {
      const bytes = Buffer.from(JSON.stringify(ociManifestOf(raw)));
      manifest = { digest: sha256(bytes), size: bytes.length, what: 'manifest', bytes };
      mediaType = ociManifestType;
    }
    const platform = image.os && image.architecture ? { platform: { architecture: image.architecture, os: image.os } } : {};
    const descriptor = { mediaType, digest: manifest.digest, size: manifest.size, ...platform };
    if (names.length === 0) manifests.push(descriptor);
    for (const name of names) manifests.push({ ...descriptor, annotations: { [imageNameAnnotation]: name, [refNameAnnotation]: name } });
    blobs.set(manifest.digest, manifest);
    blobs.set(image.manifest.config.digest, { ...image.manifest.config, what: 'config' });
    for (const layer of image.layers) blobs.set(layer.digest, { digest: layer.digest, size: layer.size, what: 'layer' });
  }
  const index = `${JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests })}\n`;
  return { index, blobs: [...blobs.values()] };
}

function ociManifestOf(docker: Record<string, unknown>): object {
  const convert = (descriptor: unknown) => (isRecord(descriptor) && typeof descriptor.mediaType === 'string' ? { ...descriptor, mediaType: ociMediaTypes[descriptor.mediaType] ?? descriptor.mediaType } : descriptor);
  return { ...docker, mediaType: ociManifestType, config: convert(docker.config), layers: Array.isArray(docker.layers) ? docker.layers.map(convert) : docker.layers };
}

/** The bytes of a layout blob, checked against its digest as they stream. */
async function* blobContent(root: string, blob: LayoutBlob): AsyncGenerator<Buffer> {
  if (blob.bytes) yield blob.bytes;
  else for await (const chunk of openBlob(root, blob, blob.what)) yield chunk as Buffer;
}

async function* archive(root: string, index: string, blobs: LayoutBlob[], signal: AbortSignal | undefined): AsyncGenerator<Buffer> {
  const file = (path: string, size: number): TarEntry => ({ path, type: 'File', mode: 0o644, uid: 0, gid: 0, size, mtime: epoch });
  const directory = (path: string): TarEntry => ({ path, type: 'Directory', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: epoch });
  for (const [name, text] of [['oci-layout', ociLayout], ['index.json', index]]) {
    const bytes = Buffer.from(text);
    yield Buffer.concat([tarHeader(file(name, bytes.length)), bytes, tarPadding(bytes.length)]);
  }
  yield tarHeader(directory('blobs/'));
  yield tarHeader(directory('blobs/sha256/'));
  for (const blob of blobs) {
    signal?.throwIfAborted();
    yield tarHeader(file(`blobs/sha256/${digestHex(blob.digest, 'blob')}`, blob.size));
    yield* blobContent(root, blob);
    yield tarPadding(blob.size);
  }
  yield tarTrailer;
}

async function writeDirectory(root: string, index: string, blobs: LayoutBlob[], destination: string, signal: AbortSignal | undefined): Promise<void> {
  const existing = await readdir(destination).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    if (error.code === 'ENOTDIR') return ['(a file)'];
    throw error;
  });
  if (existing.length > 0) throw new SandboxError('ERR_INVALID_OPTION', `Invalid image store argument: the destination ${destination} exists and is not an empty directory`);
  await writeBeside(destination, async (temp) => {
    await mkdir(join(temp, 'blobs', 'sha256'), { recursive: true });
    await writeFile(join(temp, 'oci-layout'), ociLayout);
    for (const blob of blobs) {
      signal?.throwIfAborted();
      await pipeline(Readable.from(blobContent(root, blob), { objectMode: false }), createWriteStream(join(temp, 'blobs', 'sha256', digestHex(blob.digest, 'blob')), { flags: 'wx' }), { signal });
    }
    // index.json last: a layout is complete once it has one.
    await writeFile(join(temp, 'index.json'), index);
  });
}

/** Runs `write` on a temp path beside `destination`, then renames it there; the temp path goes on failure. */
async function writeBeside(destination: string, write: (temp: string) => Promise<void>): Promise<void> {
  const parent = dirname(destination);
  if (!(await stat(parent).then((s) => s.isDirectory(), () => false))) {
    throw new SandboxError('ERR_INVALID_OPTION', `Invalid image store argument: the directory of the destination ${destination} does not exist`);
  }
  const temp = join(parent, `.${basename(destination)}.tmp-${randomBytes(6).toString('hex')}`);
  try {
    await write(temp);
    await rename(temp, destination);
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    throw error;
  }
}
