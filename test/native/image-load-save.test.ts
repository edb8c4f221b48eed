// SPDX-License-Identifier: Apache-2.0
// ImageStore.load and save: archives written by skopeo (and Docker's layouts rearranged with GNU
// tar) go in; what save writes is read back by skopeo and umoci; hostile archives leave nothing.
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import test from 'ava';
import { dir } from 'tmp-promise';
import { ImageStore, run, type ImageInfo } from '../../src/index.js';
import { imageArchives, tool, treeOf, type ImageArchives } from '../helpers/image-archives.js';
import { rawTar, sha256Of, type RawEntry } from '../helpers/raw-tar.js';
import { removeUmociImage, SECRET_MTIME, umociImage, V3_CONFIG, type UmociImage } from '../helpers/umoci-image.js';
import { hostArch, multiPlatformLayout, otherArch } from '../registry/helpers/images.js';

const scratch = dir({ prefix: 'nsbox-load-save-', unsafeCleanup: true });
let image: UmociImage;
let archives: ImageArchives;
/** The v3 image as loaded from its OCI layout: the reference the others are compared with. */
let v3: ImageInfo;

test.before(async () => {
  image = await umociImage();
  const archivesDir = path.join((await scratch).path, 'archives');
  await fs.mkdir(archivesDir);
  archives = await imageArchives(image.layout, archivesDir);
  const store = await freshStore();
  v3 = (await store.load(image.layout, { reference: 'localhost/umoci' })).find((i) => i.references.includes('localhost/umoci:v3'))!;
});
test.after.always(async () => {
  await removeUmociImage();
  await (await scratch).cleanup();
});

let stores = 0;
async function freshStore(): Promise<ImageStore> {
  return ImageStore.open({ root: path.join((await scratch).path, `store-${stores++}`) });
}
async function scratchPath(name: string): Promise<string> {
  return path.join((await scratch).path, `${name}-${stores++}`);
}

const code = (error: unknown) => (error as { code?: string }).code;

/** Runs `script` (busybox sh) in an image of `store`, as the image's user, from its working dir. */
async function shIn(store: ImageStore, reference: string, script: string): Promise<string> {
  const { layers, config } = await store.resolve(reference, { rootless: false });
  const result = await run({ image: { layers, config: { ...config, entrypoint: [] } }, command: ['/bin/busybox', 'sh', '-c', script] });
  return result.stdout;
}

// What v3's three layers add up to: layer 2's whiteouts and layer 3's opaque data/.
const v3Check = 'B=/bin/busybox; $B cat /etc/hostname; $B ls /data; $B test -e /etc/motd || echo no-motd; $B id -u';
const v3Expected = 'changed\nnew.txt\nno-motd\n1000\n';

test('an OCI layout directory: every image of index.json, its tags completed by the reference', async (t) => {
  const store = await freshStore();
  const loaded = await store.load(image.layout, { reference: 'localhost/umoci' });
  t.deepEqual(loaded.map((i) => i.references.filter((r) => !r.includes('@'))).sort(), [['localhost/umoci:base'], ['localhost/umoci:v1'], ['localhost/umoci:v2'], ['localhost/umoci:v3']]);
  const info = loaded.find((i) => i.references.includes('localhost/umoci:v3'))!;
  t.deepEqual(info.config, V3_CONFIG);
  t.is(info.layers.length, 3);
  t.true(info.references.includes(`localhost/umoci@${info.digest}`));
  t.deepEqual(await store.inspect('localhost/umoci:v3'), info);
  t.is(await shIn(store, 'localhost/umoci:v3', v3Check), v3Expected);
});

test('an oci-archive from skopeo: the bare tag needs a name; with one it loads, as the same image', async (t) => {
  const store = await freshStore();
  const before = await treeOf(store.root);
  const error = await t.throwsAsync(store.load(archives.ociArchive));
  t.is(code(error), 'ERR_INVALID_OPTION');
  t.regex(error!.message, /has no name \(only the tag `v3`\)/);
  t.deepEqual(await treeOf(store.root), before, 'nothing of the refused archive stays');

  const [info] = await store.load(archives.ociArchive, { reference: 'localhost/app' });
  t.deepEqual(info!.references, ['localhost/app:v3', `localhost/app@${v3.digest}`]);
  t.is(info!.digest, v3.digest);
  const [again] = await store.load(archives.ociArchive, { reference: 'localhost/other:1' });
  t.true(again!.references.includes('localhost/other:1'));
  t.is(await shIn(store, 'localhost/other:1', v3Check), v3Expected);
});

