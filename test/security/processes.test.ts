// SPDX-License-Identifier: Apache-2.0
// Escape attempts against the process boundary: host and neighbour processes, init, privileges, namespaces, IPC.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { assertAllBlocked, assertBlocked, assertNoEscape, attack, attackOptions, hostProcess, neighbour, SECCOMP, verdictOf } from './attack.js';
import { run } from '../../src/index.js';

test('host processes are invisible: /proc holds init and the workload only', async (t) => {
  const host = await hostProcess(t);
  const { image } = await attackOptions();
  const procs = await run({ image, command: ['probe', 'procs'] });
  t.deepEqual(procs.stdout.trim().split('\n').map(Number), [1, 2]);
  const attempt = await attack(['read-paths', `/proc/${process.pid}/cmdline`, `/proc/${host.pid}/environ`, `/proc/${host.pid}/status`]);
  assertAllBlocked(t, attempt, ['ENOENT']);
  t.true(host.untouched());
});

test('ptrace of a host process fails and leaves it untraced', async (t) => {
  const host = await hostProcess(t);
  const attempt = await attack(['ptrace', String(host.pid)]);
  assertAllBlocked(t, attempt, ['ESRCH']);
  t.true(host.untouched());
});

test('ptrace of the sandbox’s own init (which holds the host’s sync socket) fails', async (t) => {
  assertAllBlocked(t, await attack(['ptrace', '1']), ['EPERM']);
});

test('a host process cannot be signalled, by pid or through a pidfd', async (t) => {
  const host = await hostProcess(t);
  const attempt = await attack(['kill', String(host.pid), 'KILL']);
  assertAllBlocked(t, attempt, ['ESRCH']);
  assertBlocked(t, attempt, 'kill', ['ESRCH']);
  assertBlocked(t, attempt, 'pidfd_open', ['ESRCH']);
  t.true(host.untouched());
});

test('kill(-1, SIGKILL) ends only the sandbox: a host process and a concurrent sandbox live on', async (t) => {
  const host = await hostProcess(t);
  const other = await neighbour(t);
  const options = await attackOptions();
  const result = await run({ ...options, command: ['probe', 'kill-all'], reject: false });
  t.regex(result.stdout, /survived/);
  t.true(host.untouched());
  t.true(other.alive());
  t.is(await other.stop(), 0);
});

test('process_vm_readv and process_vm_writev cannot reach a host process', async (t) => {
  const host = await hostProcess(t);
  assertAllBlocked(t, await attack(['vm-rw', String(host.pid)]), ['ESRCH']);
  t.true(host.untouched());
});

test('the memory of init cannot be opened for writing through /proc/1/mem', async (t) => {
  assertAllBlocked(t, await attack(['proc-mem', '1']), ['EACCES', 'EPERM']);
});

test('init’s file descriptors (the host’s sync socket) cannot be taken with pidfd_getfd', async (t) => {
  assertAllBlocked(t, await attack(['pidfd-getfd', '1']), ['EPERM', ...SECCOMP]);
});

test('capabilities outside the default set cannot be raised with capset or as ambient capabilities', async (t) => {
  const attempt = await attack(['caps-raise']);
  assertAllBlocked(t, attempt, ['EPERM']);
  assertBlocked(t, attempt, 'capset SYS_ADMIN', ['EPERM']);
  assertBlocked(t, attempt, 'ambient-raise NET_RAW', ['EPERM']);
});

test('a non-root workload cannot become root', async (t) => {
  assertAllBlocked(t, await attack(['setuid-root'], { user: 'app' }), ['EPERM']);
});

test('a setuid-root binary grants nothing under no_new_privs', async (t) => {
  const attempt = await attack(['setuid-exec']);
  assertNoEscape(t, attempt);
  t.regex(verdictOf(attempt, 'setuid-exec')?.line ?? '', /contained setuid-exec creds ruid=1000 euid=1000 suid=1000 .*capeff=0{16} capprm=0{16}/, attempt.output);
});

test('file capabilities (SYS_ADMIN, SYS_PTRACE, NET_RAW…) grant nothing, to uid 1000 or to root', async (t) => {
  const attempt = await attack(['fcaps-exec']);
  assertNoEscape(t, attempt);
  for (const what of ['fcaps-exec as uid 1000', 'fcaps-exec as root']) {
    const verdict = verdictOf(attempt, what);
    t.truthy(verdict, attempt.output);
    // Either exec is refused (the file asks for capabilities the bounding set lacks) or it runs without them.
    t.true(verdict!.kind === 'contained' || (verdict!.kind === 'blocked' && verdict!.errno === 'EPERM'), verdict!.line);
  }
});

