// SPDX-License-Identifier: Apache-2.0
// Attempts on the shared kernel: keyrings, bpf, perf, userfaultfd, io_uring, modules, kexec, clock, logs, 32-bit calls.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { assertAllBlocked, assertBlocked, assertNoEscape, attack, hostKernelLog, SECCOMP, sysctl, verdictOf } from './attack.js';

test('the kernel keyring (shared with the host’s root) is closed: add_key, keyctl, request_key', async (t) => {
  const description = `nsbox-sec-${randomBytes(6).toString('hex')}`;
  const attempt = await attack(['keyctl', description]);
  assertAllBlocked(t, attempt, SECCOMP);
  assertBlocked(t, attempt, 'add_key', SECCOMP);
  assertBlocked(t, attempt, 'keyctl get-user-keyring', SECCOMP);
  // /proc/keys on the host lists the keys root may view, its own user keyring's included.
  t.false(readFileSync('/proc/keys', 'utf8').includes(description));
});

test('bpf() cannot create maps or load programs', async (t) => {
  assertAllBlocked(t, await attack(['bpf']), ['EPERM', ...SECCOMP]);
});

test('perf_event_open is refused, for self-profiling too', async (t) => {
  const attempt = await attack(['perf']);
  assertAllBlocked(t, attempt, ['EACCES', ...SECCOMP]);
  assertBlocked(t, attempt, 'perf_event_open self user-only', SECCOMP);
});

test('userfaultfd is refused, user-mode-only included', async (t) => {
  const attempt = await attack(['userfaultfd']);
  assertAllBlocked(t, attempt, SECCOMP);
  assertBlocked(t, attempt, 'userfaultfd user-mode-only', SECCOMP);
});

test('io_uring cannot be set up', async (t) => {
  assertAllBlocked(t, await attack(['io-uring']), SECCOMP);
});

test('kexec_load and kexec_file_load are refused', async (t) => {
  assertAllBlocked(t, await attack(['kexec']), ['EPERM', ...SECCOMP]);
});

test('kernel modules cannot be loaded or removed', async (t) => {
  const modules = existsSync('/proc/modules') ? readFileSync('/proc/modules', 'utf8') : '';
  assertAllBlocked(t, await attack(['module']), ['EPERM', ...SECCOMP]);
  t.is(existsSync('/proc/modules') ? readFileSync('/proc/modules', 'utf8') : '', modules);
});

test('reboot() is refused', async (t) => {
  const cad = sysctl('kernel.ctrl-alt-del');
  assertAllBlocked(t, await attack(['reboot']), ['EPERM', ...SECCOMP]);
  t.is(sysctl('kernel.ctrl-alt-del'), cad);
});

test('swapon and swapoff are refused', async (t) => {
  const swaps = readFileSync('/proc/swaps', 'utf8');
  assertAllBlocked(t, await attack(['swap']), ['EPERM', ...SECCOMP]);
  t.is(readFileSync('/proc/swaps', 'utf8'), swaps);
});

test('process accounting cannot be switched on', async (t) => {
  assertAllBlocked(t, await attack(['acct']), ['EPERM', ...SECCOMP]);
});

test('the host clock cannot be set (clock_settime, settimeofday, adjtimex)', async (t) => {
  const before = Date.now();
  assertAllBlocked(t, await attack(['settime']), ['EPERM', ...SECCOMP]);
  const after = Date.now();
  t.true(after >= before && after - before < 60_000, `the clock moved by ${after - before} ms`);
});

test('the host’s hostname and domain name stay as they are', async (t) => {
  const before = { host: hostname(), domain: sysctl('kernel.domainname') };
  const attempt = await attack(['sethostname', 'pwned']);
  t.is(attempt.result.exitCode, 2, attempt.output);
  t.regex(attempt.result.stderr, /sethostname: errno=EPERM/);
  const domain = await attack(['write-paths', 'pwned', '/proc/sys/kernel/domainname', '/proc/sys/kernel/hostname']);
  assertAllBlocked(t, domain, ['EROFS']);
  t.deepEqual({ host: hostname(), domain: sysctl('kernel.domainname') }, before);
});

test('raw I/O port access (ioperm, iopl) is refused', async (t) => {
  assertAllBlocked(t, await attack(['ioperm']), ['EPERM', ...SECCOMP]);
});

test('the kernel log cannot be read with syslog(2)', async (t) => {
  assertAllBlocked(t, await attack(['syslog']), ['EPERM', ...SECCOMP]);
});

test('/proc/kallsyms shows no kernel addresses (KASLR stays hidden)', async (t) => {
  const attempt = await attack(['kallsyms']);
  assertNoEscape(t, attempt);
  const verdict = verdictOf(attempt, 'kallsyms');
  t.is(verdict?.kind, 'blocked', attempt.output);
  t.regex(verdict!.line, /addresses=0 of \d+/);
});

test('the host’s entropy pool cannot be credited, cleared or reseeded', async (t) => {
  assertAllBlocked(t, await attack(['entropy']), ['EPERM']);
});

test('32-bit system calls through int $0x80 do not slip past the filter', async (t) => {
  const attempt = await attack(['compat', 'unshare-user', 'keyctl', 'userfaultfd', 'io_uring_setup']);
  assertAllBlocked(t, attempt, SECCOMP);
  // A filter that kills a foreign ABI leaves an audit line in the host's log, and nothing else.
  t.false(hostKernelLog().includes('nsbox-escape'));
});