test('a docker-archive from skopeo, plain and gzip-compressed: named by RepoTags, layers kept uncompressed with their diffIDs', async (t) => {
  for (const archive of [archives.dockerArchive, archives.dockerArchiveGz]) {
    const store = await freshStore();
    const [info] = await store.load(archive);
    t.deepEqual(info!.references.filter((r) => !r.includes('@')), ['example.com/umoci:v3']);
    t.deepEqual(info!.layers.map((l) => l.diffId), v3.layers.map((l) => l.diffId));
    for (const layer of info!.layers) t.is(layer.digest, layer.diffId, 'an uncompressed layer is its own diffID');
    t.deepEqual(info!.config, V3_CONFIG);
    t.is(await shIn(store, 'example.com/umoci:v3', v3Check), v3Expected);
  }
});

test("docker save's own layouts: Docker ≤ 24 (<id>/layer.tar) and Docker 25+ (OCI layout plus manifest.json)", async (t) => {
  const store = await freshStore();
  const [legacy] = await store.load(archives.dockerLegacy);
  const [d25] = await store.load(archives.docker25);
  // Both hold the same config and layers, so the store keeps them as one image with both names.
  t.is(d25!.digest, legacy!.digest);
  t.deepEqual(d25!.references.filter((r) => !r.includes('@')), ['example.com/d25:v3', 'example.com/legacy:v3']);
  for (const info of [legacy!, d25!]) t.deepEqual(info.layers.map((l) => l.diffId), v3.layers.map((l) => l.diffId));
  t.is(await shIn(store, 'example.com/d25:v3', v3Check), v3Expected);
  t.is(await shIn(store, 'example.com/legacy:v3', v3Check), v3Expected);
});

test('a stream (stdin) loads like a file', async (t) => {
  const store = await freshStore();
  const [info] = await store.load(createReadStream(archives.dockerArchive), { reference: 'localhost/streamed:1' });
  t.deepEqual(info!.references.filter((r) => !r.includes('@')), ['example.com/umoci:v3', 'localhost/streamed:1']);
});

test('two loads of one archive at once, and a garbage collection meanwhile: both succeed, each blob stored once, no temp file left', async (t) => {
  const store = await freshStore();
  const [a, b] = await Promise.all([store.load(archives.dockerArchive), store.load(archives.dockerArchive), store.gc()]);
  t.is(a![0]!.digest, b![0]!.digest);
  const blobs = await fs.readdir(path.join(store.root, 'blobs/sha256'));
  t.deepEqual(blobs.filter((name) => name.startsWith('.tmp-')), []);
  t.is(blobs.length, 1 + 1 + 3, 'manifest, config and three layers');
  t.is(await shIn(store, 'example.com/umoci:v3', v3Check), v3Expected);
});

test('a multi-platform index: the host platform, or the one asked for', async (t) => {
  const store = await freshStore();
  const layout = await multiPlatformLayout(await scratchPath('multi'));
  const [host] = await store.load(layout.dir, { reference: 'localhost/multi' });
  t.is(host!.digest, layout.hostDigest);
  t.is(host!.architecture, hostArch);
  const [other] = await store.load(layout.dir, { reference: 'localhost/multi', platform: `linux/${otherArch}` });
  t.is(other!.digest, layout.otherDigest);
  const error = await t.throwsAsync(store.load(layout.dir, { reference: 'localhost/multi', platform: 'linux/s390x' }));
  t.is(code(error), 'ERR_IMAGE_NOT_FOUND');
});

/** The v3 layout's blobs and index, as raw tar entries an archive can be made of. */
async function layoutEntries(): Promise<{ entries: RawEntry[]; manifest: { layers: Array<{ digest: string }>; config: { digest: string } } }> {
  const index = JSON.parse(await fs.readFile(path.join(path.dirname(archives.ociArchive), 'd25', 'index.json'), 'utf8'));
  const blobsDir = path.join(path.dirname(archives.ociArchive), 'd25', 'blobs/sha256');
  const entries: RawEntry[] = [
    { path: 'oci-layout', body: '{"imageLayoutVersion":"1.0.0"}' },
    { path: 'index.json', body: JSON.stringify(index) },
  ];
  for (const name of await fs.readdir(blobsDir)) entries.push({ path: `blobs/sha256/${name}`, body: await fs.readFile(path.join(blobsDir, name)) });
  const manifest = JSON.parse(await fs.readFile(path.join(blobsDir, index.manifests[0].digest.slice(7)), 'utf8'));
  return { entries, manifest };
}

