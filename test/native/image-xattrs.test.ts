// SPDX-License-Identifier: Apache-2.0
// Layer xattrs: a file capability (setcap) and user xattrs, stored by GNU tar as PAX SCHILY.xattr records,
// survive unpacking (rootful), are seen inside a sandbox, and are dropped or kept as documented when rootless.
import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { dir } from 'tmp-promise';
import { resolveOciImage } from '../../src/image/layer-store.js';
import { unpackLayer } from '../../src/image/layer-unpack.js';
import { getXattr } from '../../src/image/native-fs.js';
import { run } from '../../src/index.js';
import { busyboxOciLayout } from '../helpers/probe-image.js';
import { sha256Of } from '../helpers/raw-tar.js';

const execFileAsync = promisify(execFile);
const scratch = dir({ prefix: 'nsbox-xattr-test-', unsafeCleanup: true });
test.after.always(async () => (await scratch).cleanup());

// Prints the raw security.capability of a file as hex, or the errno: a static helper that goes into
// the layer, so the test can read the xattr from inside a sandbox (busybox has no getcap).
const showcap = `
#include <stdio.h>
#include <sys/xattr.h>
#include <errno.h>
#include <string.h>
int main(int argc, char **argv) {
  unsigned char v[64];
  ssize_t n = getxattr(argv[1], "security.capability", v, sizeof v);
  if (n < 0) { printf("%s\\n", strerror(errno)); return 1; }
  for (ssize_t i = 0; i < n; i++) printf("%02x", v[i]);
  printf("\\n");
  return 0;
}
`;

const longDir = `data/${'d'.repeat(60)}/${'e'.repeat(60)}`;

interface CapLayer {
  tar: string;
  diffId: string;
  /** What getcap prints for bin/pinger on the source tree. */
  getcap: string;
  /** The capability xattr, hex. */
  capHex: string;
}

let built: Promise<CapLayer> | undefined;
/**
 * A layer made by independent tools: `usr/local/bin/pinger` (a file) with file capabilities set by
 * setcap, `data/tagged` with a user xattr, `data/forged` with a trusted.overlay.opaque it must not keep;
 * packed by GNU tar --xattrs (PAX SCHILY.xattr.* records).
 */
function capLayer(): Promise<CapLayer> {
  built ??= (async () => {
    const base = (await scratch).path;
    const tree = path.join(base, 'tree');
    await fs.mkdir(path.join(tree, 'usr/local/bin'), { recursive: true });
    await fs.mkdir(path.join(tree, 'data/forged'), { recursive: true });
    await fs.writeFile(path.join(base, 'showcap.c'), showcap);
    await execFileAsync('gcc', ['-static', '-O2', '-o', path.join(tree, 'usr/local/bin/showcap'), path.join(base, 'showcap.c')]);
    await fs.writeFile(path.join(tree, 'usr/local/bin/pinger'), '#!/bin/sh\necho pong\n', { mode: 0o755 });
    await fs.writeFile(path.join(tree, 'data/tagged'), 'tagged\n');
    // A path past ustar's 100 bytes: tar writes it as a PAX `path` record beside the xattr.
    await fs.mkdir(path.join(tree, longDir), { recursive: true });
    await fs.writeFile(path.join(tree, longDir, 'long-named-file'), 'long\n');
    await execFileAsync('python3', ['-c', `import os; os.setxattr(${JSON.stringify(path.join(tree, longDir, 'long-named-file'))}, 'user.nsbox.long', b'yes')`]);
    await execFileAsync('setcap', ['cap_net_raw,cap_net_bind_service+ep', path.join(tree, 'usr/local/bin/pinger')]);
    await execFileAsync('python3', ['-c', `import os; os.setxattr(${JSON.stringify(path.join(tree, 'data/tagged'))}, 'user.nsbox.note', b'hello\\x00\\xffbin'); os.setxattr(${JSON.stringify(path.join(tree, 'data/forged'))}, 'trusted.overlay.opaque', b'y')`]);
    const { stdout: getcap } = await execFileAsync('getcap', [path.join(tree, 'usr/local/bin/pinger')]);
    const tar = path.join(base, 'layer.tar');
    await execFileAsync('tar', ['--xattrs', '--xattrs-include=*', '--numeric-owner', '-cf', tar, '-C', tree, 'usr', 'data']);
    const { stdout: listing } = await execFileAsync('tar', ['--xattrs', '--xattrs-include=*', '-tvvf', tar]);
    if (!listing.includes('security.capability')) throw new Error(`tar did not store the capability:\n${listing}`);
    const cap = (await execFileAsync('python3', ['-c', `import os; print(os.getxattr(${JSON.stringify(path.join(tree, 'usr/local/bin/pinger'))}, 'security.capability').hex())`])).stdout.trim();
    return { tar, diffId: sha256Of(await fs.readFile(tar)), getcap: getcap.replace(tree, '').trim(), capHex: cap };
  })();
  return built;
}

async function unpackInto(rootless: boolean): Promise<string> {
  const { tar, diffId } = await capLayer();
  const dest = await fs.mkdtemp(path.join((await scratch).path, rootless ? 'rootless-' : 'rootful-'));
  const size = (await fs.stat(tar)).size;
  await unpackLayer(createReadStream(tar), { digest: diffId, size, compression: 'none', diffId }, dest, { rootless });
  return dest;
}

test('rootful: the file capability and the user xattr are restored, byte for byte; a forged overlay marker is not', async (t) => {
  const layer = await unpackInto(false);
  const { getcap, capHex } = await capLayer();
  const { stdout } = await execFileAsync('getcap', [path.join(layer, 'usr/local/bin/pinger')]);
  t.is(stdout.replace(layer, '').trim(), getcap);
  t.regex(getcap, /cap_net_bind_service,cap_net_raw[=+]ep/);
  const note = (await execFileAsync('python3', ['-c', `import os; print(os.getxattr(${JSON.stringify(path.join(layer, 'data/tagged'))}, 'user.nsbox.note').hex())`])).stdout.trim();
  t.is(note, Buffer.from('hello\x00\xffbin', 'latin1').toString('hex'));
  t.is(getXattr(path.join(layer, 'data/forged'), 'trusted.overlay.opaque'), null);
  t.is(getXattr(path.join(layer, longDir, 'long-named-file'), 'user.nsbox.long'), 'yes');
  t.is(capHex.length > 0, true);
});

test('rootful: inside a sandbox the image file carries its capability (read through the overlay)', async (t) => {
  const layer = await unpackInto(false);
  const { capHex } = await capLayer();
  const base = await resolveOciImage((await busyboxOciLayout()).dir, { cacheRoot: path.join((await scratch).path, 'cache'), rootless: false });
  const result = await run({ image: { layers: [...base.layers, layer], config: base.config }, command: ['/usr/local/bin/showcap', '/usr/local/bin/pinger'] });
  t.is(result.exitCode, 0, result.stdout + result.stderr);
  t.is(result.stdout.trim(), capHex);
});

test('rootless: security.* and trusted.* are skipped (an unprivileged unpack cannot set them), user.* is kept', async (t) => {
  const layer = await unpackInto(true);
  const { stdout } = await execFileAsync('getcap', [path.join(layer, 'usr/local/bin/pinger')]);
  t.is(stdout.trim(), '');
  t.is(getXattr(path.join(layer, 'data/tagged'), 'user.nsbox.note'), Buffer.from('hello\x00\xffbin', 'latin1').toString());
  t.is(getXattr(path.join(layer, 'data/forged'), 'trusted.overlay.opaque'), null);
});
