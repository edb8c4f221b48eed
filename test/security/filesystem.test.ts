// SPDX-License-Identifier: Apache-2.0
// Escape attempts against the filesystem boundary: host files, mounts, /proc and /sys, bind sources, a neighbour's root.
import test from 'ava';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, SetupError } from '../../src/index.js';
import { initPath } from '../../src/native/binding.js';
import { hostMounts } from '../helpers/sandbox.js';
import { assertAllBlocked, assertBlocked, assertNoEscape, attack, attackOptions, hostKernelLog, hostSecret, neighbour, SECCOMP, sysctl, verdictOf } from './attack.js';

const READ_DENIED = ['ENOENT', 'EACCES', 'EPERM'];
const WRITE_DENIED = ['EROFS', 'EACCES', 'EPERM', 'ENOENT'];

test('host files are out of reach through /proc/<pid>/root, /proc/<pid>/cwd and /proc/<pid>/fd of every visible process', async (t) => {
  const secret = hostSecret(t);
  const attempt = await attack(['proc-links', secret.file]);
  assertNoEscape(t, attempt);
  assertBlocked(t, attempt, `proc-links ${secret.file}`, READ_DENIED);
  t.regex(attempt.result.stdout, /tried=\d{2,}/, 'it went through the links of init and of itself');
  t.true(secret.intact());
});

test('no host file descriptor leaks into the workload, and no directory fd leads out', async (t) => {
  const secret = hostSecret(t);
  const attempt = await attack(['fd-scan', secret.file]);
  assertNoEscape(t, attempt);
  t.regex(attempt.result.stdout, /^open fds: 0 1 2$/m);
  assertBlocked(t, attempt, `fd-scan ${secret.file}`, ['ENOENT']);
  const fds = await run({ image: (await attackOptions()).image, command: ['probe', 'fds'] });
  for (const line of fds.stdout.trim().split('\n')) t.regex(line, /^[012] -> (pipe:\[\d+\]|\/dev\/null)$/, fds.stdout);
});

test('.. and openat2 cannot climb above the sandbox root', async (t) => {
  const secret = hostSecret(t);
  const attempt = await attack(['dotdot', secret.file]);
  assertNoEscape(t, attempt);
  assertBlocked(t, attempt, 'dotdot open', ['ENOENT']);
  assertBlocked(t, attempt, 'dotdot openat2', ['ENOENT']);
});

test('the classic chroot + chdir("..") escape lands back at the sandbox root', async (t) => {
  const secret = hostSecret(t);
  const attempt = await attack(['chroot-escape', secret.file]);
  assertNoEscape(t, attempt);
  assertBlocked(t, attempt, `chroot-escape ${secret.file}`, ['ENOENT']);
  t.regex(attempt.result.stdout, /at the sandbox root: yes/);
  t.true(secret.intact());
});

test('the host mount table stays hidden: only the sandbox root, /proc, /dev and /tmp are mounted', async (t) => {
  const { image } = await attackOptions();
  const inside = await run({ image, command: ['probe', 'mountinfo'] });
  const points = inside.stdout.trim().split('\n').map((line) => line.split(' ')[4]!);
  for (const point of points) t.regex(point, /^\/$|^\/proc(\/|$)|^\/dev(\/|$)|^\/tmp$/, `unexpected mount point ${point}`);
  const hostOnly = hostMounts().map((line) => line.split(' ')[4]!).filter((p) => !/^\/$|^\/proc(\/|$)|^\/dev(\/|$)|^\/tmp$/.test(p));
  t.true(hostOnly.length > 0, 'the host has mounts of its own');
  for (const point of hostOnly) t.false(points.includes(point), `host mount ${point} is visible`);
});

test('mount(2) of tmpfs, proc, sysfs, cgroup2, devpts and a recursive bind of / is refused', async (t) => {
  const attempts = await Promise.all([
    attack(['mount', 'tmpfs', 'none', '/tmp/nsbox-m']),
    attack(['mount', 'proc', 'proc', '/tmp/nsbox-m']),
    attack(['mount', 'sysfs', 'sysfs', '/tmp/nsbox-m']),
    attack(['mount', 'cgroup2', 'cgroup2', '/tmp/nsbox-m']),
    attack(['mount', 'devpts', 'devpts', '/tmp/nsbox-m', 'newinstance']),
    attack(['mount', 'bind', '/', '/tmp/nsbox-m']),
  ]);
  for (const attempt of attempts) assertAllBlocked(t, attempt, ['EPERM']);
  t.false(hostMounts().some((line) => line.includes('nsbox-m')));
});

// The sandbox's /proc shows what the host's kernel has (no magic SysRq, no ACPI on some).
const present = (paths: string[]) => paths.filter((p) => existsSync(p));