test('hostile and broken archives: a typed error naming the problem, and nothing left in the store', async (t) => {
  const { entries, manifest } = await layoutEntries();
  const layerPath = `blobs/sha256/${manifest.layers[0]!.digest.slice(7)}`;
  const docker = (extra: RawEntry[], item: object) => rawTar([...extra, { path: 'manifest.json', body: JSON.stringify([item]) }]);
  const blobOf = (digest: string) => entries.find((e) => e.path === `blobs/sha256/${digest.slice(7)}`)!.body as Buffer;
  // A docker save archive of the (uncompressed) v3 image: c.json and l0.tar… as Docker names them.
  const dockerFiles: RawEntry[] = [{ path: 'c.json', body: blobOf(manifest.config.digest) }, ...manifest.layers.map((l, i) => ({ path: `l${i}.tar`, body: blobOf(l.digest) }))];
  const dockerItem = { Config: 'c.json', RepoTags: ['x:1'], Layers: manifest.layers.map((_, i) => `l${i}.tar`) };
  const cases: Array<[string, Buffer, string, RegExp]> = [
    ['a `..` path', rawTar([...entries, { path: '../escape', body: 'x' }]), 'ERR_IMAGE_INVALID', /entry `\.\.\/escape` leaves the archive/],
    ['an absolute path', rawTar([{ path: '/etc/evil', body: 'x' }, ...entries]), 'ERR_IMAGE_INVALID', /entry `\/etc\/evil` leaves the archive/],
    ['a symlink out of the archive', docker([{ path: 'x/layer.tar', type: 'SymbolicLink', linkpath: '../../etc/passwd' }], { Config: 'c.json', Layers: ['x/layer.tar'] }), 'ERR_IMAGE_INVALID', /links to `\.\.\/\.\.\/etc\/passwd`, outside the archive/],
    ['a hard link out of the archive', rawTar([{ path: 'l', type: 'Link', linkpath: '../../etc/shadow' }]), 'ERR_IMAGE_INVALID', /names `\.\.\/\.\.\/etc\/shadow`, outside the archive/],
    ['a missing layer blob', rawTar(entries.filter((e) => e.path !== layerPath)), 'ERR_IMAGE_INVALID', /lacks the layer blob sha256:/],
    ['a blob that is not its digest', rawTar(entries.map((e) => (e.path === layerPath ? { ...e, body: Buffer.concat([e.body as Buffer, Buffer.from('!')]).subarray(1) } : e))), 'ERR_DIGEST_MISMATCH', /does not match its digest/],
    ['malformed index.json', rawTar(entries.map((e) => (e.path === 'index.json' ? { ...e, body: '{"manifests": [' } : e))), 'ERR_IMAGE_INVALID', /index\.json: malformed JSON/],
    ['a docker layer that is not its diff_id', docker(dockerFiles.map((e) => (e.path === 'l1.tar' ? { ...e, body: Buffer.alloc(1024) } : e)), dockerItem), 'ERR_DIGEST_MISMATCH', /layer 1 \(l1\.tar\) is sha256:[0-9a-f]+, but the image config says its diff_id is/],
    ['a docker layer missing', docker(dockerFiles.filter((e) => e.path !== 'l2.tar'), dockerItem), 'ERR_IMAGE_INVALID', /`l2\.tar` is not in the archive/],
    ['a config of the wrong shape', docker(dockerFiles, { ...dockerItem, Layers: ['l0.tar'] }), 'ERR_IMAGE_INVALID', /3 diff_ids for 1 layers/],
    ['bad RepoTags', docker(dockerFiles, { ...dockerItem, RepoTags: ['Not A Name'] }), 'ERR_IMAGE_INVALID', /the image name `Not A Name` is not a valid reference/],
    ['a manifest.json item without a Config path', docker(dockerFiles, { Config: 1 }), 'ERR_IMAGE_INVALID', /needs Config/],
    ['a device node', rawTar([{ path: 'dev', type: 'CharacterDevice', devmaj: 1, devmin: 3 }]), 'ERR_IMAGE_INVALID', /entry `dev` has an unsupported type \(CharacterDevice\)/],
    ['no layout and no manifest.json', rawTar([{ path: 'hello.txt', body: 'hi' }]), 'ERR_IMAGE_INVALID', /neither an OCI image layout nor a docker save archive/],
    ['bytes that are not a tar', Buffer.from('this is not an archive at all, just text '.repeat(40)), 'ERR_IMAGE_INVALID', /broken tar|neither an OCI image layout/],
  ];
  const store = await freshStore();
  const before = await treeOf(store.root);
  for (const [what, bytes, expected, message] of cases) {
    const file = await scratchPath('hostile.tar');
    await fs.writeFile(file, bytes);
    const error = await t.throwsAsync(store.load(file, { reference: 'localhost/hostile:1' }), undefined, what);
    t.is(code(error), expected, `${what}: ${error?.message}`);
    t.regex(error?.message ?? '', message, what);
    t.deepEqual(await treeOf(store.root), before, `${what}: nothing left in the store`);
  }
  t.deepEqual(await store.list(), []);
});

