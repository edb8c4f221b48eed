// SPDX-License-Identifier: Apache-2.0
// ImageStore.pull against a real docker-registry: by tag and digest, platforms, reuse, concurrent processes, remove + gc, run.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import test from 'ava';
import { dir } from 'tmp-promise';
import { ImageStore, run, type PullProgress } from '../../src/index.js';
import { isRoot } from '../helpers/capabilities.js';
import { busyboxOciLayout, MOTD_TEXT, OCI_PATH_ENV, OCI_TAG, probeOciLayout } from '../helpers/probe-image.js';
import { removeUmociImage, umociImage } from '../helpers/umoci-image.js';
import { hostArch, multiPlatformLayout, otherArch, type MultiPlatformLayout } from './helpers/images.js';
import { startRegistry, type TestRegistry } from './helpers/registry.js';

const execFileAsync = promisify(execFile);
const scratch = dir({ prefix: 'nsbox-pull-test-', unsafeCleanup: true });
let registry: TestRegistry;
let multi: MultiPlatformLayout;

test.before(async () => {
  registry = await startRegistry();
  multi = await multiPlatformLayout((await scratch).path);
  await registry.push((await busyboxOciLayout()).dir, OCI_TAG, 'busybox:1');
  await registry.push((await probeOciLayout()).dir, OCI_TAG, 'probe:1');
  await registry.push(multi.dir, multi.tag, 'busybox:multi');
});

test.after.always(async () => {
  await registry?.stop();
  await (await scratch).cleanup();
  await removeUmociImage();
});

let stores = 0;
async function freshStore(): Promise<ImageStore> {
  return ImageStore.open({ root: path.join((await scratch).path, `store-${stores++}`) });
}

/** Names in a store directory, sorted ([] when it does not exist). */
async function names(dirPath: string): Promise<string[]> {
  return (await fs.readdir(dirPath).catch(() => [])).sort();
}

const hex = (digest: string) => digest.slice('sha256:'.length);

test('pull by tag stores verified blobs and records the tag and the digest', async (t) => {
  const store = await freshStore();
  const image = await store.pull(`${registry.host}/busybox:1`);
  t.deepEqual(image.references, [`${registry.host}/busybox:1`, `${registry.host}/busybox@${image.digest}`]);
  t.is(image.os, 'linux');
  t.is(image.architecture, hostArch);
  t.is(image.layers.length, 2);
  const blobs = await names(path.join(store.root, 'blobs/sha256'));
  t.is(blobs.length, 4); // manifest, config, two layers
  t.true(blobs.includes(hex(image.digest)));
  for (const name of blobs) {
    const data = await fs.readFile(path.join(store.root, 'blobs/sha256', name));
    t.is(createHash('sha256').update(data).digest('hex'), name);
  }
  t.deepEqual(await names(path.join(store.root, 'leases')), []);
});

test('inspect shows the config, the layers with their sizes, and the digest', async (t) => {
  const store = await freshStore();
  const pulled = await store.pull(`${registry.host}/busybox:1`);
  const image = await store.inspect(`${registry.host}/busybox:1`);
  t.deepEqual(image, pulled);
  t.deepEqual(image.config.env, [`PATH=${OCI_PATH_ENV}`]);
  t.deepEqual(image.config.cmd, ['sh']);
  t.is(image.config.workingDir, '/');
  for (const layer of image.layers) {
    t.is((await fs.stat(path.join(store.root, 'blobs/sha256', hex(layer.digest)))).size, layer.size);
    t.regex(layer.diffId, /^sha256:[0-9a-f]{64}$/);
  }
  t.true(image.size > image.layers[0].size);
  t.deepEqual(await store.inspect(image.digest), image);
  t.deepEqual(await store.list(), [image]);
});

test('pull by digest checks it and records name@digest', async (t) => {
  const store = await freshStore();
  const { digest } = await (await freshStore()).pull(`${registry.host}/busybox:1`);
  const image = await store.pull(`${registry.host}/busybox@${digest}`);
  t.is(image.digest, digest);
  t.deepEqual(image.references, [`${registry.host}/busybox@${digest}`]);
});

test('pulling twice reuses the blobs, and progress reports each layer whole', async (t) => {
  const store = await freshStore();
  const first: PullProgress[] = [];
  const image = await store.pull(`${registry.host}/busybox:1`, { onProgress: (p) => first.push(p) });
  for (const layer of image.layers) t.deepEqual(first.filter((p) => p.digest === layer.digest).at(-1), { digest: layer.digest, bytes: layer.size, total: layer.size });
  const inodes = async () => Promise.all((await names(path.join(store.root, 'blobs/sha256'))).map(async (n) => `${n}:${(await fs.stat(path.join(store.root, 'blobs/sha256', n))).ino}`));
  const before = await inodes();
  const again: PullProgress[] = [];
  await store.pull(`${registry.host}/busybox:1`, { onProgress: (p) => again.push(p) });
  t.deepEqual(await inodes(), before);
  t.deepEqual(again.sort((a, b) => (a.digest < b.digest ? -1 : 1)), image.layers.map((l) => ({ digest: l.digest, bytes: l.size, total: l.size })).sort((a, b) => (a.digest < b.digest ? -1 : 1)));
});

