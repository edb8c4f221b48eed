// SPDX-License-Identifier: Apache-2.0
// resolveOciImage on the umoci image: cached layer dirs, whiteouts overlayfs honours (rootful and rootless), failures.
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { dir } from 'tmp-promise';
import { getXattr } from '../../src/image/native-fs.js';
import { resolveOciImage } from '../../src/image/layer-store.js';
import { readOciImage } from '../../src/image/oci-layout.js';
import { hasUnprivilegedUserns, isRoot } from '../helpers/capabilities.js';
import { inOverlay } from '../helpers/overlay.js';
import { removeUmociImage, SECRET_MTIME, umociImage, V3_CONFIG } from '../helpers/umoci-image.js';

const scratch = dir({ prefix: 'nsbox-layer-store-test-', unsafeCleanup: true });
test.after.always(async () => {
  await (await scratch).cleanup();
  await removeUmociImage();
});

// Rootful unpacking needs root (mknod, trusted.* xattrs, chown); the rootless test mounts in a user namespace.
const rootTest = isRoot() ? test : test.skip;
const usernsTest = isRoot() || hasUnprivilegedUserns() ? test : test.skip;
// For the tests that do not depend on the form: whichever this user can unpack.
const rootless = !isRoot();

let dirs = 0;
async function freshDir(name: string): Promise<string> {
  const d = path.join((await scratch).path, `${name}-${dirs++}`);
  await fs.mkdir(d);
  return d;
}

/** Entries of the layer cache for `rootless`, sorted. */
async function cached(cacheRoot: string, forRootless = rootless): Promise<string[]> {
  return (await fs.readdir(path.join(cacheRoot, forRootless ? 'layers-rootless' : 'layers'))).sort();
}

function hexOf(digest: string): string {
  return digest.slice('sha256:'.length);
}

/** A copy of the umoci layout, free to edit. */
async function copyOfLayout(): Promise<string> {
  const copy = path.join(await freshDir('layout'), 'oci');
  await fs.cp((await umociImage()).layout, copy, { recursive: true });
  return copy;
}

/** Rewrites tag `tag`'s config with `edit`, re-hashing config, manifest and index.json so only the edit is wrong. */
async function editConfig(layout: string, tag: string, edit: (config: { rootfs: { diff_ids: string[] } }) => void): Promise<void> {
  const store = async (value: unknown): Promise<{ digest: string; size: number }> => {
    const bytes = Buffer.from(JSON.stringify(value));
    const hex = createHash('sha256').update(bytes).digest('hex');
    await fs.writeFile(path.join(layout, 'blobs/sha256', hex), bytes);
    return { digest: `sha256:${hex}`, size: bytes.length };
  };
  const load = async (digest: string) => JSON.parse(await fs.readFile(path.join(layout, 'blobs/sha256', hexOf(digest)), 'utf8'));
  const index = JSON.parse(await fs.readFile(path.join(layout, 'index.json'), 'utf8'));
  const entry = index.manifests.find((m: { annotations: Record<string, string> }) => m.annotations['org.opencontainers.image.ref.name'] === tag);
  const manifest = await load(entry.digest);
  const config = await load(manifest.config.digest);
  edit(config);
  Object.assign(manifest.config, await store(config));
  Object.assign(entry, await store(manifest));
  await fs.writeFile(path.join(layout, 'index.json'), JSON.stringify(index));
}

rootTest('unpacks each layer once into <cacheRoot>/layers/<diffID hex>, with its content', async (t) => {
  const { layout } = await umociImage();
  const cacheRoot = await freshDir('cache');
  const image = await resolveOciImage(layout, { tag: 'v3', cacheRoot, rootless: false });
  const { layers: refs, digest } = await readOciImage(layout, { tag: 'v3' });
  t.is(image.digest, digest);
  t.deepEqual(image.config, V3_CONFIG);
  t.deepEqual(image.layers, refs.map((l) => path.join(cacheRoot, 'layers', hexOf(l.diffId))));
  t.deepEqual(await cached(cacheRoot, false), refs.map((l) => hexOf(l.diffId)).sort());

  const [base, deletions, opaque] = image.layers;
  t.deepEqual(await fs.readFile(path.join(base, 'bin/busybox')), await fs.readFile('/bin/busybox'));
  t.is((await fs.stat(path.join(base, 'bin/busybox'))).mode & 0o777, 0o755);
  t.is(await fs.readlink(path.join(base, 'bin/sh')), 'busybox');
  t.is((await fs.stat(path.join(base, 'etc/hostname.hard'))).ino, (await fs.stat(path.join(base, 'etc/hostname'))).ino);
  t.like(await fs.stat(path.join(base, 'etc/secret')), { mode: 0o100640, uid: 1000, gid: 1001, mtimeMs: SECRET_MTIME.getTime() });
  t.is((await fs.stat(path.join(base, 'tmp'))).mode & 0o7777, 0o1777);

  for (const gone of ['etc/motd', 'data/sub']) {
    const whiteout = await fs.lstat(path.join(deletions, gone));
    t.true(whiteout.isCharacterDevice() && whiteout.rdev === 0, gone);
  }
  t.is(await fs.readFile(path.join(deletions, 'etc/hostname'), 'utf8'), 'changed\n');
  t.is(getXattr(path.join(opaque, 'data'), 'trusted.overlay.opaque'), 'y');
  t.deepEqual(await fs.readdir(path.join(opaque, 'data')), ['new.txt']);

  // Resolving again reuses the same directories.
  const inode = (await fs.stat(base)).ino;
  t.deepEqual((await resolveOciImage(layout, { tag: 'v3', cacheRoot, rootless: false })).layers, image.layers);
  t.is((await fs.stat(base)).ino, inode);
});

