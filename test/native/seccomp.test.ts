// SPDX-License-Identifier: Apache-2.0
// The seccomp filter in real sandboxes: what the default refuses, what still runs, `seccomp: false`, custom profiles.
import test from 'ava';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isSandboxError, run, type BindMount, type SandboxOptions } from '../../src/index.js';
import { probeRootfs } from '../helpers/sandbox.js';
import { trySyscallMount } from '../helpers/try-syscall.js';

let image: string;
let tryMount: BindMount;
test.before(async () => {
  image = await probeRootfs();
  tryMount = await trySyscallMount();
});

/** Runs try-syscall in the probe image; its one line of output: `ok <ret>` or an errno name. */
async function trySyscall(args: Array<string | number>, options: Partial<SandboxOptions> = {}): Promise<string> {
  const result = await run({ image, mounts: [tryMount], ...options, command: ['/opt/try/try-syscall', ...args.map(String)] });
  return result.stdout.trim();
}

const CLONE_NEWUSER = 0x10000000;
const CLONE_NEWNET = 0x40000000;
const SIGCHLD = 17;

test('the default filter refuses the dangerous system calls with EPERM, clone3 with ENOSYS', async (t) => {
  const cases: Array<[string, Array<string | number>, string]> = [
    ['keyctl', [0, 0xfffffffd], 'EPERM'],
    ['add_key', [], 'EPERM'],
    ['request_key', [], 'EPERM'],
    ['bpf', [0, 0, 0], 'EPERM'],
    ['perf_event_open', [], 'EPERM'],
    ['userfaultfd', [0], 'EPERM'],
    ['unshare', [CLONE_NEWUSER], 'EPERM'],
    ['unshare', [0x400 /* CLONE_FS */], 'EPERM'],
    ['setns', [0, 0], 'EPERM'],
    ['mount', [], 'EPERM'],
    ['umount2', [], 'EPERM'],
    ['pivot_root', [], 'EPERM'],
    ['fsopen', [], 'EPERM'],
    ['open_tree', [], 'EPERM'],
    ['open_by_handle_at', [], 'EPERM'],
    ['name_to_handle_at', [], 'EPERM'],
    ['init_module', [], 'EPERM'],
    ['finit_module', [], 'EPERM'],
    ['kexec_load', [], 'EPERM'],
    ['clone', [CLONE_NEWUSER | SIGCHLD], 'EPERM'],
    ['clone', [CLONE_NEWNET | SIGCHLD], 'EPERM'],
    ['clone3', [0, 0], 'ENOSYS'],
    ['personality', [0x0040000 /* ADDR_NO_RANDOMIZE */], 'EPERM'],
    ['personality', [0x0400000 /* READ_IMPLIES_EXEC */], 'EPERM'],
    ['io_uring_setup', [1, 0], 'EPERM'],
    ['syslog', [3, 0, 0], 'EPERM'],
    ['mknodat', [-100 >>> 0, 0, 0o060600, 0x800], 'EPERM'],
    ['socket', [40 /* AF_VSOCK */, 1, 0], 'EPERM'],
    ['socket', [16 /* AF_NETLINK */, 3, 9 /* NETLINK_AUDIT */], 'EPROTONOSUPPORT'],
    ['ioctl', [0, 0x5412 /* TIOCSTI */, 0], 'EPERM'],
  ];
  for (const [name, args, expected] of cases) t.is(await trySyscall([name, ...args]), expected, `${name}(${args.join(', ')})`);
});

test('the default filter lets ordinary calls through: fork-style clone, harmless personalities, ptrace', async (t) => {
  t.regex(await trySyscall(['clone', SIGCHLD]), /^ok \d+$/);
  t.is(await trySyscall(['personality', 0xffffffff]), 'ok 0');
  t.is(await trySyscall(['personality', 8]), 'ok 0');
  t.regex(await trySyscall(['getpid']), /^ok \d+$/);
  t.is(await trySyscall(['socket', 1 /* AF_UNIX */, 1, 0]), 'ok 3');
  t.is(await trySyscall(['ptrace', 0 /* PTRACE_TRACEME */]), 'ok 0');
});

test('x86_64: an i386 system call (int 0x80) kills the process; an x32 one gets ENOSYS', async (t) => {
  if (process.arch !== 'x64') return t.pass('x86_64 only');
  const killed = await run({ image, mounts: [tryMount], command: ['/opt/try/try-syscall', 'int80'], reject: false });
  t.is(killed.signal, 'SIGSYS');
  t.is(await trySyscall(['x32']), 'ENOSYS');
  const unfiltered = await run({ image, mounts: [tryMount], command: ['/opt/try/try-syscall', 'int80'], seccomp: false, reject: false });
  t.regex(unfiltered.stdout, /^ok \d+/, 'without the filter the i386 ABI works');
});