test('unshare(CLONE_NEWUSER) is refused, so no capabilities come back in a new user namespace', async (t) => {
  const attempt = await attack(['unshare', 'user', 'user+mount', 'user+net', 'user+mount+cgroup']);
  assertAllBlocked(t, attempt, SECCOMP);
  assertBlocked(t, attempt, 'unshare user', SECCOMP);
});

test('unshare of every other namespace is refused', async (t) => {
  assertAllBlocked(t, await attack(['unshare', 'mount', 'net', 'pid', 'uts', 'ipc', 'cgroup', 'time']), ['EPERM', ...SECCOMP]);
});

test('clone and clone3 with CLONE_NEW* flags are refused', async (t) => {
  const attempt = await attack(['clone-ns', 'user', 'net', 'mount', 'pid', 'user+net']);
  assertAllBlocked(t, attempt, ['EPERM', ...SECCOMP]);
  assertBlocked(t, attempt, 'clone user', SECCOMP);
  assertBlocked(t, attempt, 'clone3 user', SECCOMP);
});

test('setns into the sandbox’s own or init’s namespaces is refused', async (t) => {
  const kinds = ['mnt', 'net', 'pid', 'uts', 'ipc', 'cgroup', 'user', 'time'];
  const attempt = await attack(['setns', ...kinds.map((k) => `/proc/self/ns/${k}`), ...kinds.map((k) => `/proc/1/ns/${k}`)]);
  // EINVAL: joining one's own user namespace; EACCES: init is not dumpable.
  assertAllBlocked(t, attempt, ['EPERM', 'EACCES', 'EINVAL', ...SECCOMP]);
});

test('the workload cannot hide from the host’s OOM killer (oom_score_adj -1000)', async (t) => {
  assertAllBlocked(t, await attack(['oom-adj']), ['EACCES', 'EPERM']);
});

test('real-time scheduling, nice -20 and real-time I/O priority are refused (no starving the host)', async (t) => {
  assertAllBlocked(t, await attack(['sched-rt']), ['EPERM', 'EACCES']);
});

test('personality() cannot turn off ASLR or make reads imply exec', async (t) => {
  assertAllBlocked(t, await attack(['personality']), SECCOMP);
});

test('System V IPC objects of the host are out of reach', async (t) => {
  const id = /(\d+)/.exec(execFileSync('ipcmk', ['--shmem', '4096'], { encoding: 'utf8' }))![1]!;
  t.teardown(() => {
    execFileSync('ipcrm', ['--shmem-id', id]);
  });
  const line = execFileSync('ipcs', ['-m'], { encoding: 'utf8' }).split('\n').find((l) => l.split(/\s+/)[1] === id)!;
  const key = Number.parseInt(line.split(/\s+/)[0]!, 16);
  t.not(key, 0);
  const attempt = await attack(['sysv-ipc', String(key)]);
  assertAllBlocked(t, attempt, ['ENOENT']);
  t.regex(execFileSync('ipcs', ['-m', '-i', id], { encoding: 'utf8' }), /nattch=0/);
});

test('a sandbox cannot signal or trace a concurrent sandbox’s processes', async (t) => {
  const other = await neighbour(t);
  for (const pid of other.pids) {
    assertAllBlocked(t, await attack(['kill', String(pid), 'KILL']), ['ESRCH']);
    assertAllBlocked(t, await attack(['ptrace', String(pid)]), ['ESRCH']);
    assertAllBlocked(t, await attack(['vm-rw', String(pid)]), ['ESRCH']);
  }
  t.true(other.alive());
  t.is(await other.stop(), 0);
});

test('the host’s environment does not leak into the workload or its init', async (t) => {
  const marker = `nsbox-host-env-${process.pid}`;
  process.env.NSBOX_SECURITY_HOST_ONLY = marker;
  t.teardown(() => {
    delete process.env.NSBOX_SECURITY_HOST_ONLY;
  });
  const { image } = await attackOptions();
  const own = await run({ image, command: ['probe', 'cat', '/proc/self/environ'] });
  t.false(own.stdout.includes(marker));
  t.false(own.stdout.includes('NODE_'), 'no variable of the host’s Node process');
  // init's environment is not readable at all (it is not dumpable).
  assertAllBlocked(t, await attack(['read-paths', '/proc/1/environ']), ['EACCES']);
  const env = await run({ image, command: ['probe', 'env', 'NSBOX_SECURITY_HOST_ONLY'], reject: false });
  t.is(env.exitCode, 1, 'the variable is unset inside');
});