test('an image index resolves to this host platform, or to the platform asked for', async (t) => {
  const store = await freshStore();
  const forHost = await store.pull(`${registry.host}/busybox:multi`);
  t.is(forHost.digest, multi.hostDigest);
  t.is(forHost.architecture, hostArch);
  const other = await store.pull(`${registry.host}/busybox:multi`, { platform: `linux/${otherArch}` });
  t.is(other.digest, multi.otherDigest);
  t.is(other.architecture, otherArch);
  // The tag now names the platform pulled last; the index digest too.
  t.is((await store.inspect(`${registry.host}/busybox:multi`)).digest, multi.otherDigest);
  const missing = await t.throwsAsync(store.pull(`${registry.host}/busybox:multi`, { platform: 'linux/s390x' }));
  t.is((missing as { code?: string }).code, 'ERR_IMAGE_NOT_FOUND');
  t.regex(missing!.message, new RegExp(`busybox:multi.*linux/s390x.*linux/${hostArch}, linux/${otherArch}`));
});

test('an unknown tag or repository is ERR_IMAGE_NOT_FOUND naming it', async (t) => {
  const store = await freshStore();
  for (const reference of [`${registry.host}/busybox:nope`, `${registry.host}/nothing-here:1`]) {
    const error = await t.throwsAsync(store.pull(reference));
    t.is((error as { code?: string }).code, 'ERR_IMAGE_NOT_FOUND');
    t.true(error!.message.includes(reference), error!.message);
  }
  const missing = await t.throwsAsync(store.inspect(`${registry.host}/busybox:nope`));
  t.is((missing as { code?: string }).code, 'ERR_IMAGE_NOT_FOUND');
});

test('a zstd image (skopeo) pulls, unpacks and runs', async (t) => {
  await registry.push((await umociImage()).zstd, 'v3', 'zstd:1');
  const store = await freshStore();
  const image = await store.pull(`${registry.host}/zstd:1`);
  t.is(image.layers.length, 3);
  const { layers, config } = await store.resolve(`${registry.host}/zstd:1`, { rootless: !isRoot() });
  const result = await run({ image: { layers, config }, command: ['cat', '/etc/hostname', '/data/new.txt'], user: '0' });
  t.is(result.stdout, 'changed\nnew\n', result.stderr);
});

test('two processes pulling one image at once both succeed, with one copy of each blob', async (t) => {
  const store = await freshStore();
  const script = fileURLToPath(new URL('helpers/pull-process.ts', import.meta.url));
  const pull = () => execFileAsync(process.execPath, ['--import', 'tsx', script, store.root, `${registry.host}/probe:1`]);
  const [a, b] = await Promise.all([pull(), pull()]);
  t.is(JSON.parse(a.stdout).digest, JSON.parse(b.stdout).digest);
  const image = await store.inspect(`${registry.host}/probe:1`);
  t.deepEqual(await names(path.join(store.root, 'blobs/sha256')), [hex(image.digest), ...image.layers.map((l) => hex(l.digest)), await configHex(store, image.digest)].sort());
  t.deepEqual(await names(path.join(store.root, 'leases')), []);
});

async function configHex(store: ImageStore, manifestDigest: string): Promise<string> {
  const manifest = JSON.parse(await fs.readFile(path.join(store.root, 'blobs/sha256', hex(manifestDigest)), 'utf8'));
  return hex(manifest.config.digest);
}

test('remove, then gc, leaves no blob or unpacked layer that no reference needs', async (t) => {
  const store = await freshStore();
  const busybox = await store.pull(`${registry.host}/busybox:1`);
  const probe = await store.pull(`${registry.host}/probe:1`);
  await store.resolve(`${registry.host}/busybox:1`, { rootless: !isRoot() });
  await store.resolve(`${registry.host}/probe:1`, { rootless: !isRoot() });
  t.deepEqual(await store.gc(), { blobs: 0, layers: 0 });

  t.deepEqual(await store.remove(`${registry.host}/busybox:1`), [`${registry.host}/busybox:1`, `${registry.host}/busybox@${busybox.digest}`]);
  t.deepEqual((await store.list()).map((i) => i.digest), [probe.digest]);
  t.deepEqual(await store.gc(), { blobs: 4, layers: 2 });
  t.deepEqual(await names(path.join(store.root, 'blobs/sha256')), [hex(probe.digest), await configHex(store, probe.digest), ...probe.layers.map((l) => hex(l.digest))].sort());
  const layersDir = path.join(store.root, isRoot() ? 'layers' : 'layers-rootless');
  t.deepEqual(await names(layersDir), probe.layers.map((l) => hex(l.diffId)).sort());

  t.deepEqual(await store.remove(probe.digest), [`${registry.host}/probe:1`, `${registry.host}/probe@${probe.digest}`]);
  t.deepEqual(await store.gc(), { blobs: 3, layers: 1 });
  t.deepEqual(await names(path.join(store.root, 'blobs/sha256')), []);
  t.deepEqual(await names(layersDir), []);
  t.deepEqual(await store.list(), []);
  const gone = await t.throwsAsync(store.remove(`${registry.host}/probe:1`));
  t.is((gone as { code?: string }).code, 'ERR_IMAGE_NOT_FOUND');
});

(isRoot() ? test : test.skip)('the pulled image runs, its layers stacked', async (t) => {
  const store = await freshStore();
  await store.pull(`${registry.host}/busybox:1`);
  const { layers, config } = await store.resolve(`${registry.host}/busybox:1`, { rootless: false });
  t.is(layers.length, 2);
  const hi = await run({ image: { layers, config }, command: ['sh', '-c', 'echo hi'] });
  t.is(hi.stdout, 'hi\n');
  const motd = await run({ image: { layers, config }, command: ['sh', '-c', 'ls /bin/yes 2>&1; cat /etc/motd'] });
  t.regex(motd.stdout, /No such file/);
  t.true(motd.stdout.endsWith(MOTD_TEXT));
});