test('seccomp: false installs no filter: the same calls reach the kernel', async (t) => {
  const options = { seccomp: false as const };
  t.is(await trySyscall(['unshare', CLONE_NEWUSER], options), 'ok 0');
  t.regex(await trySyscall(['clone', CLONE_NEWUSER | SIGCHLD], options), /^ok \d+$/);
  t.is(await trySyscall(['clone3', 0, 0], options), 'EINVAL');
  t.is(await trySyscall(['personality', 0x0040000], options), 'ok 0');
  t.regex(await trySyscall(['keyctl', 0, 0xfffffffd], options), /^ok \d+$/);
  t.is(await trySyscall(['ioctl', 0, 0x5412, 0], options), 'ENOTTY', 'stdin is /dev/null, not a terminal');
});

test('node, python3, busybox pipelines and the probe run under the default filter', async (t) => {
  const node = await run({
    image: 'host',
    command: ['node', '-e', `
      const { execFileSync } = require('node:child_process');
      const { Worker } = require('node:worker_threads');
      require('node:fs').writeFileSync('/tmp/f', 'x');
      const child = execFileSync('sh', ['-c', 'echo from-child']).toString().trim();
      new Worker('require("node:worker_threads").parentPort.postMessage(require("node:crypto").randomUUID().length)', { eval: true })
        .on('message', (n) => console.log(6 * 7, child, n));
    `],
  });
  t.is(node.stdout.trim(), '42 from-child 36');
  if (existsSync('/usr/bin/python3')) {
    const python = await run({ image: 'host', command: ['/usr/bin/python3', '-c', 'import subprocess, threading, os; t = threading.Thread(target=lambda: print(subprocess.run(["echo", "sub"], capture_output=True, text=True).stdout.strip(), os.cpu_count() > 0)); t.start(); t.join()'] });
    t.is(python.stdout.trim(), 'sub True');
  }
  const sh = await run({ image, command: ['sh', '-c', 'seq 1 100 | grep 7 | wc -l; (sleep 0.01 & wait); echo $(id -u) > /tmp/u && cat /tmp/u; mkfifo /tmp/p && ls /tmp'] });
  t.is(sh.stdout, '19\n0\np\nu\n');
  t.is((await run({ image, command: ['probe', 'id'] })).stdout.trim(), 'uid=0 gid=0 groups=0');
  t.is((await run({ image, command: ['sh', '-c', 'echo no-init'], init: false })).stdout, 'no-init\n');
  t.is((await run({ image, command: ['probe', 'id'], user: 'app' })).stdout.trim().split(' ')[0], 'uid=1000');
});

const DENY_MKDIR = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }] };
const SCRIPT = 'echo data > /tmp/f && cat /tmp/f && mkdir /tmp/x';

test('a custom profile object: mkdir fails with EACCES, everything else works', async (t) => {
  const result = await run({ image, command: ['sh', '-c', SCRIPT], seccomp: DENY_MKDIR, reject: false });
  t.is(result.stdout, 'data\n');
  t.regex(result.stderr, /Permission denied/);
  t.is(result.exitCode, 1);
  t.is(await trySyscall(['unshare', CLONE_NEWUSER], { seccomp: DENY_MKDIR }), 'ok 0', 'the custom profile replaces the default');
});

test('a custom profile file works the same', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nsbox-seccomp-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'deny-mkdir.json');
  writeFileSync(file, JSON.stringify(DENY_MKDIR, null, 2));
  const result = await run({ image, command: ['sh', '-c', SCRIPT], seccomp: file, reject: false });
  t.is(result.stdout, 'data\n');
  t.regex(result.stderr, /Permission denied/);
  t.is(result.exitCode, 1);
});

test('profile actions in a real process: KILL_PROCESS and TRAP end it with SIGSYS, ERRNO 0 fakes success', async (t) => {
  const profile = (action: string, extra: object = {}) => ({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['getppid'], action, ...extra }] });
  for (const action of ['SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_TRAP']) {
    const result = await run({ image, mounts: [tryMount], command: ['/opt/try/try-syscall', 'getppid'], seccomp: profile(action), reject: false });
    t.is(result.signal, 'SIGSYS', action);
  }
  t.is(await trySyscall(['getppid'], { seccomp: profile('SCMP_ACT_ERRNO', { errnoRet: 0 }) }), 'ok 0');
  t.is(await trySyscall(['getppid'], { seccomp: profile('SCMP_ACT_LOG') }), 'ok 1', 'LOG runs the call: the parent is nsbox-init, pid 1');
});

test('a profile with a bad op is ERR_INVALID_OPTION before anything starts', async (t) => {
  const started = Date.now();
  const error = await t.throwsAsync(run({
    image,
    command: ['true'],
    seccomp: { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 1, op: 'SCMP_CMP_BETWEEN' }] }] },
  }));
  t.true(isSandboxError(error) && error.code === 'ERR_INVALID_OPTION');
  t.regex(error!.message, /seccomp\.syscalls\[0\]\.args\[0\]\.op must be one of/);
  t.true(Date.now() - started < 1000);
});
