// SPDX-License-Identifier: Apache-2.0
// unpackLayer on hand-made tars: hostile entries fail the layer and touch nothing outside; Docker's rules otherwise.
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import test, { type ExecutionContext } from 'ava';
import { dir } from 'tmp-promise';
import { isSandboxError } from '../../src/errors.js';
import { unpackLayer } from '../../src/image/layer-unpack.js';
import type { LayerRef } from '../../src/image/oci-layout.js';
import { isRoot } from '../helpers/capabilities.js';
import { rawTar, sha256Of, type RawEntry } from '../helpers/raw-tar.js';

const scratch = dir({ prefix: 'nsbox-unpack-test-', unsafeCleanup: true });
test.after.always(async () => (await scratch).cleanup());

const rootTest = isRoot() ? test : test.skip;

interface Sandbox {
  /** The (empty) directory the layer unpacks into. */
  layer: string;
  /** A sibling directory hostile entries aim at; holds `secret` = "keep". */
  outside: string;
}

let sandboxes = 0;
async function sandbox(): Promise<Sandbox> {
  const base = path.join((await scratch).path, String(sandboxes++));
  const layer = path.join(base, 'layer');
  const outside = path.join(base, 'outside');
  await fs.mkdir(layer, { recursive: true });
  await fs.mkdir(outside);
  await fs.writeFile(path.join(outside, 'secret'), 'keep');
  return { layer, outside };
}

interface Options {
  rootless?: boolean;
  gzip?: boolean;
  maxBytes?: number;
  diffId?: string;
}

/** Unpacks `tar` into `dest`, streamed in odd-sized chunks. */
function unpack(tar: Buffer, dest: string, options: Options = {}): Promise<void> {
  const blob = options.gzip ? gzipSync(tar) : tar;
  const layer: LayerRef = {
    digest: sha256Of(blob),
    size: blob.length,
    compression: options.gzip ? 'gzip' : 'none',
    diffId: options.diffId ?? sha256Of(tar),
  };
  const chunks = Array.from({ length: Math.ceil(blob.length / 777) }, (_, i) => blob.subarray(i * 777, (i + 1) * 777));
  return unpackLayer(Readable.from(chunks), layer, dest, { rootless: options.rootless ?? !isRoot(), maxBytes: options.maxBytes });
}

async function assertOutsideUntouched(t: ExecutionContext, outside: string): Promise<void> {
  t.deepEqual(await fs.readdir(outside), ['secret']);
  t.is(await fs.readFile(path.join(outside, 'secret'), 'utf8'), 'keep');
}

/** Declares a test: unpacking these entries fails with ERR_IMAGE_INVALID naming `blamed`, and nothing outside changes. */
function hostile(title: string, blamed: string, entries: (outside: string) => RawEntry[]): void {
  test(`hostile: ${title}`, async (t) => {
    const { layer, outside } = await sandbox();
    const error = await t.throwsAsync(unpack(rawTar(entries(outside)), layer));
    t.true(isSandboxError(error));
    t.like(error, { code: 'ERR_IMAGE_INVALID' });
    t.true(error!.message.includes(`\`${blamed}\``), error!.message);
    await assertOutsideUntouched(t, outside);
    t.false((await fs.readdir(path.dirname(layer))).includes('escape'));
  });
}

hostile('a `..` entry', '../escape', () => [{ path: '../escape', body: 'x' }]);

hostile('`..` in the middle', 'a/../../escape', () => [{ path: 'a/../../escape', body: 'x' }]);

hostile('writing through a symlink to an absolute path', 'evil/secret', (outside) => [
  { path: 'evil', type: 'SymbolicLink', linkpath: outside },
  { path: 'evil/secret', body: 'pwned' },
]);

hostile('a directory through a relative symlink', 'evil/sub/', () => [
  { path: 'evil', type: 'SymbolicLink', linkpath: '../outside' },
  { path: 'evil/sub/', type: 'Directory', mode: 0o755 },
]);

