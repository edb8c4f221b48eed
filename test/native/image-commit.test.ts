// SPDX-License-Identifier: Apache-2.0
// ImageStore.commit on the real kernel: run → change files → commit → run the new image; the
// new layer checked with GNU tar, the saved image with skopeo and umoci; rootless too.
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { dir } from 'tmp-promise';
import { ImageStore, run, type ImageInfo } from '../../src/index.js';
import { native } from '../../src/native/binding.js';
import { NOBODY_UID, runAsNobody } from '../helpers/capabilities.js';
import { tool, treeOf } from '../helpers/image-archives.js';
import { busyboxOciLayout, MOTD_TEXT } from '../helpers/probe-image.js';

const scratch = dir({ prefix: 'nsbox-commit-', unsafeCleanup: true });
test.after.always(async () => (await scratch).cleanup());

let count = 0;
async function scratchPath(name: string): Promise<string> {
  return path.join((await scratch).path, `${name}-${count++}`);
}
async function freshStore(): Promise<ImageStore> {
  const store = await ImageStore.open({ root: await scratchPath('store') });
  await store.load((await busyboxOciLayout()).dir, { reference: 'localhost/busybox' });
  return store;
}

const code = (error: unknown) => (error as { code?: string }).code;

/** Runs `script` in an image of `store` (rootful); with `upperDir`, the writable layer is kept there. */
async function sh(store: ImageStore, reference: string, script: string, upperDir?: string): Promise<string> {
  const { layers, config } = await store.resolve(reference, { rootless: false });
  const result = await run({ image: { layers, config }, command: ['sh', '-c', script], ...(upperDir && { upperDir }) });
  return result.stdout;
}

// Deletes a file of a lower layer, replaces a directory with another and a directory with a
// file, and writes files of every kind with modes, owners and times to keep.
const changes = [
  'set -e',
  'rm /etc/motd',
  'rm -rf /home/app && mkdir /home/app && echo fresh > /home/app/only',
  'rm -rf /root && echo now-a-file > /root',
  'mkdir /data && echo hello > /data/file && chmod 0754 /data/file && chown 1234:5678 /data/file',
  'touch -d "2001-02-03 04:05:06" /data/file',
  'ln -s file /data/link && ln /data/file /data/hard && mkfifo /data/fifo',
  'mkdir /data/sticky && chmod 1777 /data/sticky',
].join('\n');

const check = [
  'test -e /etc/motd || echo motd-gone',
  'ls -A /home/app',
  'cat /root',
  'stat -c "%a %u:%g %Y %h" /data/file',
  'readlink /data/link',
  'stat -c "%i" /data/file /data/hard | uniq | wc -l',
  'stat -c "%F %a" /data/fifo /data/sticky',
].join('; ');

const checked = ['motd-gone', 'only', 'now-a-file', '754 1234:5678 981173106 2', 'file', '1', 'fifo 644', 'directory 1777', ''].join('\n');

// A file capability (VFS_CAP_REVISION_2, permitted CAP_NET_RAW): a binary xattr value.
const netRawCapability = Buffer.from('0100000200200000000000000000000000000000', 'hex');

/** The committed image and its new layer blob, shared by the tests that look at it. */
let committed: Promise<{ store: ImageStore; info: ImageInfo; layerBlob: string }> | undefined;
function commitOnce(): Promise<{ store: ImageStore; info: ImageInfo; layerBlob: string }> {
  committed ??= (async () => {
    const store = await freshStore();
    const box = await scratchPath('box');
    await fs.mkdir(box);
    await sh(store, 'localhost/busybox:latest', changes, box);
    // Extended attributes, set on the kept layer from outside (busybox has no setfattr).
    native().lsetxattr(path.join(box, 'upper/data/file'), 'user.note', Buffer.from('kept'));
    native().lsetxattr(path.join(box, 'upper/data/file'), 'security.capability', netRawCapability);
    const info = await store.commit({
      from: 'localhost/busybox:latest',
      upperDir: box,
      reference: 'localhost/committed:1',
      config: { cmd: ['cat', 'file'], workingDir: '/data', env: ['GREETING=hi'], labels: { committed: 'yes' } },
      message: 'change everything',
      author: 'nsbox tests',
    });
    return { store, info, layerBlob: path.join(store.root, 'blobs/sha256', info.layers.at(-1)!.digest.slice(7)) };
  })();
  return committed;
}

test('run → change → commit → run: the new image shows every change, deletions included', async (t) => {
  const { store, info } = await commitOnce();
  const parent = await store.inspect('localhost/busybox:latest');
  t.deepEqual(info.references, ['localhost/committed:1', `localhost/committed@${info.digest}`]);
  t.deepEqual(info.layers.slice(0, -1), parent.layers, 'the parent layers, then one more');
  t.is(info.layers.length, parent.layers.length + 1);
  t.is(await sh(store, 'localhost/committed:1', check), checked);
  // The parent is unchanged.
  t.is(await sh(store, 'localhost/busybox:latest', 'cat /etc/motd; ls /home/app | wc -l'), `${MOTD_TEXT}0\n`);
});

