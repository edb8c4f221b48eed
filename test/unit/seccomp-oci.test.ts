// SPDX-License-Identifier: Apache-2.0
// Docker/OCI seccomp profiles: how they read into a policy, includes/excludes, and every validation error.
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isSandboxError, type ErrorCode } from '../../src/errors.js';
import { normalizeOptions, type SandboxOptions } from '../../src/options.js';
import { capabilityNames, parseOciProfile, type ProfileContext } from '../../src/seccomp/oci-profile.js';
import { kernelVersion, seccompFilter } from '../../src/seccomp/seccomp.js';

const X86: ProfileContext = { arch: 'x86_64', caps: new Set(['CAP_CHOWN', 'CAP_SYS_CHROOT', 'CAP_MKNOD']), kernel: [5, 10, 0] };
const ARM: ProfileContext = { ...X86, arch: 'aarch64' };

const parse = (profile: unknown, context = X86) => parseOciProfile(profile, context);

function fails(t: import('ava').ExecutionContext, profile: unknown, pattern: RegExp, code: ErrorCode = 'ERR_INVALID_OPTION'): void {
  const error = t.throws(() => parse(profile), undefined, pattern.source);
  t.true(isSandboxError(error), pattern.source);
  t.is(isSandboxError(error) ? error.code : undefined, code, pattern.source);
  t.regex(error?.message ?? '', pattern);
}

test('a Docker-style allowlist reads into a policy: actions, errno defaults, the old single `name`', (t) => {
  const policy = parse({
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: 1,
    archMap: [{ architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_X32'] }, { architecture: 'SCMP_ARCH_RISCV64', subArchitectures: null }],
    syscalls: [
      { names: ['read', 'write', 'socketcall'], action: 'SCMP_ACT_ALLOW', args: [], comment: 'socketcall is i386-only: accepted, skipped' },
      { name: 'clone3', action: 'SCMP_ACT_ERRNO', errnoRet: 38 },
      { names: ['kill'], action: 'SCMP_ACT_KILL' },
      { names: ['tkill'], action: 'SCMP_ACT_KILL_THREAD' },
      { names: ['tgkill'], action: 'SCMP_ACT_KILL_PROCESS' },
      { names: ['getuid'], action: 'SCMP_ACT_TRAP' },
      { names: ['getgid'], action: 'SCMP_ACT_LOG' },
      { names: ['mkdir'], action: 'SCMP_ACT_ERRNO' },
    ],
  });
  t.deepEqual(policy, {
    defaultAction: { errno: 1 },
    rules: [
      { syscalls: ['read', 'write', 'socketcall'], action: 'allow' },
      { syscalls: ['clone3'], action: { errno: 38 } },
      { syscalls: ['kill'], action: 'kill-thread' },
      { syscalls: ['tkill'], action: 'kill-thread' },
      { syscalls: ['tgkill'], action: 'kill-process' },
      { syscalls: ['getuid'], action: 'trap' },
      { syscalls: ['getgid'], action: 'log' },
      { syscalls: ['mkdir'], action: { errno: 1 } },
    ],
  });
  t.deepEqual(parse({ defaultAction: 'SCMP_ACT_ERRNO' }), { defaultAction: { errno: 1 }, rules: [] }, 'EPERM without defaultErrnoRet');
  t.deepEqual(parse({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: null, flags: ['SECCOMP_FILTER_FLAG_LOG'], listenerPath: '' }), { defaultAction: 'allow', rules: [] });
});

test('argument comparisons: op names, masked-eq with valueTwo (0 when absent), numbers, bigints and decimal strings', (t) => {
  const policy = parse({
    defaultAction: 'SCMP_ACT_ALLOW',
    syscalls: [{
      names: ['clone'],
      action: 'SCMP_ACT_ERRNO',
      args: [
        { index: 0, value: 2114060288, op: 'SCMP_CMP_MASKED_EQ' },
        { index: 1, value: '18446744073709551615', op: 'SCMP_CMP_NE' },
        { index: 2, value: 5n, valueTwo: 0, op: 'SCMP_CMP_LT' },
        { index: 3, value: 1, op: 'SCMP_CMP_LE' },
        { index: 4, value: 2, op: 'SCMP_CMP_GT', valueTwo: null },
        { index: 5, value: 3, op: 'SCMP_CMP_GE' },
      ],
    }, { names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 4294967295, valueTwo: 0, op: 'SCMP_CMP_EQ' }] }],
  });
  t.deepEqual(policy.rules, [
    {
      syscalls: ['clone'],
      action: { errno: 1 },
      args: [
        { index: 0, op: 'masked-eq', value: 2114060288n, valueTwo: 0n },
        { index: 1, op: 'ne', value: (1n << 64n) - 1n },
        { index: 2, op: 'lt', value: 5n },
        { index: 3, op: 'le', value: 1n },
        { index: 4, op: 'gt', value: 2n },
        { index: 5, op: 'ge', value: 3n },
      ],
    },
    { syscalls: ['personality'], action: 'allow', args: [{ index: 0, op: 'eq', value: 0xffffffffn }] },
  ]);
});

