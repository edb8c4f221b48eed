// SPDX-License-Identifier: Apache-2.0
// readOciImage on layouts written by umoci and skopeo, and on copies of them edited to be wrong.
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { dir } from 'tmp-promise';
import { isSandboxError } from '../../../src/errors.js';
import { readOciImage } from '../../../src/image/oci-layout.js';
import { removeUmociImage, umociImage, V3_CONFIG } from '../../helpers/umoci-image.js';

const scratch = dir({ prefix: 'nsbox-oci-layout-test-', unsafeCleanup: true });

test.after.always(async () => {
  await (await scratch).cleanup();
  await removeUmociImage();
});

const hostArch = process.arch === 'x64' ? 'amd64' : process.arch;
const otherArch = hostArch === 'amd64' ? 'arm64' : 'amd64';
const refName = 'org.opencontainers.image.ref.name';

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { os: string; architecture: string };
}

let copies = 0;
/** A private copy of a layout, free to edit. */
async function copyLayout(layout: string): Promise<string> {
  const copy = path.join((await scratch).path, `copy-${copies++}`);
  await fs.cp(layout, copy, { recursive: true });
  return copy;
}

async function readIndex(layout: string): Promise<{ manifests: Descriptor[] }> {
  return JSON.parse(await fs.readFile(path.join(layout, 'index.json'), 'utf8'));
}

async function writeIndex(layout: string, manifests: Descriptor[]): Promise<void> {
  await fs.writeFile(path.join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests }));
}

async function tagged(layout: string, tag: string): Promise<Descriptor> {
  const found = (await readIndex(layout)).manifests.find((m) => m.annotations?.[refName] === tag);
  if (!found) throw new Error(`no ${tag} in ${layout}`);
  return found;
}

/** Stores `content` as a blob and returns its descriptor. */
async function writeBlob(layout: string, mediaType: string, content: string): Promise<Descriptor> {
  const hex = createHash('sha256').update(content).digest('hex');
  await fs.writeFile(path.join(layout, 'blobs/sha256', hex), content);
  return { mediaType, digest: `sha256:${hex}`, size: Buffer.byteLength(content) };
}

function blobFile(layout: string, digest: string): string {
  return path.join(layout, 'blobs/sha256', digest.slice('sha256:'.length));
}

test('reads the config and layers of a tagged umoci image', async (t) => {
  const { layout } = await umociImage();
  const image = await readOciImage(layout, { tag: 'v3' });
  t.is(image.digest, (await tagged(layout, 'v3')).digest);
  t.deepEqual(image.config, V3_CONFIG);
  t.is(image.layers.length, 3);
  const manifest = JSON.parse(await fs.readFile(blobFile(layout, image.digest), 'utf8'));
  const config = JSON.parse(await fs.readFile(blobFile(layout, manifest.config.digest), 'utf8'));
  t.deepEqual(
    image.layers,
    manifest.layers.map((l: Descriptor, i: number) => ({ digest: l.digest, size: l.size, compression: 'gzip', diffId: config.rootfs.diff_ids[i] })),
  );
  t.is((await readOciImage(layout, { tag: 'v1' })).layers.length, 1);
});