test('a canceled load is ERR_CANCELED and leaves nothing', async (t) => {
  const store = await freshStore();
  const before = await treeOf(store.root);
  const input = new PassThrough();
  const controller = new AbortController();
  const loading = store.load(input, { signal: controller.signal });
  input.write((await fs.readFile(archives.dockerArchive)).subarray(0, 64 * 1024));
  setTimeout(() => controller.abort(), 50);
  t.is(code(await t.throwsAsync(loading)), 'ERR_CANCELED');
  t.deepEqual(await treeOf(store.root), before);
});

test('bad load arguments are ERR_INVALID_OPTION; a missing file ERR_IMAGE_NOT_FOUND', async (t) => {
  const store = await freshStore();
  t.is(code(await t.throwsAsync(store.load(archives.dockerArchive, { refrence: 'x' } as never))), 'ERR_INVALID_OPTION');
  t.is(code(await t.throwsAsync(store.load(42 as never))), 'ERR_INVALID_OPTION');
  t.is(code(await t.throwsAsync(store.load(archives.ociArchive, { reference: 'x@sha256:' + 'a'.repeat(64) }))), 'ERR_INVALID_OPTION');
  t.is(code(await t.throwsAsync(store.load(image.layout, { reference: 'localhost/one:1' }))), 'ERR_INVALID_OPTION', 'name:tag for a layout of four images');
  t.is(code(await t.throwsAsync(store.load('/no/such/archive.tar'))), 'ERR_IMAGE_NOT_FOUND');
});

test('save as oci-archive: skopeo inspects and copies it, umoci unpacks it with every layer applied', async (t) => {
  const store = await freshStore();
  await store.load(image.layout, { reference: 'localhost/umoci' });
  const file = await scratchPath('saved.tar');
  await store.save(['localhost/umoci:v3', 'localhost/umoci:v1'], file);

  const inspected = JSON.parse(await tool('skopeo', ['inspect', `oci-archive:${file}:localhost/umoci:v3`])) as { Digest: string; Layers: string[]; Labels: Record<string, string> };
  t.is(inspected.Digest, v3.digest);
  t.deepEqual(inspected.Layers, v3.layers.map((l) => l.digest));
  t.deepEqual(inspected.Labels, V3_CONFIG.labels);

  const copy = await scratchPath('copied');
  await tool('skopeo', ['copy', '--quiet', `oci-archive:${file}:localhost/umoci:v1`, `oci:${copy}:v1`]);
  t.regex(await tool('umoci', ['ls', '--layout', copy]), /^v1$/m);

  const bundle = await scratchPath('bundle');
  const layout = await scratchPath('layout');
  await fs.mkdir(layout);
  await tool('tar', ['-C', layout, '-xf', file]);
  await tool('umoci', ['unpack', '--image', `${layout}:localhost/umoci:v3`, bundle]);
  const rootfs = path.join(bundle, 'rootfs');
  t.is(await fs.readFile(path.join(rootfs, 'etc/hostname'), 'utf8'), 'changed\n');
  t.deepEqual(await fs.readdir(path.join(rootfs, 'data')), ['new.txt']);
  await t.throwsAsync(fs.lstat(path.join(rootfs, 'etc/motd')));
  const secret = await fs.stat(path.join(rootfs, 'etc/secret'));
  t.is(secret.mode & 0o7777, 0o640);
  t.deepEqual([secret.uid, secret.gid], [1000, 1001]);
  t.is(secret.mtime.getTime(), SECRET_MTIME.getTime());
});

