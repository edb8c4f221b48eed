// SPDX-License-Identifier: Apache-2.0
// Checks that the test fixtures build and work: the probe, its guard, the rootfs and the umoci-made OCI layouts.
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import test from 'ava';
import { collect } from '../helpers/collect.js';
import { list } from 'tar';
import { isRoot } from '../helpers/capabilities.js';
import {
  MOTD_TEXT,
  OCI_PATH_ENV,
  REQUIRED_APPLETS,
  busyboxOciLayout,
  probeBinary,
  probeOciLayout,
  probeRootfs,
} from '../helpers/probe-image.js';

const execFileAsync = promisify(execFile);
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run a command to completion; never throws on a non-zero exit. */
function runCommand(file: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Result> {
  return collect(file, args, { env });
}

interface Descriptor {
  mediaType: string;
  digest: string;
}

async function readBlob<T>(layout: string, digest: string): Promise<T> {
  const [algorithm, hex] = digest.split(':');
  return JSON.parse(await fs.readFile(path.join(layout, 'blobs', algorithm!, hex!), 'utf8')) as T;
}

async function layerEntries(layout: string, layer: Descriptor): Promise<string[]> {
  const [algorithm, hex] = layer.digest.split(':');
  const entries: string[] = [];
  await list({ file: path.join(layout, 'blobs', algorithm!, hex!), onReadEntry: (e) => entries.push(e.path.replace(/^\.\//, '')) });
  return entries;
}

async function manifestOf(layout: string): Promise<{ layers: Descriptor[]; config: Descriptor }> {
  const index = await readBlobIndex(layout);
  const tagged = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === 'latest');
  if (!tagged) throw new Error(`no latest tag in ${layout}/index.json`);
  return readBlob(layout, tagged.digest);
}

async function readBlobIndex(layout: string) {
  return JSON.parse(await fs.readFile(path.join(layout, 'index.json'), 'utf8')) as {
    manifests: Array<Descriptor & { annotations?: Record<string, string> }>;
  };
}

test('the probe runs on the host', async (t) => {
  const probe = await probeBinary();
  const { stdout } = await execFileAsync(probe, ['echo', 'hi']);
  t.is(stdout, 'hi\n');
  const id = await runCommand(probe, ['id']);
  t.regex(id.stdout, /^uid=\d+ gid=\d+ groups=[\d,]*\n$/);
  const missing = await runCommand(probe, ['cat', '/no/such/file']);
  t.is(missing.code, 2);
  t.is(missing.stderr, 'errno=ENOENT\n');
});

test('the probe refuses attacks on the host', async (t) => {
  const probe = await probeBinary();
  const unguarded = await runCommand(probe, ['memhog', '1']);
  t.is(unguarded.code, 99);
  t.regex(unguarded.stderr, /^guard failed: /);
  t.is(unguarded.stdout, '');
  // Even with the right hostname, the host's pid is far above 2.
  const env = { ...process.env, PROBE_GUARD_HOSTNAME: os.hostname() };
  for (const args of [['memhog', '1'], ['forkbomb', '1'], ['kill-all'], ['sethostname', 'x'], ['fill', '/dev/null', '1']]) {
    const result = await runCommand(probe, args, env);
    t.is(result.code, 99, args.join(' '));
    t.regex(result.stderr, /^guard failed: pid \d+ > 2/, args.join(' '));
  }
});

test('the rootfs has busybox, the probe and the users', async (t) => {
  const rootfs = await probeRootfs();
  t.is(await fs.readlink(path.join(rootfs, 'bin/sh')), 'busybox');
  t.true((await fs.stat(path.join(rootfs, 'bin/sh'))).isFile());
  for (const applet of REQUIRED_APPLETS) {
    t.is(await fs.readlink(path.join(rootfs, 'bin', applet)), 'busybox', applet);
  }
  t.true(((await fs.stat(path.join(rootfs, 'usr/bin/probe'))).mode & 0o777) === 0o755);
  t.regex(await fs.readFile(path.join(rootfs, 'etc/passwd'), 'utf8'), /^app:x:1000:1000:/m);
  t.regex(await fs.readFile(path.join(rootfs, 'etc/group'), 'utf8'), /^app:x:1000:/m);
  t.is((await fs.stat(path.join(rootfs, 'tmp'))).mode & 0o7777, 0o1777);
  for (const dir of ['proc', 'dev', 'sys', 'home/app']) {
    t.deepEqual(await fs.readdir(path.join(rootfs, dir)), [], dir);
  }
  t.is(await probeRootfs(), rootfs, 'cached within the process');
});

test('the rootfs runs the probe, and the guard passes in fresh pid + uts namespaces (needs root)', async (t) => {
  if (!isRoot()) return t.fail('needs root');
  const rootfs = await probeRootfs();
  const env = { PATH: OCI_PATH_ENV };
  const plain = await runCommand('chroot', [rootfs, '/bin/sh', '-c', 'probe echo "$(id -u)" && cat /etc/passwd | wc -l'], env);
  t.is(plain.code, 0, plain.stderr);
  t.is(plain.stdout, '0\n3\n');
  const script = 'mount -t proc proc /proc && hostname guardbox && PROBE_GUARD_HOSTNAME=guardbox exec probe sethostname changed';
  const guarded = await runCommand('unshare', ['--pid', '--fork', '--uts', '--mount', 'chroot', rootfs, '/bin/sh', '-c', script], env);
  t.is(guarded.code, 0, guarded.stderr);
  t.is(guarded.stdout, 'changed\n');
  t.not(os.hostname(), 'changed');
});

test('the probe OCI layout is tagged latest and configured', async (t) => {
  const { dir, tag } = await probeOciLayout();
  t.is(tag, 'latest');
  await t.notThrowsAsync(fs.access(path.join(dir, 'index.json')));
  await t.notThrowsAsync(fs.access(path.join(dir, 'oci-layout')));
  const { stdout: tags } = await execFileAsync('umoci', ['ls', '--layout', dir]);
  t.deepEqual(tags.split('\n').filter(Boolean), ['latest']);

  const { stdout: configJson } = await execFileAsync('skopeo', ['inspect', '--config', `oci:${dir}:${tag}`]);
  const config = JSON.parse(configJson) as { config: { Env?: string[]; Cmd?: string[]; WorkingDir?: string } };
  t.deepEqual(config.config.Env, [`PATH=${OCI_PATH_ENV}`]);
  t.deepEqual(config.config.Cmd, ['sh']);
  t.is(config.config.WorkingDir, '/');

  const manifest = await manifestOf(dir);
  t.is(manifest.layers.length, 1);
  t.is(manifest.layers[0]!.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
  const entries = await layerEntries(dir, manifest.layers[0]!);
  t.true(entries.includes('usr/bin/probe'));
  t.true(entries.includes('bin/busybox'));
  // The layer holds exactly what the plain rootfs holds.
  const rootfs = await probeRootfs();
  const files = (await fs.readdir(rootfs, { recursive: true })).map(String);
  const strip = (p: string) => p.replace(/\/$/, '');
  t.deepEqual(entries.map(strip).filter((p) => p !== '' && p !== '.').sort(), files.sort());
});

test('the busybox OCI layout has a second layer with a whiteout and /etc/motd', async (t) => {
  const { dir } = await busyboxOciLayout();
  const { stdout: tags } = await execFileAsync('umoci', ['ls', '--layout', dir]);
  t.deepEqual(tags.split('\n').filter(Boolean), ['latest']);
  const manifest = await manifestOf(dir);
  t.is(manifest.layers.length, 2);
  const [base, top] = await Promise.all(manifest.layers.map((layer) => layerEntries(dir, layer)));
  t.true(base!.includes('bin/busybox'));
  t.true(base!.includes('bin/yes'));
  t.false(base!.includes('usr/bin/probe'));
  t.true(top!.includes('bin/.wh.yes'));
  t.true(top!.includes('etc/motd'));
  t.false(top!.includes('bin/busybox'), 'layer 2 holds only the changes');

  // Unpacked by an independent tool, the whiteout hides /bin/yes and motd is there.
  const bundle = await fs.mkdtemp(path.join(os.tmpdir(), 'nsbox-unpack-'));
  t.teardown(() => fs.rm(bundle, { recursive: true, force: true }));
  await execFileAsync('umoci', ['unpack', ...(isRoot() ? [] : ['--rootless']), '--image', `${dir}:latest`, path.join(bundle, 'b')]);
  const rootfs = path.join(bundle, 'b', 'rootfs');
  await t.throwsAsync(fs.lstat(path.join(rootfs, 'bin/yes')), { code: 'ENOENT' });
  t.is(await fs.readFile(path.join(rootfs, 'etc/motd'), 'utf8'), MOTD_TEXT);
});

test('concurrent builders in separate processes agree on one result', async (t) => {
  const cache = await fs.mkdtemp(path.join(os.tmpdir(), 'nsbox-fixtures-race-'));
  t.teardown(() => fs.rm(cache, { recursive: true, force: true }));
  const helper = new URL('../helpers/probe-image.ts', import.meta.url).href;
  const code = `const m = await import(${JSON.stringify(helper)});
const [rootfs, oci] = await Promise.all([m.probeRootfs(), m.probeOciLayout()]);
console.log(JSON.stringify({ rootfs, oci: oci.dir }));`;
  const env = { ...process.env, NSBOX_TEST_FIXTURES_DIR: cache };
  const runs = await Promise.all(
    [1, 2, 3].map(() =>
      execFileAsync(process.execPath, ['--import=tsx', '--input-type=module', '-e', code], { cwd: repoRoot, env }),
    ),
  );
  const results = runs.map((r) => JSON.parse(r.stdout) as { rootfs: string; oci: string });
  t.deepEqual(results[1], results[0]);
  t.deepEqual(results[2], results[0]);
  const [keyDir] = await fs.readdir(cache);
  t.deepEqual((await fs.readdir(path.join(cache, keyDir!))).sort(), ['bin', 'oci-probe', 'rootfs'], 'no temporary leftovers');
  t.is(await fs.readlink(path.join(results[0]!.rootfs, 'bin/sh')), 'busybox');
});
