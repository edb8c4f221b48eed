// SPDX-License-Identifier: Apache-2.0
// An empty named volume is filled with what the image has at its target (as `docker run -v
// newvol:/etc/x image` is), once: a volume with data is never written to; populate: false
// (Docker's nocopy) mounts it as it is. What the volume holds is compared with what the
// sandbox shows at that path without the volume: the kernel's overlayfs merges the layers there.
import test from 'ava';
import { constants, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync, chmodSync, chownSync, copyFileSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { runAsNobody } from '../helpers/capabilities.js';
import { busyboxOciLayout } from '../helpers/probe-image.js';

const fixture = new URL('../fixtures/rootless-run.ts', import.meta.url).pathname;

// A private state dir: volumes live under $NSBOX_HOME/volumes. Set before nsbox reads it.
const home = mkdtempSync(join(tmpdir(), 'nsbox-volume-populate-'));
process.env.NSBOX_HOME = home;
const { run, Sandbox, removeVolume, createVolume } = await import('../../src/index.js');
const { mknod, setXattr } = await import('../../src/image/native-fs.js');

test.after.always(() => {
  rmSync(home, { recursive: true, force: true });
});

// Every entry under `dir` inside the sandbox with its owner, mode, type, size and mtime, sorted.
const LISTING = (dir: string) => `cd ${dir} && find . -exec stat -c '%n %u:%g %a %F %s %Y' {} + | sort`;

test.serial('an empty volume takes the image’s content at its target (two layers, a whiteout): files, modes, owners; kept for the next sandbox; never refilled', async (t) => {
  const image = (await busyboxOciLayout()).dir;
  // What the image has at /etc and /home/app, through overlayfs, without a volume.
  const expected = await run({ image, command: ['sh', '-c', `${LISTING('/etc')}; echo; ${LISTING('/home/app')}; stat -c '%u:%g %a' /home/app`] });
  t.regex(expected.stdout, /\.\/motd 0:0 644 regular file/, 'the upper layer’s file');
  t.regex(expected.stdout, /\.\/passwd /, 'the lower layer’s file');
  t.regex(expected.stdout, /1000:1000 \d+\n$/);

  const mounts = [{ type: 'volume', source: 'etc', target: '/etc' }, { type: 'volume', source: 'app', target: '/home/app' }] as const;
  const seen = await run({ image, command: ['sh', '-c', `${LISTING('/etc')}; echo; ${LISTING('/home/app')}; stat -c '%u:%g %a' /home/app; echo kept > /etc/written`], mounts: [...mounts] });
  t.is(seen.stdout, expected.stdout, 'the volumes hold what the image has there, the root’s owner and mode included');
  const appRoot = statSync(join(home, 'volumes', 'app', '_data'));
  t.is(`${appRoot.uid}:${appRoot.gid}`, '1000:1000');

  // A long-lived sandbox sees the same volume, and what the last one wrote.
  await using box = await Sandbox.create({ image, mounts: [...mounts] });
  t.is((await box.exec(['cat', '/etc/written', '/etc/motd'])).stdout, 'kept\nnsbox busybox fixture: layer 2\n');
  await box.exec(['rm', '/etc/motd']);
  await box.remove();
  // Not empty: never filled again, so what was deleted stays deleted.
  const after = await run({ image, command: ['sh', '-c', 'ls /etc'], mounts: [...mounts] });
  t.false(after.stdout.split('\n').includes('motd'));
  t.true(after.stdout.split('\n').includes('written'));
  removeVolume('etc');
  removeVolume('app');
});

test.serial('a volume that already has data is mounted as it is', async (t) => {
  const image = (await busyboxOciLayout()).dir;
  const data = createVolume('had').path;
  writeFileSync(join(data, 'mine'), 'mine\n');
  const seen = await run({ image, command: ['ls', '-A', '/etc'], mounts: [{ type: 'volume', source: 'had', target: '/etc' }] });
  t.is(seen.stdout, 'mine\n');
  t.deepEqual(readdirSync(join(home, 'volumes', 'had')), ['_data'], 'no staging directory left');
  removeVolume('had');
});

test.serial('populate: false (Docker’s nocopy) and a target the image lacks leave the volume empty', async (t) => {
  const image = (await busyboxOciLayout()).dir;
  const seen = await run({ image, command: ['sh', '-c', 'ls -A /etc; stat -c "%u:%g %a" /etc; ls -A /data'], mounts: [{ type: 'volume', source: 'plain', target: '/etc', populate: false }, { type: 'volume', source: 'fresh', target: '/data' }] });
  t.is(seen.stdout, '0:0 755\n');
  t.deepEqual(readdirSync(join(home, 'volumes', 'plain', '_data')), []);
  // Filled on a later start without nocopy, as Docker does for an empty volume.
  const later = await run({ image, command: ['cat', '/etc/motd'], mounts: [{ type: 'volume', source: 'plain', target: '/etc' }] });
  t.is(later.stdout, 'nsbox busybox fixture: layer 2\n');
  removeVolume('plain');
  removeVolume('fresh');
});

test.serial('the copy merges layers as overlayfs does: whiteouts, opaque directories, symlinks, fifos, set-id modes, times', async (t) => {
  const layers = mkdtempSync(join(tmpdir(), 'nsbox-populate-layers-'));
  t.teardown(() => rmSync(layers, { recursive: true, force: true }));
  const [lower, upper] = [join(layers, 'lower'), join(layers, 'upper')];
  for (const dir of ['bin', 'tmp', 'proc', 'dev', 'sys', 'srv/x/sub', 'srv/x/opaque', 'srv/x/deeper/keep']) mkdirSync(join(lower, dir), { recursive: true });
  copyFileSync('/usr/bin/busybox', join(lower, 'bin/busybox'));
  for (const applet of ['sh', 'find', 'stat', 'sort', 'ls', 'cat']) symlinkSync('busybox', join(lower, 'bin', applet));
  writeFileSync(join(lower, 'srv/x/a'), 'a\n');
  chownSync(join(lower, 'srv/x/a'), 1000, 1001);
  chmodSync(join(lower, 'srv/x/a'), 0o4750);
  writeFileSync(join(lower, 'srv/x/gone'), 'deleted above\n');
  writeFileSync(join(lower, 'srv/x/opaque/old'), 'hidden by the opaque dir\n');
  writeFileSync(join(lower, 'srv/x/sub/low'), 'low\n');
  writeFileSync(join(lower, 'srv/x/deeper/keep/k'), 'k\n');
  symlinkSync('../a', join(lower, 'srv/x/sub/link'));
  mknod(join(lower, 'srv/x/fifo'), constants.S_IFIFO | 0o600, 0, 0);
  utimesSync(join(lower, 'srv/x/sub/low'), new Date('2001-02-03T04:05:06Z'), new Date('2001-02-03T04:05:06Z'));
  for (const dir of ['srv/x/sub', 'srv/x/opaque']) mkdirSync(join(upper, dir), { recursive: true });
  mknod(join(upper, 'srv/x/gone'), constants.S_IFCHR, 0, 0);
  setXattr(join(upper, 'srv/x/opaque'), 'trusted.overlay.opaque', 'y');
  writeFileSync(join(upper, 'srv/x/opaque/new'), 'new\n');
  writeFileSync(join(upper, 'srv/x/sub/high'), 'high\n');
  chownSync(join(upper, 'srv/x'), 1234, 1234);
  chmodSync(join(upper, 'srv/x'), 0o2710);
  const image = { layers: [lower, upper] };
  const expected = await run({ image, command: ['sh', '-c', `${LISTING('/srv/x')}; stat -c '%u:%g %a' /srv/x`] });
  t.notRegex(expected.stdout, /gone|old/);
  t.regex(expected.stdout, /\.\/fifo 0:0 600 fifo/);
  t.regex(expected.stdout, /\.\/a 1000:1001 4750 regular file/);
  t.regex(expected.stdout, /1234:1234 2710\n$/);
  const seen = await run({ image, command: ['sh', '-c', `${LISTING('/srv/x')}; stat -c '%u:%g %a' /srv/x`], mounts: [{ type: 'volume', source: 'merged', target: '/srv/x' }] });
  t.is(seen.stdout, expected.stdout);
  removeVolume('merged');
});

test.serial('a rootless host fills a volume too, from layers with xattr whiteouts', async (t) => {
  const image = (await busyboxOciLayout()).dir;
  const rootlessHome = mkdtempSync(join(tmpdir(), 'nsbox-volume-populate-rootless-'));
  chmodSync(rootlessHome, 0o777);
  t.teardown(() => rmSync(rootlessHome, { recursive: true, force: true }));
  const asNobody = async (options: object) => {
    const [command, ...args] = runAsNobody([process.execPath, '--import', 'tsx', fixture, JSON.stringify({ image, cgroup: false, ...options })]);
    const { stdout } = await promisify(execFile)(command!, args, {
      env: { PATH: process.env.PATH, NSBOX_HOME: join(rootlessHome, 'state'), NSBOX_RUN_DIR: join(rootlessHome, 'run'), HOME: rootlessHome, TSX_TSCONFIG_PATH: undefined },
      cwd: process.cwd(),
    });
    return JSON.parse(stdout) as { ok: boolean; message?: string; stdout?: string };
  };
  const command = ['sh', '-c', `${LISTING('/bin')}; ${LISTING('/etc')}`];
  const expected = await asNobody({ command });
  t.true(expected.ok, expected.message);
  t.false(expected.stdout!.includes('./yes '), 'the upper layer deletes /bin/yes');
  const seen = await asNobody({ command, mounts: [{ type: 'volume', source: 'bin', target: '/bin' }, { type: 'volume', source: 'etc', target: '/etc' }] });
  t.true(seen.ok, seen.message);
  t.is(seen.stdout, expected.stdout);
});