test('save as oci-dir: umoci lists the names; a Docker schema 2 image is written as the OCI manifest skopeo reads', async (t) => {
  const store = await freshStore();
  await store.load(image.layout, { reference: 'localhost/umoci' });
  const [docker] = await store.load(image.docker, { reference: 'localhost/docker' });
  const out = await scratchPath('saved-dir');
  await store.save([v3.digest, 'localhost/docker:v3'], out, { format: 'oci-dir' });
  t.deepEqual((await tool('umoci', ['ls', '--layout', out])).trim().split('\n').sort(), ['localhost/docker:v3', 'localhost/umoci:v3']);
  t.is(JSON.parse(await tool('skopeo', ['inspect', `oci:${out}:localhost/umoci:v3`])).Digest, v3.digest, 'an OCI image keeps its digest');
  const raw = JSON.parse(await tool('skopeo', ['inspect', '--raw', `oci:${out}:localhost/docker:v3`])) as { mediaType: string; config: { digest: string }; layers: Array<{ mediaType: string; digest: string }> };
  t.is(raw.mediaType, 'application/vnd.oci.image.manifest.v1+json');
  t.deepEqual(raw.layers.map((l) => [l.mediaType, l.digest]), docker!.layers.map((l) => ['application/vnd.oci.image.layer.v1.tar+gzip', l.digest]));

  // And back: a fresh store loads what was saved, the same config and layers.
  const again = await freshStore();
  const loaded = await again.load(out);
  t.true(loaded.some((i) => i.digest === v3.digest));
  const reloaded = await again.inspect('localhost/docker:v3');
  t.deepEqual(reloaded.layers, docker!.layers);
  t.deepEqual(reloaded.config, docker!.config);
  t.is(await shIn(again, 'localhost/docker:v3', v3Check), v3Expected);
});

test('save to a stream writes the same archive as to a file', async (t) => {
  const store = await freshStore();
  await store.load(archives.dockerArchive);
  const file = await scratchPath('saved.tar');
  await store.save('example.com/umoci:v3', file);
  const chunks: Buffer[] = [];
  const sink = new PassThrough();
  sink.on('data', (chunk: Buffer) => chunks.push(chunk));
  await store.save('example.com/umoci:v3', sink);
  t.true(Buffer.concat(chunks).equals(await fs.readFile(file)));
  t.is(sha256Of(Buffer.concat(chunks)).length, 71);
});

test('save errors: unknown image, a non-empty directory, a corrupt blob; no file is left', async (t) => {
  const store = await freshStore();
  await store.load(archives.dockerArchive);
  const parent = await scratchPath('out');
  await fs.mkdir(parent);
  t.is(code(await t.throwsAsync(store.save('localhost/nope:1', path.join(parent, 'x.tar')))), 'ERR_IMAGE_NOT_FOUND');
  await fs.writeFile(path.join(parent, 'taken'), '');
  t.is(code(await t.throwsAsync(store.save('example.com/umoci:v3', parent, { format: 'oci-dir' }))), 'ERR_INVALID_OPTION');
  t.is(code(await t.throwsAsync(store.save('example.com/umoci:v3', path.join(parent, 'y'), { format: 'zip' as never }))), 'ERR_INVALID_OPTION');

  const info = await store.inspect('example.com/umoci:v3');
  const blob = path.join(store.root, 'blobs/sha256', info.layers[2]!.digest.slice(7));
  const bytes = await fs.readFile(blob);
  bytes[bytes.length - 1] ^= 0xff;
  await fs.writeFile(blob, bytes);
  t.is(code(await t.throwsAsync(store.save('example.com/umoci:v3', path.join(parent, 'z.tar')))), 'ERR_DIGEST_MISMATCH');
  t.is(code(await t.throwsAsync(store.save('example.com/umoci:v3', path.join(parent, 'zdir'), { format: 'oci-dir' }))), 'ERR_DIGEST_MISMATCH');
  t.deepEqual(await fs.readdir(parent), ['taken']);
});