test('read-only /proc/sys cannot be remounted read-write', async (t) => {
  for (const path of present(['/proc/sys', '/proc/sysrq-trigger', '/proc/irq'])) assertAllBlocked(t, await attack(['remount', path]), ['EPERM']);
});

test('the /proc masks and read-only binds cannot be unmounted', async (t) => {
  const paths = present(['/proc/keys', '/proc/timer_list', '/proc/interrupts', '/proc/sys', '/proc/sysrq-trigger', '/proc/acpi', '/proc']);
  const attempts = await Promise.all(paths.map((path) => attack(['umount', path])));
  for (const attempt of attempts) assertAllBlocked(t, attempt, ['EPERM']);
});

test('pivot_root is refused', async (t) => {
  assertAllBlocked(t, await attack(['pivot-root']), ['EPERM']);
});

test('the new mount API (fsopen, open_tree, mount_setattr) is refused', async (t) => {
  const attempt = await attack(['new-mount-api']);
  assertAllBlocked(t, attempt, ['EPERM']);
  assertBlocked(t, attempt, 'fsopen tmpfs', ['EPERM']);
  assertBlocked(t, attempt, 'open_tree clone /', ['EPERM']);
  assertBlocked(t, attempt, 'mount_setattr clear-ro /proc/sys', ['EPERM']);
});

test('the cgroup release_agent escape (CVE-2022-0492) fails and the host’s release agents stay as they were', async (t) => {
  const agents = () =>
    readdirSync('/sys/fs/cgroup')
      .map((d) => `/sys/fs/cgroup/${d}/release_agent`)
      .filter((f) => existsSync(f))
      .map((f) => `${f}=${readFileSync(f, 'utf8')}`);
  const before = agents();
  const attempt = await attack(['release-agent']);
  assertNoEscape(t, attempt);
  assertBlocked(t, attempt, 'release-agent unshare', SECCOMP);
  t.deepEqual(agents(), before);
});

test('a workload cannot lift its own memory and pids limits through a cgroup mount in a new user namespace', async (t) => {
  const attempt = await attack(['cgroup-limits'], { limits: { memory: '64MiB', pids: 32 } });
  assertNoEscape(t, attempt);
  assertBlocked(t, attempt, 'cgroup-limits unshare', SECCOMP);
});

test('core_pattern cannot be pointed at a workload’s program (host code execution on the next crash)', async (t) => {
  const before = sysctl('kernel.core_pattern');
  const attempt = await attack(['write-paths', '|/tmp/nsbox-pwn %p', '/proc/sys/kernel/core_pattern']);
  assertAllBlocked(t, attempt, WRITE_DENIED);
  assertBlocked(t, attempt, 'write /proc/sys/kernel/core_pattern', ['EROFS']);
  t.is(sysctl('kernel.core_pattern'), before);
});

test('/proc/sysrq-trigger and kernel.sysrq cannot be written', async (t) => {
  // 'h' only prints help: harmless even if it got through (kernels without magic SysRq have neither file).
  const helpLines = () => hostKernelLog().split('\n').filter((l) => l.includes('sysrq: HELP')).length;
  const sysrq = () => (existsSync('/proc/sys/kernel/sysrq') ? sysctl('kernel.sysrq') : 'absent');
  const before = { sysrq: sysrq(), help: helpLines() };
  const attempt = await attack(['write-paths', 'h', '/proc/sysrq-trigger', '/proc/sys/kernel/sysrq']);
  assertAllBlocked(t, attempt, WRITE_DENIED);
  assertBlocked(t, attempt, 'write /proc/sysrq-trigger', existsSync('/proc/sysrq-trigger') ? ['EROFS'] : ['ENOENT']);
  t.is(sysrq(), before.sysrq);
  t.is(helpLines(), before.help, 'no sysrq reached the host kernel');
});

test('modprobe_path, uevent_helper, hotplug and poweroff_cmd cannot be pointed at a workload’s program', async (t) => {
  // Each names a program the kernel runs as host root (usermode helpers).
  const watched = ['/proc/sys/kernel/modprobe', '/proc/sys/kernel/hotplug', '/proc/sys/kernel/poweroff_cmd', '/sys/kernel/uevent_helper'];
  const read = () => watched.map((f) => (existsSync(f) ? readFileSync(f, 'utf8') : 'absent'));
  const before = read();
  const attempt = await attack(['write-paths', '/tmp/nsbox-pwn', ...watched]);
  assertAllBlocked(t, attempt, WRITE_DENIED);
  t.deepEqual(read(), before);
});

