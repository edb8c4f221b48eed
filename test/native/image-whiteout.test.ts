// SPDX-License-Identifier: Apache-2.0
// The overlay whiteout forms (char device / xattrs) and that overlayfs honours the rootless one under userxattr.
import fs from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { dir } from 'tmp-promise';
import { getXattr } from '../../src/image/native-fs.js';
import { markOpaque, writeWhiteout } from '../../src/image/whiteout.js';
import { hasUnprivilegedUserns, isRoot } from '../helpers/capabilities.js';
import { inOverlay } from '../helpers/overlay.js';

const scratch = dir({ prefix: 'nsbox-whiteout-test-', unsafeCleanup: true });
test.after.always(async () => (await scratch).cleanup());

const rootTest = isRoot() ? test : test.skip;
const usernsTest = isRoot() || hasUnprivilegedUserns() ? test : test.skip;

let dirs = 0;
async function freshDir(): Promise<string> {
  const d = path.join((await scratch).path, String(dirs++));
  await fs.mkdir(d);
  return d;
}

rootTest('rootful: a whiteout is a character device 0:0, an opaque dir has trusted.overlay.opaque=y', async (t) => {
  const d = await freshDir();
  writeWhiteout(d, 'gone', false);
  const stats = await fs.lstat(path.join(d, 'gone'));
  t.true(stats.isCharacterDevice());
  t.is(stats.rdev, 0);
  markOpaque(d, false);
  t.is(getXattr(d, 'trusted.overlay.opaque'), 'y');
});

test('rootless: an empty file with user.overlay.whiteout, its directory marked opaque=x', async (t) => {
  const d = await freshDir();
  writeWhiteout(d, 'gone', true);
  const stats = await fs.lstat(path.join(d, 'gone'));
  t.true(stats.isFile());
  t.is(stats.size, 0);
  t.is(getXattr(path.join(d, 'gone'), 'user.overlay.whiteout'), 'y');
  t.is(getXattr(d, 'user.overlay.opaque'), 'x');
});

test('rootless: opaque (y) wins over the whiteout marker (x), in either order', async (t) => {
  const first = await freshDir();
  markOpaque(first, true);
  writeWhiteout(first, 'gone', true);
  t.is(getXattr(first, 'user.overlay.opaque'), 'y');

  const second = await freshDir();
  writeWhiteout(second, 'gone', true);
  markOpaque(second, true);
  t.is(getXattr(second, 'user.overlay.opaque'), 'y');
});

usernsTest('rootless form: an overlay mounted with userxattr in a user namespace hides the lower file', async (t) => {
  const lower = await freshDir();
  await fs.writeFile(path.join(lower, 'gone'), 'lower\n');
  await fs.writeFile(path.join(lower, 'kept'), 'lower\n');
  await fs.mkdir(path.join(lower, 'd'));
  await fs.writeFile(path.join(lower, 'd/old'), 'lower\n');
  const upper = await freshDir();
  writeWhiteout(upper, 'gone', true);
  await fs.mkdir(path.join(upper, 'd'));
  await fs.writeFile(path.join(upper, 'd/new'), 'upper\n');
  markOpaque(path.join(upper, 'd'), true);

  const listing = await inOverlay([lower, upper], true, 'ls -A; echo --; ls -A d; test ! -e gone');
  t.is(listing, 'd\nkept\n--\nnew\n');
});