test('commit applies config changes and appends history; the new Cmd runs', async (t) => {
  const { store, info } = await commitOnce();
  const parent = await store.inspect('localhost/busybox:latest');
  t.deepEqual(info.config.cmd, ['cat', 'file']);
  t.is(info.config.workingDir, '/data');
  t.deepEqual(info.config.env, [...parent.config.env, 'GREETING=hi']);
  t.deepEqual(info.config.labels, { ...parent.config.labels, committed: 'yes' });
  const { layers, config } = await store.resolve('localhost/committed:1', { rootless: false });
  t.is((await run({ image: { layers, config } })).stdout, 'hello\n');

  const manifest = JSON.parse(await fs.readFile(path.join(store.root, 'blobs/sha256', info.digest.slice(7)), 'utf8'));
  const blob = JSON.parse(await fs.readFile(path.join(store.root, 'blobs/sha256', manifest.config.digest.slice(7)), 'utf8'));
  t.is(blob.author, 'nsbox tests');
  t.like(blob.history.at(-1), { created_by: 'nsbox commit', comment: 'change everything', author: 'nsbox tests' });
  t.is(blob.rootfs.diff_ids.at(-1), info.layers.at(-1)!.diffId);
  t.is(manifest.layers.at(-1).mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
});

test('GNU tar reads the new layer: OCI whiteouts, an opaque directory, a hard link, owners, modes, xattrs', async (t) => {
  const { layerBlob, info } = await commitOnce();
  const listing = await tool('tar', ['--numeric-owner', '-tvzf', layerBlob]);
  t.regex(listing, /^-rw------- 0\/0 +0 .* etc\/\.wh\.motd$/m);
  t.regex(listing, /^-rwxr-xr-x 0\/0 +0 .* home\/app\/\.wh\.\.wh\.\.opq$/m);
  t.regex(listing, /^-rw-r--r-- 0\/0 +11 .* root$/m, 'a directory replaced by a file');
  t.regex(listing, /^-rwxr-xr-- 1234\/5678 +6 2001-02-03 04:05 data\/file$/m);
  t.regex(listing, /^hrwxr-xr-- 1234\/5678 +0 .* data\/hard link to data\/file$/m);
  t.regex(listing, /^lrwxrwxrwx 0\/0 +0 .* data\/link -> file$/m);
  t.regex(listing, /^prw-r--r-- 0\/0 +0 .* data\/fifo$/m);
  t.regex(listing, /^drwxrwxrwt 0\/0 +0 .* data\/sticky\/$/m);
  // The tar hashes to the diffID the config records.
  t.is(`sha256:${(await tool('sh', ['-c', 'gzip -dc "$1" | sha256sum', 'sh', layerBlob])).split(' ')[0]}`, info.layers.at(-1)!.diffId);

  const out = await scratchPath('extracted');
  await fs.mkdir(out);
  await tool('tar', ['--xattrs', '--xattrs-include=*', '-xzf', layerBlob, '-C', out]);
  t.is(native().lgetxattr(path.join(out, 'data/file'), 'user.note')?.toString(), 'kept');
  t.deepEqual(native().lgetxattr(path.join(out, 'data/file'), 'security.capability'), netRawCapability);
  t.is(native().lgetxattr(path.join(out, 'home/app'), 'trusted.overlay.opaque'), null, "overlay's own xattrs stay out of the layer");
});

test('the committed image saved: skopeo inspects it, umoci unpacks it with the deletions applied', async (t) => {
  const { store, info } = await commitOnce();
  const archive = await scratchPath('committed.tar');
  await store.save('localhost/committed:1', archive);
  const inspected = JSON.parse(await tool('skopeo', ['inspect', `oci-archive:${archive}:localhost/committed:1`])) as { Digest: string; Layers: string[]; Labels: Record<string, string> };
  t.is(inspected.Digest, info.digest);
  t.deepEqual(inspected.Layers, info.layers.map((l) => l.digest));
  t.is(inspected.Labels.committed, 'yes');

  const layout = await scratchPath('layout');
  await tool('skopeo', ['copy', '--quiet', `oci-archive:${archive}:localhost/committed:1`, `oci:${layout}:c1`]);
  const bundle = await scratchPath('bundle');
  await tool('umoci', ['unpack', '--image', `${layout}:c1`, bundle]);
  const rootfs = path.join(bundle, 'rootfs');
  await t.throwsAsync(fs.lstat(path.join(rootfs, 'etc/motd')));
  t.deepEqual(await fs.readdir(path.join(rootfs, 'home/app')), ['only']);
  t.is(await fs.readFile(path.join(rootfs, 'root'), 'utf8'), 'now-a-file\n');
  const file = await fs.stat(path.join(rootfs, 'data/file'));
  t.deepEqual([file.mode & 0o7777, file.uid, file.gid, file.mtime.getTime(), file.nlink], [0o754, 1234, 5678, 981173106_000, 2]);
  t.true((await fs.lstat(path.join(rootfs, 'data/fifo'))).isFIFO());
  t.is(native().lgetxattr(path.join(rootfs, 'data/file'), 'user.note')?.toString(), 'kept');
});

test('commit errors are typed and leave the store as it was', async (t) => {
  const store = await freshStore();
  const box = await scratchPath('box');
  await fs.mkdir(box);
  await sh(store, 'localhost/busybox:latest', 'echo x > /.wh.sneaky', box);
  const before = await treeOf(store.root);
  const sneaky = await t.throwsAsync(store.commit({ from: 'localhost/busybox:latest', upperDir: box, reference: 'localhost/x:1' }));
  t.is(code(sneaky), 'ERR_UNSUPPORTED');
  t.regex(sneaky!.message, /`\/\.wh\.sneaky`: a name starting with `\.wh\.` is a whiteout/);
  t.deepEqual(await treeOf(store.root), before);

  const empty = await scratchPath('empty');
  await fs.mkdir(empty);
  t.is(code(await t.throwsAsync(store.commit({ from: 'localhost/busybox:latest', upperDir: empty, reference: 'localhost/x:1' }))), 'ERR_INVALID_OPTION');
  t.is(code(await t.throwsAsync(store.commit({ from: 'localhost/nope:1', upperDir: box, reference: 'localhost/x:1' }))), 'ERR_IMAGE_NOT_FOUND');
  t.is(code(await t.throwsAsync(store.commit({ from: 'localhost/busybox:latest', upperDir: box, reference: 'localhost/x:1', config: { env: ['NO_EQUALS'] } }))), 'ERR_INVALID_OPTION');
  t.is(code(await t.throwsAsync(store.commit({ from: 'localhost/busybox:latest', upperDir: box, reference: 'localhost/x:1', config: { cmnd: [] } as never }))), 'ERR_INVALID_OPTION');
  t.is(code(await t.throwsAsync(store.commit({ from: 'localhost/busybox:latest', upperDir: box, reference: `localhost/x@sha256:${'a'.repeat(64)}` }))), 'ERR_INVALID_OPTION');
  t.deepEqual(await treeOf(store.root), before);
});

test('an empty writable layer commits to an image that runs like its parent', async (t) => {
  const store = await freshStore();
  const box = await scratchPath('box');
  await fs.mkdir(box);
  await sh(store, 'localhost/busybox:latest', 'true', box);
  const info = await store.commit({ from: 'localhost/busybox:latest', upperDir: box, reference: 'localhost/same:1' });
  t.is(await sh(store, 'localhost/same:1', 'cat /etc/motd'), MOTD_TEXT);
  t.is((await tool('tar', ['-tzf', path.join(store.root, 'blobs/sha256', info.layers.at(-1)!.digest.slice(7))])).trim(), '');
});

// Rootless: nobody runs, commits (the upper dir holds nobody's ids and overlayfs' userxattr
// markers), and runs the new image, all in its own store.
test.serial('rootless: the writable layer of an unprivileged run commits with the ids the sandbox saw', async (t) => {
  const home = mkdtempSync(path.join(tmpdir(), 'nsbox-rootless-commit-'));
  chmodSync(home, 0o777);
  t.teardown(() => rmSync(home, { recursive: true, force: true }));
  const fixture = new URL('../fixtures/rootless-commit.ts', import.meta.url).pathname;
  const [command, ...args] = runAsNobody([process.execPath, '--import', 'tsx', fixture, (await busyboxOciLayout()).dir, path.join(home, 'box')]);
  const { stdout } = await promisify(execFile)(command!, args, {
    env: { PATH: process.env.PATH, NSBOX_HOME: path.join(home, 'state'), NSBOX_RUN_DIR: path.join(home, 'run'), HOME: home },
    cwd: process.cwd(),
  });
  const outcome = JSON.parse(stdout) as { ok: boolean; message?: string; upperOwner?: number; whiteout?: string; opaque?: string; stdout?: string; layer?: string };
  t.true(outcome.ok, outcome.message);
  t.is(outcome.upperOwner, NOBODY_UID, 'the upper directory holds host ids');
  t.is(outcome.whiteout, 'char 0:0');
  t.is(outcome.opaque, 'y', 'the userxattr form of an opaque directory');
  t.is(outcome.stdout, 'motd-gone\nonly\nrootless\n0:0\n');
  const listing = await tool('tar', ['--numeric-owner', '-tvzf', path.join(home, 'state/store/blobs/sha256', outcome.layer!.slice(7))]);
  t.regex(listing, /^-rw-r--r-- 0\/0 .* data\/file$/m, 'owned by root inside, not by nobody');
  t.regex(listing, / etc\/\.wh\.motd$/m);
  t.regex(listing, / home\/app\/\.wh\.\.wh\.\.opq$/m);
});