rootTest('overlayfs honours the rootful whiteouts: deleted file gone, opaque dir replaced, busybox runs', async (t) => {
  const { layout } = await umociImage();
  const { layers } = await resolveOciImage(layout, { tag: 'v3', cacheRoot: await freshDir('cache'), rootless: false });
  const out = await inOverlay(layers, false, 'ls -A etc; echo --; ls -A data; echo --; chroot . /bin/sh -c "/bin/busybox cat /etc/hostname /data/new.txt"');
  t.is(out, 'hostname\nhostname.hard\nsecret\n--\nnew.txt\n--\nchanged\nnew\n');
});

usernsTest('rootless: xattr whiteouts that an overlay mounted with userxattr in a user namespace honours', async (t) => {
  const { layout } = await umociImage();
  const { layers } = await resolveOciImage(layout, { tag: 'v3', cacheRoot: await freshDir('cache'), rootless: true });
  const [base, deletions, opaque] = layers;
  const motd = await fs.lstat(path.join(deletions, 'etc/motd'));
  t.true(motd.isFile() && motd.size === 0);
  t.is(getXattr(path.join(deletions, 'etc/motd'), 'user.overlay.whiteout'), 'y');
  t.is(getXattr(path.join(deletions, 'etc'), 'user.overlay.opaque'), 'x');
  t.is(getXattr(path.join(opaque, 'data'), 'user.overlay.opaque'), 'y');
  t.is((await fs.stat(path.join(base, 'etc/secret'))).uid, process.getuid!());

  const out = await inOverlay(layers, true, 'ls -A etc; echo --; ls -A data; echo --; chroot . /bin/sh -c "/bin/busybox cat /etc/hostname"');
  t.is(out, 'hostname\nhostname.hard\nsecret\n--\nnew.txt\n--\nchanged\n');
});

rootTest('one cache root holds the rootful and the rootless form of a layer side by side', async (t) => {
  const { layout } = await umociImage();
  const cacheRoot = await freshDir('cache');
  const trustedForm = await resolveOciImage(layout, { tag: 'v2', cacheRoot, rootless: false });
  const userForm = await resolveOciImage(layout, { tag: 'v2', cacheRoot, rootless: true });
  t.deepEqual(userForm.layers, trustedForm.layers.map((l) => path.join(cacheRoot, 'layers-rootless', path.basename(l))));
  t.true((await fs.lstat(path.join(trustedForm.layers[1], 'etc/motd'))).isCharacterDevice());
  t.true((await fs.lstat(path.join(userForm.layers[1], 'etc/motd'))).isFile());
});

test('concurrent resolves of the same image leave one directory per layer and no temp dirs', async (t) => {
  const { layout } = await umociImage();
  const cacheRoot = await freshDir('cache');
  const results = await Promise.all([1, 2, 3].map(() => resolveOciImage(layout, { tag: 'v3', cacheRoot, rootless })));
  t.deepEqual(results[1].layers, results[0].layers);
  t.deepEqual(results[2].layers, results[0].layers);
  t.deepEqual(await cached(cacheRoot), results[0].layers.map((l) => path.basename(l)).sort());
  t.deepEqual(await fs.readdir(path.join(results[0].layers[2], 'data')), ['new.txt']);
});

test('a corrupt layer blob is ERR_DIGEST_MISMATCH naming it, and leaves no layer or temp dir', async (t) => {
  const layout = await copyOfLayout();
  const [layer] = (await readOciImage(layout, { tag: 'v1' })).layers;
  const file = path.join(layout, 'blobs/sha256', hexOf(layer.digest));
  const bytes = await fs.readFile(file);
  bytes[Math.floor(bytes.length / 2)] ^= 0xff;
  await fs.writeFile(file, bytes);
  const cacheRoot = await freshDir('cache');
  const error = await t.throwsAsync(resolveOciImage(layout, { tag: 'v1', cacheRoot, rootless }));
  t.like(error, { code: 'ERR_DIGEST_MISMATCH' });
  t.true(error!.message.includes(layer.digest));
  t.deepEqual(await cached(cacheRoot), []);
});

test('a diff_id the layer does not hash to is ERR_DIGEST_MISMATCH, and leaves no layer dir', async (t) => {
  const layout = await copyOfLayout();
  const wrong = `sha256:${'0'.repeat(64)}`;
  await editConfig(layout, 'v1', (config) => {
    config.rootfs.diff_ids[0] = wrong;
  });
  const cacheRoot = await freshDir('cache');
  const error = await t.throwsAsync(resolveOciImage(layout, { tag: 'v1', cacheRoot, rootless }));
  t.like(error, { code: 'ERR_DIGEST_MISMATCH' });
  t.true(error!.message.includes(wrong));
  t.deepEqual(await cached(cacheRoot), []);
});

test('a layer larger than maxLayerBytes is ERR_IMAGE_INVALID and its temp dir is removed', async (t) => {
  const { layout } = await umociImage();
  const cacheRoot = await freshDir('cache');
  const error = await t.throwsAsync(resolveOciImage(layout, { tag: 'v1', cacheRoot, rootless, maxLayerBytes: 64 * 1024 }));
  t.like(error, { code: 'ERR_IMAGE_INVALID' });
  t.deepEqual(await cached(cacheRoot), []);
});