hostile('a directory replaced by a symlink, then written through', 'd/secret', (outside) => [
  { path: 'd/', type: 'Directory', mode: 0o755 },
  { path: 'd', type: 'SymbolicLink', linkpath: outside },
  { path: 'd/secret', body: 'pwned' },
]);

hostile('a whiteout through a symlink', 'evil/.wh.secret', (outside) => [
  { path: 'evil', type: 'SymbolicLink', linkpath: outside },
  { path: 'evil/.wh.secret' },
]);

hostile('an opaque marker through a symlink', 'evil/.wh..wh..opq', (outside) => [
  { path: 'evil', type: 'SymbolicLink', linkpath: outside },
  { path: 'evil/.wh..wh..opq' },
]);

hostile('a hard link to `..`', 'hl', () => [{ path: 'hl', type: 'Link', linkpath: '../outside/secret' }]);

hostile('a hard link to an absolute path (not in the layer)', 'hl', (outside) => [
  { path: 'hl', type: 'Link', linkpath: path.join(outside, 'secret') },
]);

hostile('a hard link through a symlink', 'hl', (outside) => [
  { path: 'evil', type: 'SymbolicLink', linkpath: outside },
  { path: 'hl', type: 'Link', linkpath: 'evil/secret' },
]);

hostile('an entry type nobody unpacks', 'volume', () => [{ path: 'volume', type: 'TapeVolumeHeader' }]);

test('hostile: bytes that are not a tar', async (t) => {
  const { layer, outside } = await sandbox();
  const garbage = Buffer.alloc(4096, 'not a tar header ');
  t.like(await t.throwsAsync(unpack(garbage, layer)), { code: 'ERR_IMAGE_INVALID' });
  await assertOutsideUntouched(t, outside);
});

test('hostile: a gzip inside the layer (a second decompression would bypass the size limit)', async (t) => {
  const { layer } = await sandbox();
  const doubled = gzipSync(rawTar([{ path: 'f', body: 'x' }]));
  const error = await t.throwsAsync(unpack(doubled, layer, { gzip: true }));
  t.like(error, { code: 'ERR_IMAGE_INVALID' });
  t.regex(error!.message, /not a tar/);
});

test('hostile: a decompression bomb stops at maxBytes', async (t) => {
  const { layer } = await sandbox();
  const bomb = rawTar([{ path: 'zeros', body: Buffer.alloc(16 * 1024 * 1024) }]);
  const error = await t.throwsAsync(unpack(bomb, layer, { gzip: true, maxBytes: 1024 * 1024 }));
  t.like(error, { code: 'ERR_IMAGE_INVALID' });
  t.regex(error!.message, /more than 1048576 bytes/);
  const written = await fs.stat(path.join(layer, 'zeros')).then((s) => s.size, () => 0);
  t.true(written <= 1024 * 1024);
});

test('leading `/` is stripped, as Docker does', async (t) => {
  const { layer, outside } = await sandbox();
  await unpack(rawTar([{ path: '/abs/file', body: 'in' }, { path: '/', type: 'Directory', mode: 0o755 }]), layer);
  t.is(await fs.readFile(path.join(layer, 'abs/file'), 'utf8'), 'in');
  await assertOutsideUntouched(t, outside);
});

test('a file replacing a symlink to the outside is written inside', async (t) => {
  const { layer, outside } = await sandbox();
  await unpack(rawTar([
    { path: 'link', type: 'SymbolicLink', linkpath: path.join(outside, 'secret') },
    { path: 'link', body: 'mine' },
  ]), layer);
  t.true((await fs.lstat(path.join(layer, 'link'))).isFile());
  t.is(await fs.readFile(path.join(layer, 'link'), 'utf8'), 'mine');
  await assertOutsideUntouched(t, outside);
});

