// SPDX-License-Identifier: Apache-2.0
// Builds the shared test fixtures (static probe, busybox rootfs, umoci-made OCI layouts) once per content hash.
//
// Everything lands in `$NSBOX_TEST_FIXTURES_DIR` (default: `os.tmpdir()/nsbox-test-fixtures`)
// under `<key>/`, where key hashes probe.c, the host's static busybox and this file. Each
// artifact is built in a `.tmp-*` sibling and renamed into place, so parallel ava workers
// (separate processes) may race: the first rename wins and the others throw their copy away.
// The results are shared and must be treated as read-only by tests (copy or overlay them).
//
//   <key>/bin/probe       probeBinary()
//   <key>/rootfs/         probeRootfs()
//   <key>/oci-probe/      probeOciLayout()    one layer: the rootfs above
//   <key>/oci-busybox/    busyboxOciLayout()  two layers: base without probe, then -/bin/yes +/etc/motd
//
// Only root builds in `<key>/`. Other users take finished artifacts from there and build what
// is missing in `<key>-uid<N>/` (unpacked with `umoci --rootless`, owned by that user).
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { constants as fsConstants, existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** Absolute path of the probe's C source. */
// Found from the checkout's root rather than from this file, which the benchmarks also bundle into dist/.
export const PROBE_SOURCE = path.join(checkoutRoot(), 'test', 'fixtures', 'probe.c');

function checkoutRoot(): string {
  for (let dir = path.dirname(fileURLToPath(import.meta.url)); ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'test', 'fixtures', 'probe.c'))) return dir;
    if (path.dirname(dir) === dir) throw new Error('test/fixtures/probe.c not found: the probe image needs the nsbox repository checkout');
  }
}

/** The tag every fixture OCI layout carries. */
export const OCI_TAG = 'latest';

/** `PATH` in the fixture images' config (also a sensible PATH for runs in the plain rootfs). */
export const OCI_PATH_ENV = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Applets that must exist as /bin/<name> symlinks (every other applet busybox lists is linked too). */
export const REQUIRED_APPLETS = [
  'sh', 'ls', 'cat', 'echo', 'id', 'sleep', 'hostname', 'env', 'ps', 'mount',
  'true', 'false', 'grep', 'wc', 'head', 'yes',
] as const;

/** The `app` user of the fixture rootfs. */
export const APP_UID = 1000;
export const APP_GID = 1000;

/** Text of /etc/motd added by the second layer of {@link busyboxOciLayout}. */
export const MOTD_TEXT = 'nsbox busybox fixture: layer 2\n';

export interface OciLayout {
  /** The OCI image layout directory (has `oci-layout` and `index.json`). */
  dir: string;
  /** Its tag, always {@link OCI_TAG}. */
  tag: string;
}

const PASSWD = [
  'root:x:0:0:root:/root:/bin/sh',
  `app:x:${APP_UID}:${APP_GID}:app:/home/app:/bin/sh`,
  'nobody:x:65534:65534:nobody:/nonexistent:/bin/false',
  '',
].join('\n');

const GROUP = ['root:x:0:', `app:x:${APP_GID}:`, 'nobody:x:65534:', ''].join('\n');

const isRoot = () => process.geteuid?.() === 0;