test('host-wide sysctls (ASLR, drop_caches, domain name, pid_max, overcommit) are read-only', async (t) => {
  // Each write carries the value the host already has, so even a write that got through
  // would change nothing; the probe still reports it as ESCAPED.
  const names = ['kernel.randomize_va_space', 'kernel.domainname', 'kernel.pid_max', 'vm.overcommit_memory', 'kernel.ctrl-alt-del'];
  const before = names.map(sysctl);
  const attempts = await Promise.all(names.map((name, i) => attack(['write-paths', before[i]!.trim(), `/proc/sys/${name.replaceAll('.', '/')}`])));
  for (const attempt of attempts) assertAllBlocked(t, attempt, ['EROFS']);
  assertAllBlocked(t, await attack(['write-paths', '1', '/proc/sys/vm/drop_caches']), ['EROFS']);
  t.deepEqual(names.map(sysctl), before);
});

test('/sys is not there and sysfs cannot be mounted', async (t) => {
  const read = await attack(['read-paths', '/sys/kernel/uevent_helper', '/sys/class/dmi/id/product_uuid', '/sys/fs/cgroup/cgroup.procs', '/sys/firmware']);
  assertAllBlocked(t, read, ['ENOENT']);
  assertAllBlocked(t, await attack(['mount', 'sysfs', 'sysfs', '/sys']), ['EPERM']);
});

test('masked /proc files read empty inside and keep their content on the host', async (t) => {
  const paths = ['/proc/keys', '/proc/timer_list', '/proc/interrupts', '/proc/kcore', '/proc/sched_debug', '/proc/latency_stats'];
  const attempt = await attack(['read-paths', ...paths]);
  assertNoEscape(t, attempt);
  for (const path of paths) {
    const verdict = verdictOf(attempt, `read ${path}`)!;
    t.true(verdict.kind === 'contained' || (verdict.kind === 'blocked' && verdict.errno === 'ENOENT'), verdict.line);
    if (verdict.kind === 'contained') t.regex(verdict.line, /read 0 bytes/);
  }
  t.not(readFileSync('/proc/interrupts', 'utf8'), '');
});

test('open_by_handle_at (the “shocker” escape) is refused', async (t) => {
  const attempt = await attack(['open-by-handle']);
  assertAllBlocked(t, attempt, ['EPERM', 'ENOTSUP', ...SECCOMP]);
  assertBlocked(t, attempt, 'open_by_handle_at inode 2', ['EPERM']);
});

test('the host’s nsbox-init behind /proc/1/exe cannot be opened for writing (CVE-2019-5736)', async (t) => {
  const hash = () => createHash('sha256').update(readFileSync(initPath())).digest('hex');
  const before = hash();
  const attempt = await attack(['exe-write', '/proc/1/exe']);
  assertAllBlocked(t, attempt, ['EACCES', 'EPERM', 'ETXTBSY']);
  t.is(hash(), before);
});

test('a bind source swapped for a symlink after run() was called is not followed to another host path', async (t) => {
  // What a workload with write access to the source's parent does (a shared volume, or an
  // earlier sandbox's output directory), here done from the host to win the race every time:
  // after nsbox validated the source, the directory is renamed away and a symlink takes its place.
  const secret = hostSecret(t);
  const base = mkdtempSync(join(tmpdir(), 'nsbox-bindrace-'));
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  mkdirSync(join(base, 'shared', 'volume'), { recursive: true });
  writeFileSync(join(base, 'shared', 'volume', 'expected.txt'), 'the caller’s volume');
  const options = await attackOptions({ mounts: [{ type: 'bind', source: join(base, 'shared', 'volume'), target: '/data', readonly: true }] });
  const pending = run({ ...options, command: ['probe', 'ls', '/data'], reject: false });
  renameSync(join(base, 'shared', 'volume'), join(base, 'shared', 'moved'));
  symlinkSync(secret.dir, join(base, 'shared', 'volume'));
  try {
    const result = await pending;
    t.notRegex(result.stdout, /secret\.txt/, 'the sandbox got the symlink’s target bound in');
    t.regex(result.stdout, /expected\.txt/);
  } catch (error) {
    t.true(error instanceof SetupError, String(error));
  }
  t.true(secret.intact());
});

test('a sandbox cannot read a concurrent sandbox’s files', async (t) => {
  const other = await neighbour(t);
  const [initPid, workloadPid] = other.pids;
  const attempt = await attack([
    'read-paths',
    `/proc/${initPid}/root/neighbour-secret`,
    `/proc/${workloadPid}/root/neighbour-secret`,
    `/proc/${workloadPid}/root/tmp/neighbour-secret`,
    '/run/nsbox/scratch/upper/neighbour-secret',
    '/neighbour-secret',
    '/tmp/neighbour-secret',
  ]);
  assertAllBlocked(t, attempt, ['ENOENT']);
  t.notRegex(attempt.result.stdout, new RegExp(other.secret));
  t.true(other.alive());
  t.is(await other.stop(), 0);
});