test('rootless: device nodes are skipped, fifos made, owners not changed', async (t) => {
  const { layer } = await sandbox();
  await unpack(rawTar([
    { path: 'dev/null', type: 'CharacterDevice', devmaj: 1, devmin: 3, mode: 0o666 },
    { path: 'dev/sda', type: 'BlockDevice', devmaj: 8, devmin: 0, mode: 0o660 },
    { path: 'fifo', type: 'FIFO', mode: 0o640 },
    { path: 'owned', uid: 4321, gid: 4321, body: 'x' },
  ]), layer, { rootless: true });
  t.deepEqual(await fs.readdir(path.join(layer, 'dev')), []);
  const fifo = await fs.lstat(path.join(layer, 'fifo'));
  t.true(fifo.isFIFO());
  t.is(fifo.mode & 0o7777, 0o640);
  t.is((await fs.lstat(path.join(layer, 'owned'))).uid, process.getuid!());
});

rootTest('rootful: modes, owners, mtimes, links, devices and fifos are restored', async (t) => {
  const { layer } = await sandbox();
  const mtime = new Date('2001-02-03T04:05:06Z');
  await unpack(rawTar([
    { path: './', type: 'Directory', mode: 0o750, mtime },
    { path: 'ro/', type: 'Directory', mode: 0o555, uid: 7, gid: 8, mtime },
    { path: 'ro/file', body: 'data', mode: 0o444 },
    { path: 'suid', body: '#!/bin/sh\n', mode: 0o4755, uid: 1000, gid: 1000, mtime },
    { path: 'hard', type: 'Link', linkpath: 'suid' },
    { path: 'sym', type: 'SymbolicLink', linkpath: '/nowhere', uid: 5, gid: 6, mtime },
    { path: 'implicit/parent/file', body: 'x' },
    { path: 'dev/null', type: 'CharacterDevice', devmaj: 1, devmin: 3, mode: 0o666 },
    { path: 'fifo', type: 'FIFO', mode: 0o600 },
  ]), layer, { rootless: false });
  const at = (rel: string) => fs.lstat(path.join(layer, rel));

  t.like(await at('.'), { mode: 0o40750, mtimeMs: mtime.getTime() });
  t.like(await at('ro'), { mode: 0o40555, uid: 7, gid: 8, mtimeMs: mtime.getTime() });
  t.is(await fs.readFile(path.join(layer, 'ro/file'), 'utf8'), 'data');
  t.like(await at('suid'), { mode: 0o104755, uid: 1000, gid: 1000, mtimeMs: mtime.getTime(), nlink: 2 });
  t.is((await at('hard')).ino, (await at('suid')).ino);
  t.like(await at('sym'), { uid: 5, gid: 6, mtimeMs: mtime.getTime() });
  t.is(await fs.readlink(path.join(layer, 'sym')), '/nowhere');
  t.like(await at('implicit/parent'), { mode: 0o40755 });
  const dev = await at('dev/null');
  t.true(dev.isCharacterDevice());
  t.is(dev.rdev, (1 << 8) | 3);
  t.true((await at('fifo')).isFIFO());
});

test('an empty layer (only the end-of-archive blocks) unpacks to nothing', async (t) => {
  const { layer } = await sandbox();
  await unpack(rawTar([]), layer, { gzip: true });
  t.deepEqual(await fs.readdir(layer), []);
});

test('a whiteout never hides an entry of its own layer', async (t) => {
  const { layer } = await sandbox();
  await unpack(rawTar([
    { path: '.wh.before' },
    { path: 'before', body: 'kept' },
    { path: 'after', body: 'kept' },
    { path: '.wh.after' },
  ]), layer);
  t.deepEqual((await fs.readdir(layer)).sort(), ['after', 'before']);
  t.is(await fs.readFile(path.join(layer, 'before'), 'utf8'), 'kept');
  t.is(await fs.readFile(path.join(layer, 'after'), 'utf8'), 'kept');
});

test('a diffID other than the expected one is ERR_DIGEST_MISMATCH', async (t) => {
  const { layer } = await sandbox();
  const error = await t.throwsAsync(unpack(rawTar([{ path: 'f', body: 'x' }]), layer, { diffId: sha256Of(Buffer.from('other')) }));
  t.like(error, { code: 'ERR_DIGEST_MISMATCH' });
});