async function run(file: string, args: string[], what: string): Promise<string> {
  try {
    const { stdout } = await execFileAsync(file, args, { maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') {
      throw new Error(`${what}: \`${file}\` is not installed (see PACKAGES in .ci/run)`, { cause: error });
    }
    throw new Error(`${what}: \`${file} ${args.join(' ')}\` failed: ${e.stderr?.trim() || e.message}`, { cause: error });
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await fs.lstat(p);
    return true;
  } catch {
    return false;
  }
}

/** Whether an ELF file asks for a program interpreter (PT_INTERP), i.e. is dynamically linked. */
async function isDynamicElf(file: string): Promise<boolean> {
  const handle = await fs.open(file, 'r');
  try {
    const head = Buffer.alloc(64);
    await handle.read(head, 0, 64, 0);
    if (head.readUInt32BE(0) !== 0x7f454c46) throw new Error(`${file} is not an ELF file`);
    const is64 = head[4] === 2;
    const le = head[5] === 1;
    const u16 = (b: Buffer, o: number) => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
    const u32 = (b: Buffer, o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
    const phoff = is64 ? Number(le ? head.readBigUInt64LE(32) : head.readBigUInt64BE(32)) : u32(head, 28);
    const phentsize = u16(head, is64 ? 54 : 42);
    const phnum = u16(head, is64 ? 56 : 44);
    const table = Buffer.alloc(phentsize * phnum);
    await handle.read(table, 0, table.length, phoff);
    for (let i = 0; i < phnum; i++) if (u32(table, i * phentsize) === 3 /* PT_INTERP */) return true;
    return false;
  } finally {
    await handle.close();
  }
}

let busyboxPromise: Promise<string> | undefined;

/** The host's busybox, which must be statically linked (Debian: busybox-static). */
function hostBusybox(): Promise<string> {
  busyboxPromise ??= (async () => {
    const dirs = (process.env.PATH ?? '').split(':').filter(Boolean);
    for (const dir of [...dirs, '/bin', '/usr/bin', '/sbin', '/usr/sbin']) {
      const candidate = path.join(dir, 'busybox');
      try {
        await fs.access(candidate, fsConstants.X_OK);
      } catch {
        continue;
      }
      const real = await fs.realpath(candidate);
      if (await isDynamicElf(real)) {
        throw new Error(`${real} is dynamically linked; the fixtures need a static busybox (apt-get install busybox-static)`);
      }
      return real;
    }
    throw new Error('busybox is not installed (apt-get install busybox-static)');
  })();
  return busyboxPromise;
}

let keyPromise: Promise<string> | undefined;

/** Hash of everything the fixtures are made from. */
function cacheKey(): Promise<string> {
  keyPromise ??= (async () => {
    const hash = createHash('sha256').update('nsbox-test-fixtures\0');
    for (const file of [PROBE_SOURCE, await hostBusybox(), fileURLToPath(import.meta.url)]) {
      hash.update(await fs.readFile(file)).update('\0');
    }
    return hash.digest('hex').slice(0, 16);
  })();
  return keyPromise;
}

/** The root of the fixture cache. */
export function fixturesRoot(): string {
  return process.env.NSBOX_TEST_FIXTURES_DIR ?? path.join(os.tmpdir(), 'nsbox-test-fixtures');
}

/**
 * Where finished artifacts are looked up, best first, and (last entry) where this process
 * builds: root uses `<key>/`; anyone else reads root's `<key>/` but builds in `<key>-uid<N>/`,
 * so a rootless build (no chown, files owned by the builder) never stands in for root's.
 */
function cacheDirs(key: string): string[] {
  const shared = path.join(fixturesRoot(), key);
  return isRoot() ? [shared] : [shared, `${shared}-uid${process.geteuid?.() ?? 'x'}`];
}

async function makeBuildDir(dir: string): Promise<void> {
  const root = fixturesRoot();
  if ((await fs.mkdir(root, { recursive: true })) !== undefined) {
    // Sticky and world-writable like /tmp, so builders running as other users can add their dirs.
    await fs.chmod(root, 0o1777).catch(() => {});
  }
  await fs.mkdir(dir, { recursive: true });
  await fs.chmod(dir, 0o755).catch(() => {});
  // Leftovers of builders that were killed mid-build (no build takes an hour).
  const stale = Date.now() - 3600_000;
  for (const entry of await fs.readdir(dir)) {
    if (!entry.startsWith('.tmp-')) continue;
    const p = path.join(dir, entry);
    const stat = await fs.lstat(p).catch(() => undefined);
    if (stat && stat.mtimeMs < stale) await fs.rm(p, { recursive: true, force: true }).catch(() => {});
  }
}

function tmpName(dir: string, name: string): string {
  return path.join(dir, `.tmp-${name}-${process.pid}-${randomBytes(4).toString('hex')}`);
}

const artifacts = new Map<string, Promise<string>>();

/**
 * The finished artifact `name`, building it if no process has. `build` gets a path that does
 * not exist yet, creates the artifact there, and may use `scratch` (created, removed afterwards).
 */
function artifact(name: string, build: (target: string, scratch: string) => Promise<void>): Promise<string> {
  let promise = artifacts.get(name);
  if (!promise) {
    promise = (async () => {
      const dirs = cacheDirs(await cacheKey());
      for (const dir of dirs) {
        const done = path.join(dir, name);
        if (await exists(done)) return done;
      }
      const dir = dirs.at(-1)!;
      await makeBuildDir(dir);
      const final = path.join(dir, name);
      const target = tmpName(dir, name);
      const scratch = tmpName(dir, `${name}-scratch`);
      await fs.mkdir(scratch, { mode: 0o700 });
      try {
        await build(target, scratch);
        await fs.chmod(target, 0o755);
        try {
          await fs.rename(target, final);
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code;
          // Another process renamed its copy first: use that one.
          if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw error;
        }
        return final;
      } finally {
        await fs.rm(target, { recursive: true, force: true });
        await fs.rm(scratch, { recursive: true, force: true });
      }
    })();
    artifacts.set(name, promise);
    // A failed build may be retried by a later call.
    promise.catch(() => artifacts.delete(name));
  }
  return promise;
}

/** Path to the static probe binary compiled from test/fixtures/probe.c. */
export async function probeBinary(): Promise<string> {
  const dir = await artifact('bin', async (target) => {
    await fs.mkdir(target);
    const out = path.join(target, 'probe');
    await run('gcc', ['-static', '-O2', '-Wall', '-o', out, PROBE_SOURCE], 'building the probe');
    await fs.chmod(out, 0o755);
  });
  return path.join(dir, 'probe');
}

/** Fill `root` (which must exist) with the busybox base system, plus the probe when given. */
async function populateRootfs(root: string, probe?: string): Promise<void> {
  const dirs: Array<[string, number]> = [
    ['bin', 0o755], ['sbin', 0o755], ['usr', 0o755], ['usr/bin', 0o755], ['usr/sbin', 0o755],
    ['etc', 0o755], ['tmp', 0o1777], ['home', 0o755], ['home/app', 0o755], ['root', 0o700],
    ['proc', 0o555], ['dev', 0o755], ['sys', 0o555],
  ];
  await fs.chmod(root, 0o755);
  for (const [dir, mode] of dirs) {
    const p = path.join(root, dir);
    await fs.mkdir(p, { recursive: true });
    await fs.chmod(p, mode); // mkdir's mode is filtered by the umask
  }
  if (isRoot()) await fs.chown(path.join(root, 'home/app'), APP_UID, APP_GID);

  const busybox = await hostBusybox();
  await fs.copyFile(busybox, path.join(root, 'bin/busybox'));
  await fs.chmod(path.join(root, 'bin/busybox'), 0o755);
  const applets = (await run(busybox, ['--list'], 'listing busybox applets')).split('\n').filter(Boolean);
  const missing = REQUIRED_APPLETS.filter((a) => !applets.includes(a));
  if (missing.length > 0) throw new Error(`${busybox} lacks applets: ${missing.join(', ')}`);
  for (const applet of applets) {
    if (applet === 'busybox' || applet.includes('/')) continue;
    await fs.symlink('busybox', path.join(root, 'bin', applet));
  }

  await fs.writeFile(path.join(root, 'etc/passwd'), PASSWD, { mode: 0o644 });
  await fs.writeFile(path.join(root, 'etc/group'), GROUP, { mode: 0o644 });
  await fs.chmod(path.join(root, 'etc/passwd'), 0o644);
  await fs.chmod(path.join(root, 'etc/group'), 0o644);

  if (probe) {
    await fs.copyFile(probe, path.join(root, 'usr/bin/probe'));
    await fs.chmod(path.join(root, 'usr/bin/probe'), 0o755);
  }
}

/**
 * A plain rootfs directory: static busybox at /bin/busybox with /bin/<applet> symlinks,
 * /usr/bin/probe, /etc/passwd + /etc/group (root 0, app 1000, nobody 65534), /tmp (1777),
 * /home/app (owned by 1000:1000 when built as root), /root, and empty /proc /dev /sys.
 * Shared between tests: never write into it.
 */
export async function probeRootfs(): Promise<string> {
  const probe = await probeBinary();
  return artifact('rootfs', async (target) => {
    await fs.mkdir(target);
    await populateRootfs(target, probe);
  });
}

/** Build an OCI layout at `layout` with umoci: one repack per entry of `layers`, then the config. */
async function umociLayout(
  layout: string,
  scratch: string,
  layers: Array<(rootfs: string) => Promise<void>>,
): Promise<void> {
  const image = `${layout}:${OCI_TAG}`;
  const bundle = path.join(scratch, 'bundle');
  const rootless = isRoot() ? [] : ['--rootless'];
  await run('umoci', ['init', '--layout', layout], 'umoci init');
  await run('umoci', ['new', '--image', image], 'umoci new');
  await run('umoci', ['unpack', ...rootless, '--image', image, bundle], 'umoci unpack');
  for (const layer of layers) {
    await layer(path.join(bundle, 'rootfs'));
    // --refresh-bundle: the next repack diffs against this layer, not the empty image.
    await run('umoci', ['repack', '--refresh-bundle', '--image', image, bundle], 'umoci repack');
  }
  await run('umoci', [
    'config', '--image', image,
    '--clear=config.env', `--config.env=PATH=${OCI_PATH_ENV}`,
    '--clear=config.cmd', '--config.cmd=sh',
    '--config.workingdir=/',
  ], 'umoci config');
  await run('umoci', ['gc', '--layout', layout], 'umoci gc');
  await run('chmod', ['-R', 'a+rX', layout], 'making the layout readable');
}

/**
 * One-layer OCI image layout (gzip layer) with the {@link probeRootfs} content, tag `latest`.
 * The layer is populated by the same code as the rootfs rather than copied from it, so a
 * non-root builder needs no access to root's copy (its /root is 0700).
 */
export async function probeOciLayout(): Promise<OciLayout> {
  const probe = await probeBinary();
  const dir = await artifact('oci-probe', (target, scratch) =>
    umociLayout(target, scratch, [(bundleRootfs) => populateRootfs(bundleRootfs, probe)]),
  );
  return { dir, tag: OCI_TAG };
}

/**
 * Two-layer OCI image layout, busybox only (no probe), tag `latest`: layer 1 is the base
 * system of {@link probeRootfs} without /usr/bin/probe; layer 2 deletes /bin/yes (a
 * `bin/.wh.yes` whiteout) and adds /etc/motd ({@link MOTD_TEXT}).
 */
export async function busyboxOciLayout(): Promise<OciLayout> {
  const dir = await artifact('oci-busybox', (target, scratch) =>
    umociLayout(target, scratch, [
      (bundleRootfs) => populateRootfs(bundleRootfs),
      async (bundleRootfs) => {
        await fs.rm(path.join(bundleRootfs, 'bin/yes'));
        await fs.writeFile(path.join(bundleRootfs, 'etc/motd'), MOTD_TEXT, { mode: 0o644 });
        await fs.chmod(path.join(bundleRootfs, 'etc/motd'), 0o644);
      },
    ]),
  );
  return { dir, tag: OCI_TAG };
}
