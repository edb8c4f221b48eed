// SPDX-License-Identifier: Apache-2.0
// The image store without a registry: options, its index file, the lock a dead process left, abandoned temp files.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import fs from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { dir } from 'tmp-promise';
import { ImageStore } from '../../src/index.js';
import { tempName } from '../../src/image/temp-name.js';

const scratch = dir({ prefix: 'nsbox-store-test-', unsafeCleanup: true });
test.after.always(async () => (await scratch).cleanup());

let stores = 0;
async function freshStore(): Promise<ImageStore> {
  return ImageStore.open({ root: path.join((await scratch).path, `store-${stores++}`) });
}

const code = (error: unknown) => (error as { code?: string }).code;

test('open creates the store; the default root is <state dir>/store', async (t) => {
  const store = await freshStore();
  t.true((await fs.stat(path.join(store.root, 'blobs/sha256'))).isDirectory());
  const saved = process.env.NSBOX_HOME;
  process.env.NSBOX_HOME = path.join((await scratch).path, 'home');
  t.teardown(() => {
    if (saved === undefined) delete process.env.NSBOX_HOME;
    else process.env.NSBOX_HOME = saved;
  });
  t.is((await ImageStore.open()).root, path.join(process.env.NSBOX_HOME, 'store'));
});

test('bad arguments are ERR_INVALID_OPTION', async (t) => {
  t.is(code(await t.throwsAsync(ImageStore.open({ rot: '/x' } as never))), 'ERR_INVALID_OPTION');
  const store = await freshStore();
  t.is(code(await t.throwsAsync(store.pull('127.0.0.1:1/x:1', { platfrom: 'linux/arm64' } as never))), 'ERR_INVALID_OPTION');
  t.is(code(await t.throwsAsync(store.pull('127.0.0.1:1/x:1', { platform: 'arm64' }))), 'ERR_INVALID_OPTION');
  t.is(code(await t.throwsAsync(store.pull('Not A Reference'))), 'ERR_INVALID_OPTION');
  t.is(code(await t.throwsAsync(store.resolve('x', {} as never))), 'ERR_INVALID_OPTION');
});

test('an image the store does not have is ERR_IMAGE_NOT_FOUND, saying to pull it', async (t) => {
  const store = await freshStore();
  for (const attempt of [store.inspect('busybox'), store.resolve('busybox', { rootless: false }), store.remove(`sha256:${'a'.repeat(64)}`)]) {
    const error = await t.throwsAsync(attempt);
    t.is(code(error), 'ERR_IMAGE_NOT_FOUND');
    t.regex(error!.message, /not in the image store \(pull it first\)/);
  }
  t.deepEqual(await store.list(), []);
});

test('a malformed index is ERR_IMAGE_INVALID naming the file', async (t) => {
  const store = await freshStore();
  await fs.writeFile(path.join(store.root, 'references.json'), '{"references": {"x": 1}}');
  const error = await t.throwsAsync(store.list());
  t.is(code(error), 'ERR_IMAGE_INVALID');
  t.true(error!.message.includes(path.join(store.root, 'references.json')));
});

test('a lock left by a dead process is taken over', async (t) => {
  const store = await freshStore();
  const dead = spawnSync(process.execPath, ['-e', '0']).pid;
  await fs.writeFile(path.join(store.root, 'lock'), String(dead));
  t.deepEqual(await store.gc(), { blobs: 0, layers: 0 });
  await t.throwsAsync(fs.stat(path.join(store.root, 'lock')));
});

test('gc removes temp files abandoned for an hour, and keeps fresh ones', async (t) => {
  const store = await freshStore();
  const blobs = path.join(store.root, 'blobs/sha256');
  const layers = path.join(store.root, 'layers');
  await fs.mkdir(path.join(layers, '.tmp-old/sub'), { recursive: true });
  await fs.writeFile(path.join(blobs, '.tmp-old'), 'x');
  await fs.writeFile(path.join(blobs, '.tmp-new'), 'x');
  const longAgo = new Date(Date.now() - 2 * 3600_000);
  await fs.utimes(path.join(blobs, '.tmp-old'), longAgo, longAgo);
  await fs.utimes(path.join(layers, '.tmp-old'), longAgo, longAgo);
  t.deepEqual(await store.gc(), { blobs: 0, layers: 0 });
  t.deepEqual(await fs.readdir(blobs), ['.tmp-new']);
  t.deepEqual(await fs.readdir(layers), []);
});

/** Runs test/fixtures/crash-in-store.ts on `root` until it says ready, then SIGKILLs it. */
async function crashInStore(root: string): Promise<void> {
  const script = fileURLToPath(new URL('../fixtures/crash-in-store.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', script, root], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (text: string) => (out += text));
  while (!out.includes('ready')) {
    if (child.exitCode !== null) throw new Error(`crash-in-store exited with ${child.exitCode}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  child.kill('SIGKILL');
  await once(child, 'exit');
}

/** Every `.tmp-*` entry of a store, as paths relative to its root. */
async function temps(root: string): Promise<string[]> {
  const found: string[] = [];
  for (const dir of ['', 'leases', 'blobs/sha256', 'layers', 'layers-rootless']) {
    for (const name of await fs.readdir(path.join(root, dir)).catch(() => [])) if (name.startsWith('.tmp-')) found.push(path.join(dir, name));
  }
  return found.sort();
}

test('temp files and dirs of a killed process go when the store is next opened; a live process keeps its own', async (t) => {
  const root = path.join((await scratch).path, `store-${stores++}`);
  await crashInStore(root);
  const left = await temps(root);
  t.deepEqual(left.map((p) => p.split('/').slice(0, -1).join('/')).sort(), ['', 'blobs/sha256', 'layers', 'layers-rootless']);
  // This process is alive: its temp entry (a download in progress) must stay.
  const mine = path.join('blobs/sha256', tempName());
  await fs.writeFile(path.join(root, mine), 'in progress');
  await ImageStore.open({ root });
  t.deepEqual(await temps(root), [mine]);
});

test('gc removes the temp entries of a process killed after the store was opened', async (t) => {
  const store = await freshStore();
  await crashInStore(store.root);
  t.is((await temps(store.root)).length, 4);
  await store.gc();
  t.deepEqual(await temps(store.root), []);
});