test('several comparisons of one argument become one rule each (any applies), as runc does', (t) => {
  const policy = parse({
    defaultAction: 'SCMP_ACT_ERRNO',
    syscalls: [{ names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0, op: 'SCMP_CMP_EQ' }, { index: 0, value: 8, op: 'SCMP_CMP_EQ' }, { index: 1, value: 1, op: 'SCMP_CMP_EQ' }] }],
  });
  t.deepEqual(policy.rules, [
    { syscalls: ['personality'], action: 'allow', args: [{ index: 0, op: 'eq', value: 0n }] },
    { syscalls: ['personality'], action: 'allow', args: [{ index: 0, op: 'eq', value: 8n }] },
    { syscalls: ['personality'], action: 'allow', args: [{ index: 1, op: 'eq', value: 1n }] },
  ]);
});

test('includes and excludes are decided for the architecture, capabilities and kernel', (t) => {
  const profile = {
    defaultAction: 'SCMP_ACT_ERRNO',
    syscalls: [
      { names: ['arch_prctl'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['amd64', 'x32'] } },
      { names: ['openat'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['arm64'] } },
      { names: ['read'], action: 'SCMP_ACT_ALLOW', excludes: { arches: ['SCMP_ARCH_AARCH64'] } },
      { names: ['chroot'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_SYS_CHROOT'] } },
      { names: ['mount'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_SYS_ADMIN'] } },
      { names: ['mknod'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_MKNOD', 'CAP_SYS_ADMIN'] } },
      { names: ['clone'], action: 'SCMP_ACT_ALLOW', excludes: { caps: ['CAP_SYS_ADMIN'] } },
      { names: ['chown'], action: 'SCMP_ACT_ALLOW', excludes: { caps: ['CAP_SYS_ADMIN', 'CAP_CHOWN'] } },
      { names: ['ptrace'], action: 'SCMP_ACT_ALLOW', includes: { minKernel: '4.8' } },
      { names: ['rseq'], action: 'SCMP_ACT_ALLOW', includes: { minKernel: '5.11' } },
      { names: ['futex'], action: 'SCMP_ACT_ALLOW', includes: { minKernel: '5.10.1' } },
      { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38, excludes: { minKernel: '5.10' } },
      { names: ['getpid'], action: 'SCMP_ACT_ALLOW', includes: {}, excludes: {} },
    ],
  };
  const kept = (context: ProfileContext) => parse(profile, context).rules.flatMap((r) => r.syscalls);
  t.deepEqual(kept(X86), ['arch_prctl', 'read', 'chroot', 'clone', 'ptrace', 'getpid']);
  t.deepEqual(kept(ARM), ['openat', 'chroot', 'clone', 'ptrace', 'getpid']);
  t.deepEqual(kept({ ...X86, caps: new Set(['CAP_SYS_ADMIN', 'CAP_MKNOD']), kernel: [4, 4, 0] }), ['arch_prctl', 'read', 'mount', 'mknod', 'clone3', 'getpid']);
  t.deepEqual(kept({ ...X86, kernel: [6, 18, 44] }), ['arch_prctl', 'read', 'chroot', 'clone', 'ptrace', 'rseq', 'futex', 'getpid']);
});

test('capability names come from the bit masks, and the kernel version from os.release()', (t) => {
  t.deepEqual([...capabilityNames([(1 << 0) | (1 << 21) | (1 << 31), 1 << 7])], ['CAP_CHOWN', 'CAP_SYS_ADMIN', 'CAP_SETFCAP', 'CAP_BPF']);
  t.deepEqual(kernelVersion('6.18.44-fc-v657'), [6, 18, 44]);
  t.deepEqual(kernelVersion('5.10'), [5, 10, 0]);
});

test('validation: the top level', (t) => {
  fails(t, 'nope', /^Invalid sandbox option: seccomp must be an object, got `nope`/);
  fails(t, [], /seccomp must be an object, got an array/);
  fails(t, { defaultAction: 'SCMP_ACT_ALLOW', syscall: [] }, /seccomp has an unknown key `syscall`/);
  fails(t, {}, /seccomp\.defaultAction is required/);
  fails(t, { defaultAction: 'ALLOW' }, /seccomp\.defaultAction must be one of SCMP_ACT_ALLOW, .*SCMP_ACT_ERRNO, got `ALLOW`/);
  fails(t, { defaultAction: 3 }, /seccomp\.defaultAction must be a non-empty string, got 3/);
  fails(t, { defaultAction: 'SCMP_ACT_ALLOW', defaultErrnoRet: 1 }, /seccomp\.defaultErrnoRet is only meaningful with SCMP_ACT_ERRNO/);
  fails(t, { defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 5000 }, /seccomp\.defaultErrnoRet must be an integer 0\.\.4095, got 5000/);
  fails(t, { defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 1.5 }, /seccomp\.defaultErrnoRet must be an integer/);
  fails(t, { defaultAction: 'SCMP_ACT_ALLOW', architectures: 'SCMP_ARCH_X86_64' }, /seccomp\.architectures must be an array of strings/);
  fails(t, { defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_46'] }, /seccomp\.architectures\[0\] is not a SCMP_ARCH_\* name, got `SCMP_ARCH_X86_46`/);
  fails(t, { defaultAction: 'SCMP_ACT_ALLOW', archMap: {} }, /seccomp\.archMap must be an array/);
  fails(t, { defaultAction: 'SCMP_ACT_ALLOW', archMap: [{ architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['amd64'] }] }, /seccomp\.archMap\[0\] names `amd64`/);
  fails(t, { defaultAction: 'SCMP_ACT_ALLOW', archMap: [{ arch: 'SCMP_ARCH_X86_64' }] }, /seccomp\.archMap\[0\] has an unknown key `arch`/);
  fails(t, { defaultAction: 'SCMP_ACT_ALLOW', flags: ['SECCOMP_FILTER_FLAG_TSYN'] }, /seccomp\.flags\[0\] must be one of/);
  fails(t, { defaultAction: 'SCMP_ACT_ALLOW', listenerPath: '/run/seccomp.sock' }, /seccomp\.listenerPath is not supported/, 'ERR_UNSUPPORTED');
  fails(t, { defaultAction: 'SCMP_ACT_ALLOW', listenerMetadata: 7 }, /seccomp\.listenerMetadata must be a string/);
  fails(t, { defaultAction: 'SCMP_ACT_TRACE' }, /seccomp\.defaultAction SCMP_ACT_TRACE is not supported/, 'ERR_UNSUPPORTED');
  fails(t, { defaultAction: 'SCMP_ACT_ALLOW', syscalls: {} }, /seccomp\.syscalls must be an array/);
});

const withRule = (rule: unknown) => ({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW' }, rule] });

test('validation: a rule', (t) => {
  fails(t, withRule('read'), /seccomp\.syscalls\[1\] must be an object/);
  fails(t, withRule({ names: ['read'], action: 'SCMP_ACT_ERRNO', errno: 1 }), /seccomp\.syscalls\[1\] has an unknown key `errno`/);
  fails(t, withRule({ action: 'SCMP_ACT_ERRNO' }), /seccomp\.syscalls\[1\]\.names must list at least one system call/);
  fails(t, withRule({ names: [], action: 'SCMP_ACT_ERRNO' }), /seccomp\.syscalls\[1\]\.names must list at least one/);
  fails(t, withRule({ names: 'read', action: 'SCMP_ACT_ERRNO' }), /seccomp\.syscalls\[1\]\.names must be an array of strings/);
  fails(t, withRule({ names: ['read', 7], action: 'SCMP_ACT_ERRNO' }), /seccomp\.syscalls\[1\]\.names\[1\] must be a non-empty string, got 7/);
  fails(t, withRule({ names: ['read'], name: 'write', action: 'SCMP_ACT_ERRNO' }), /seccomp\.syscalls\[1\] has both `name` and `names`/);
  fails(t, withRule({ names: ['read', 'mkdri'], action: 'SCMP_ACT_ERRNO' }), /seccomp\.syscalls\[1\]\.names\[1\] is not a system call of any architecture, got `mkdri`/);
  fails(t, withRule({ name: 'mkdri', action: 'SCMP_ACT_ERRNO' }), /seccomp\.syscalls\[1\]\.name is not a system call/);
  fails(t, withRule({ names: ['read'] }), /seccomp\.syscalls\[1\]\.action is required/);
  fails(t, withRule({ names: ['read'], action: 'SCMP_ACT_DENY' }), /seccomp\.syscalls\[1\]\.action must be one of/);
  fails(t, withRule({ names: ['read'], action: 'SCMP_ACT_NOTIFY' }), /seccomp\.syscalls\[1\]\.action SCMP_ACT_NOTIFY is not supported/, 'ERR_UNSUPPORTED');
  fails(t, withRule({ names: ['read'], action: 'SCMP_ACT_TRACE' }), /SCMP_ACT_TRACE is not supported/, 'ERR_UNSUPPORTED');
  fails(t, withRule({ names: ['read'], action: 'SCMP_ACT_ALLOW', errnoRet: 1 }), /seccomp\.syscalls\[1\]\.errnoRet is only meaningful with SCMP_ACT_ERRNO, not SCMP_ACT_ALLOW/);
  fails(t, withRule({ names: ['read'], action: 'SCMP_ACT_ERRNO', errnoRet: -1 }), /seccomp\.syscalls\[1\]\.errnoRet must be an integer 0\.\.4095, got -1/);
  fails(t, withRule({ names: ['read'], action: 'SCMP_ACT_ERRNO', comment: 1 }), /seccomp\.syscalls\[1\]\.comment must be a string/);
  fails(t, withRule({ names: ['read'], action: 'SCMP_ACT_ERRNO', includes: [] }), /seccomp\.syscalls\[1\]\.includes must be an object/);
  fails(t, withRule({ names: ['read'], action: 'SCMP_ACT_ERRNO', includes: { arch: ['amd64'] } }), /seccomp\.syscalls\[1\]\.includes has an unknown key `arch`/);
  fails(t, withRule({ names: ['read'], action: 'SCMP_ACT_ERRNO', includes: { caps: ['SYS_ADMIN'] } }), /seccomp\.syscalls\[1\]\.includes\.caps\[0\] is not a capability name/);
  fails(t, withRule({ names: ['read'], action: 'SCMP_ACT_ERRNO', excludes: { minKernel: 'v4' } }), /seccomp\.syscalls\[1\]\.excludes\.minKernel must be a kernel version like "4\.8", got `v4`/);
  fails(t, withRule({ names: ['read'], action: 'SCMP_ACT_ERRNO', excludes: { arches: [''] } }), /seccomp\.syscalls\[1\]\.excludes\.arches\[0\] must be a non-empty string/);
});

const withArg = (arg: unknown) => withRule({ names: ['ioctl'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 1, op: 'SCMP_CMP_EQ' }, arg] });

test('validation: an argument comparison', (t) => {
  fails(t, withRule({ names: ['ioctl'], action: 'SCMP_ACT_ERRNO', args: {} }), /seccomp\.syscalls\[1\]\.args must be an array/);
  fails(t, withArg(1), /seccomp\.syscalls\[1\]\.args\[1\] must be an object/);
  fails(t, withArg({ index: 1, value: 1, op: 'SCMP_CMP_EQ', mask: 3 }), /seccomp\.syscalls\[1\]\.args\[1\] has an unknown key `mask`/);
  fails(t, withArg({ value: 1, op: 'SCMP_CMP_EQ' }), /seccomp\.syscalls\[1\]\.args\[1\]\.index is required/);
  fails(t, withArg({ index: 6, value: 1, op: 'SCMP_CMP_EQ' }), /seccomp\.syscalls\[1\]\.args\[1\]\.index must be an integer 0\.\.5, got 6/);
  fails(t, withArg({ index: 1, value: 1 }), /seccomp\.syscalls\[1\]\.args\[1\]\.op is required/);
  fails(t, withArg({ index: 1, value: 1, op: 'SCMP_CMP_MASKED_NE' }), /seccomp\.syscalls\[1\]\.args\[1\]\.op must be one of SCMP_CMP_EQ, SCMP_CMP_NE, SCMP_CMP_LT, SCMP_CMP_LE, SCMP_CMP_GT, SCMP_CMP_GE, SCMP_CMP_MASKED_EQ, got `SCMP_CMP_MASKED_NE`/);
  fails(t, withArg({ index: 1, op: 'SCMP_CMP_EQ' }), /seccomp\.syscalls\[1\]\.args\[1\]\.value is required/);
  fails(t, withArg({ index: 1, value: -1, op: 'SCMP_CMP_EQ' }), /\.args\[1\]\.value must be an unsigned 64-bit integer, got -1/);
  fails(t, withArg({ index: 1, value: 1.5, op: 'SCMP_CMP_EQ' }), /\.args\[1\]\.value must be an unsigned 64-bit integer, got 1\.5/);
  fails(t, withArg({ index: 1, value: 2 ** 60, op: 'SCMP_CMP_EQ' }), /\.args\[1\]\.value is above 2\^53 and cannot be exact as a JSON number; write it as a decimal string/);
  fails(t, withArg({ index: 1, value: 1n << 64n, op: 'SCMP_CMP_EQ' }), /\.args\[1\]\.value must be an unsigned 64-bit integer/);
  fails(t, withArg({ index: 1, value: '0x10', op: 'SCMP_CMP_EQ' }), /\.args\[1\]\.value must be an unsigned 64-bit integer, got `0x10`/);
  fails(t, withArg({ index: 1, value: '18446744073709551616', op: 'SCMP_CMP_EQ' }), /\.args\[1\]\.value must be an unsigned 64-bit integer/);
  fails(t, withArg({ index: 1, value: 1, valueTwo: 2, op: 'SCMP_CMP_EQ' }), /\.args\[1\]\.valueTwo is only used by SCMP_CMP_MASKED_EQ, not SCMP_CMP_EQ/);
  fails(t, withArg({ index: 1, value: 1, valueTwo: -2, op: 'SCMP_CMP_MASKED_EQ' }), /\.args\[1\]\.valueTwo must be an unsigned 64-bit integer/);
});

test('the seccomp option: default, false, a profile object, a JSON file; each compiled once', (t) => {
  const options = (seccomp: SandboxOptions['seccomp']) => normalizeOptions({ image: 'host', command: ['true'], ...(seccomp === undefined ? {} : { seccomp }) });
  const byDefault = options(undefined).seccomp;
  t.true(byDefault.length > 0 && byDefault.length % 8 === 0);
  t.is(options('default').seccomp, byDefault, 'the default program is compiled once');
  t.is(options(false).seccomp.length, 0);

  const profile = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }] };
  const fromObject = options(profile).seccomp;
  t.true(fromObject.length > 0);
  t.is(options(JSON.parse(JSON.stringify(profile)) as typeof profile).seccomp, fromObject, 'an equal profile is not compiled again');

  const dir = mkdtempSync(join(tmpdir(), 'nsbox-seccomp-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'profile.json');
  writeFileSync(file, JSON.stringify(profile));
  t.deepEqual(options(file).seccomp, fromObject);
});

test('the seccomp option: wrong types and bad files are ERR_INVALID_OPTION before anything runs', (t) => {
  const invalid = (seccomp: unknown, pattern: RegExp) => {
    const error = t.throws(() => normalizeOptions({ image: 'host', command: ['true'], seccomp } as SandboxOptions));
    t.true(isSandboxError(error) && error.code === 'ERR_INVALID_OPTION', String(seccomp));
    t.regex(error?.message ?? '', pattern);
  };
  invalid(true, /seccomp/);
  invalid(7, /seccomp/);
  invalid('', /seccomp/);
  invalid('/no/such/profile.json', /seccomp profile `\/no\/such\/profile\.json` cannot be read: ENOENT/);
  const dir = mkdtempSync(join(tmpdir(), 'nsbox-seccomp-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'broken.json'), '{ "defaultAction": ');
  invalid(join(dir, 'broken.json'), /seccomp profile `.*broken\.json` is not valid JSON/);
  writeFileSync(join(dir, 'bad-op.json'), JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 1, op: 'EQ' }] }] }));
  invalid(join(dir, 'bad-op.json'), /seccomp profile `.*bad-op\.json`: syscalls\[0\]\.args\[0\]\.op must be one of/);
  invalid({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdri'], action: 'SCMP_ACT_ERRNO' }] }, /seccomp\.syscalls\[0\]\.names\[0\] is not a system call/);
  invalid('/dev/zero', /seccomp profile `\/dev\/zero` is not a regular file/);
  invalid(dir, /is not a regular file/);
  const cyclic: Record<string, unknown> = { defaultAction: 'SCMP_ACT_ALLOW' };
  cyclic.syscalls = [cyclic];
  invalid(cyclic, /seccomp\.syscalls\[0\] has an unknown key `defaultAction`/);
  t.is(seccompFilter(false).length, 0);
});