test('a layout with one image needs no tag; Docker schema 2 media types are read', async (t) => {
  const { docker } = await umociImage();
  const image = await readOciImage(docker);
  t.deepEqual(image.config, V3_CONFIG);
  t.deepEqual(image.layers.map((l) => l.compression), ['gzip', 'gzip', 'gzip']);
  const manifest = JSON.parse(await fs.readFile(blobFile(docker, image.digest), 'utf8'));
  t.is(manifest.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
});

test('uncompressed layers are read as such', async (t) => {
  const { uncompressed } = await umociImage();
  const image = await readOciImage(uncompressed);
  t.deepEqual(image.layers.map((l) => l.compression), ['none', 'none', 'none']);
  // An uncompressed layer's blob digest is its diffID.
  t.deepEqual(image.layers.map((l) => l.digest), image.layers.map((l) => l.diffId));
});

test('zstd layers are read as such, with the diffIDs of the gzip original', async (t) => {
  const { zstd, layout } = await umociImage();
  const image = await readOciImage(zstd);
  t.deepEqual(image.layers.map((l) => l.compression), ['zstd', 'zstd', 'zstd']);
  t.deepEqual(image.layers.map((l) => l.diffId), (await readOciImage(layout, { tag: 'v3' })).layers.map((l) => l.diffId));
});

test('several images and no tag: asks for a tag', async (t) => {
  const { layout } = await umociImage();
  const error = await t.throwsAsync(readOciImage(layout));
  t.like(error, { code: 'ERR_IMAGE_NOT_FOUND' });
  t.regex(error!.message, /pass a tag/);
});

test('an unknown tag is not found, and the message names it and the known tags', async (t) => {
  const { layout } = await umociImage();
  const error = await t.throwsAsync(readOciImage(layout, { tag: 'nope' }));
  t.like(error, { code: 'ERR_IMAGE_NOT_FOUND' });
  t.regex(error!.message, /`nope`.*tags: base, v1, v2, v3/);
});

test('a directory that is not a layout is not found, naming the path', async (t) => {
  const missing = path.join((await scratch).path, 'no-such-layout');
  const error = await t.throwsAsync(readOciImage(missing));
  t.like(error, { code: 'ERR_IMAGE_NOT_FOUND' });
  t.true(error!.message.includes(missing));
});

test('an image index is resolved to the linux manifest of this host', async (t) => {
  const { layout } = await umociImage();
  const copy = await copyLayout(layout);
  const v1 = await tagged(copy, 'v1');
  const v3 = await tagged(copy, 'v3');
  const index = await writeBlob(copy, 'application/vnd.oci.image.index.v1+json', JSON.stringify({
    schemaVersion: 2,
    manifests: [
      { ...v1, annotations: {}, platform: { os: 'linux', architecture: otherArch } },
      { ...v1, annotations: {}, platform: { os: 'windows', architecture: hostArch } },
      { ...v3, annotations: {}, platform: { os: 'linux', architecture: hostArch } },
      { ...v1, annotations: {}, platform: { os: 'unknown', architecture: 'unknown' } },
    ],
  }));
  await writeIndex(copy, [{ ...index, annotations: { [refName]: 'multi' } }]);
  const image = await readOciImage(copy, { tag: 'multi' });
  t.is(image.digest, v3.digest);
  t.is(image.layers.length, 3);
});

test('an image index without this host platform: not found, naming the platform', async (t) => {
  const { layout } = await umociImage();
  const copy = await copyLayout(layout);
  const v1 = await tagged(copy, 'v1');
  const index = await writeBlob(copy, 'application/vnd.docker.distribution.manifest.list.v2+json', JSON.stringify({
    schemaVersion: 2,
    manifests: [{ ...v1, annotations: {}, platform: { os: 'linux', architecture: otherArch } }],
  }));
  await writeIndex(copy, [index]);
  const error = await t.throwsAsync(readOciImage(copy));
  t.like(error, { code: 'ERR_IMAGE_NOT_FOUND' });
  t.regex(error!.message, new RegExp(`linux/${hostArch}`));
});

test('malformed index.json and malformed blobs are ERR_IMAGE_INVALID', async (t) => {
  const { layout } = await umociImage();
  const copy = await copyLayout(layout);
  await fs.writeFile(path.join(copy, 'index.json'), '{"manifests": [');
  t.like(await t.throwsAsync(readOciImage(copy)), { code: 'ERR_IMAGE_INVALID' });

  const garbage = await writeBlob(copy, 'application/vnd.oci.image.manifest.v1+json', '{not json');
  await writeIndex(copy, [garbage]);
  const error = await t.throwsAsync(readOciImage(copy));
  t.like(error, { code: 'ERR_IMAGE_INVALID' });
  t.true(error!.message.includes(garbage.digest));

  const noLayers = await writeBlob(copy, 'application/vnd.oci.image.manifest.v1+json', '{"schemaVersion": 2}');
  await writeIndex(copy, [noLayers]);
  t.like(await t.throwsAsync(readOciImage(copy)), { code: 'ERR_IMAGE_INVALID' });
});

test('a digest that is not sha256:<hex> never becomes a path', async (t) => {
  const { layout } = await umociImage();
  const copy = await copyLayout(layout);
  const v1 = await tagged(copy, 'v1');
  await writeIndex(copy, [{ ...v1, digest: 'sha256:../../../../etc/passwd' }]);
  t.like(await t.throwsAsync(readOciImage(copy)), { code: 'ERR_IMAGE_INVALID' });
  await writeIndex(copy, [{ ...v1, digest: `sha512:${'a'.repeat(128)}` }]);
  t.like(await t.throwsAsync(readOciImage(copy)), { code: 'ERR_UNSUPPORTED' });
});

test('a corrupt manifest or config blob is ERR_DIGEST_MISMATCH naming the blob', async (t) => {
  const { layout } = await umociImage();
  for (const which of ['manifest', 'config'] as const) {
    const copy = await copyLayout(layout);
    const v1 = await tagged(copy, 'v1');
    const manifest = JSON.parse(await fs.readFile(blobFile(copy, v1.digest), 'utf8'));
    const digest = which === 'manifest' ? v1.digest : manifest.config.digest;
    const bytes = await fs.readFile(blobFile(copy, digest));
    bytes[bytes.length - 2] ^= 0x20;
    await fs.writeFile(blobFile(copy, digest), bytes);
    const error = await t.throwsAsync(readOciImage(copy, { tag: 'v1' }));
    t.like(error, { code: 'ERR_DIGEST_MISMATCH' }, which);
    t.true(error!.message.includes(digest), which);
  }
});

test('a missing blob is ERR_IMAGE_NOT_FOUND naming its path', async (t) => {
  const { layout } = await umociImage();
  const copy = await copyLayout(layout);
  const v1 = await tagged(copy, 'v1');
  await fs.rm(blobFile(copy, v1.digest));
  const error = await t.throwsAsync(readOciImage(copy, { tag: 'v1' }));
  t.like(error, { code: 'ERR_IMAGE_NOT_FOUND' });
  t.true(error!.message.includes(blobFile(copy, v1.digest)));
});
