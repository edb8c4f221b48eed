// SPDX-License-Identifier: Apache-2.0
// upperToLayer on upper directories made by hand: the xattr whiteout forms overlayfs reads,
// names ustar cannot hold, what a layer cannot express; the tars are read back by GNU tar.
import { createServer } from 'node:net';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createWriteStream } from 'node:fs';
import test from 'ava';
import { dir } from 'tmp-promise';
import { upperToLayer } from '../../src/image/upper-to-layer.js';
import { native } from '../../src/native/binding.js';
import { tool } from '../helpers/image-archives.js';

const scratch = dir({ prefix: 'nsbox-upper-to-layer-', unsafeCleanup: true });
test.after.always(async () => (await scratch).cleanup());

let count = 0;
async function upperDir(): Promise<string> {
  const upper = path.join((await scratch).path, `upper-${count++}`);
  await fs.mkdir(upper);
  return upper;
}

async function layerOf(upper: string, options = {}): Promise<string> {
  const file = `${upper}.tar`;
  await pipeline(Readable.from(upperToLayer(upper, options), { objectMode: false }), createWriteStream(file));
  return file;
}

const setXattr = (file: string, name: string, value: string) => native().lsetxattr(file, name, Buffer.from(value));

test('xattr whiteouts (trusted. and user.) and opaque markers become OCI whiteouts; an `x` marker does not', async (t) => {
  const upper = await upperDir();
  await fs.mkdir(path.join(upper, 'a'));
  await fs.writeFile(path.join(upper, 'a/gone'), '');
  setXattr(path.join(upper, 'a/gone'), 'user.overlay.whiteout', 'y');
  await fs.writeFile(path.join(upper, 'a/gone2'), '');
  setXattr(path.join(upper, 'a/gone2'), 'trusted.overlay.whiteout', 'y');
  // `x` marks a directory that holds xattr whiteouts; it is not opaque.
  setXattr(path.join(upper, 'a'), 'user.overlay.opaque', 'x');
  await fs.mkdir(path.join(upper, 'b'));
  setXattr(path.join(upper, 'b'), 'user.overlay.opaque', 'y');
  await fs.mkdir(path.join(upper, 'c'));
  setXattr(path.join(upper, 'c'), 'trusted.overlay.opaque', 'y');
  const listing = (await tool('tar', ['-tf', await layerOf(upper)])).trim().split('\n');
  t.deepEqual(listing, ['a/', 'a/.wh.gone', 'a/.wh.gone2', 'b/', 'b/.wh..wh..opq', 'c/', 'c/.wh..wh..opq']);
});

test('long and non-ASCII names and link targets go through PAX headers; sockets are left out', async (t) => {
  const upper = await upperDir();
  const deep = path.join(upper, 'd'.repeat(90), 'é'.repeat(40));
  await fs.mkdir(deep, { recursive: true });
  await fs.writeFile(path.join(deep, `${'f'.repeat(120)}.txt`), 'long\n');
  await fs.symlink(`/${'t'.repeat(150)}`, path.join(upper, 'far'));
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(path.join(upper, 'sock'), resolve));
  t.teardown(() => server.close());
  const tar = await layerOf(upper);
  const listing = await tool('tar', ['-tvf', tar]);
  t.true(listing.includes(`${'d'.repeat(90)}/${'é'.repeat(40)}/${'f'.repeat(120)}.txt`));
  t.true(listing.includes(`far -> /${'t'.repeat(150)}`));
  t.false(listing.includes('sock'));
  const out = path.join((await scratch).path, `out-${count++}`);
  await fs.mkdir(out);
  await tool('tar', ['-xf', tar, '-C', out]);
  t.is(await fs.readFile(path.join(out, 'd'.repeat(90), 'é'.repeat(40), `${'f'.repeat(120)}.txt`), 'utf8'), 'long\n');
});

test('owners are mapped back with the given maps', async (t) => {
  const upper = await upperDir();
  await fs.writeFile(path.join(upper, 'f'), 'x');
  await fs.chown(path.join(upper, 'f'), 65534, 65534);
  const listing = await tool('tar', ['--numeric-owner', '-tvf', await layerOf(upper, { uid: (id: number) => (id === 65534 ? 0 : 99), gid: (id: number) => (id === 65534 ? 0 : 99) })]);
  t.regex(listing, /^-rw-r--r-- 0\/0 .* f$/m);
});

test('what a layer cannot hold is ERR_UNSUPPORTED: an overlay redirect or metacopy', async (t) => {
  for (const name of ['trusted.overlay.redirect', 'trusted.overlay.metacopy']) {
    const upper = await upperDir();
    await fs.mkdir(path.join(upper, 'moved'));
    setXattr(path.join(upper, 'moved'), name, '/elsewhere');
    const error = await t.throwsAsync(layerOf(upper));
    t.is((error as { code?: string }).code, 'ERR_UNSUPPORTED', name);
    t.regex(error!.message, /`\/moved`: overlayfs kept it as a (redirect|metacopy) of a lower layer/);
  }
});
