// SPDX-License-Identifier: Apache-2.0
// The seccomp compiler, run on a small classic-BPF interpreter: arch and x32 checks, actions, 64-bit argument compares, long programs.
import test from 'ava';
import { isSandboxError } from '../../src/errors.js';
import { assemble, compileSeccomp, MAX_INSTRUCTIONS, SECCOMP_RET, type SeccompArgCheck, type SeccompPolicy } from '../../src/seccomp/bpf.js';
import { defaultSeccompPolicy } from '../../src/seccomp/default-profile.js';
import { AARCH64_SYSCALLS, AUDIT_ARCH_AARCH64, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, X86_64_SYSCALLS, type SeccompArch } from '../../src/seccomp/syscalls.js';

// ── A classic-BPF interpreter for seccomp programs, with the kernel's load-time checks ──────────

interface Call {
  nr: number;
  arch?: number;
  args?: Array<bigint | number>;
}

const AUDIT: Record<SeccompArch, number> = { x86_64: AUDIT_ARCH_X86_64, aarch64: AUDIT_ARCH_AARCH64 };

/** What the kernel's checker (bpf_check_classic + seccomp_check_filter) would refuse. */
function verify(program: Buffer): void {
  const count = program.length / 8;
  if (!Number.isInteger(count) || count === 0 || count > MAX_INSTRUCTIONS) throw new Error(`bad length ${program.length}`);
  for (let pc = 0; pc < count; pc++) {
    const code = program.readUInt16LE(pc * 8);
    const jt = program[pc * 8 + 2];
    const jf = program[pc * 8 + 3];
    const k = program.readUInt32LE(pc * 8 + 4);
    if (code === 0x20 && (k >= 64 || k % 4 !== 0)) throw new Error(`load outside seccomp_data at ${pc}`);
    if (code === 0x05 && pc + 1 + k >= count) throw new Error(`JA out of range at ${pc}`);
    if ([0x15, 0x25, 0x35].includes(code) && (pc + 1 + jt >= count || pc + 1 + jf >= count)) throw new Error(`jump out of range at ${pc}`);
    if (![0x20, 0x54, 0x05, 0x15, 0x25, 0x35, 0x06].includes(code)) throw new Error(`unexpected opcode ${code} at ${pc}`);
  }
  if (program.readUInt16LE((count - 1) * 8) !== 0x06) throw new Error('the last instruction is not a RET');
}

/** Runs `program` on one struct seccomp_data and returns the SECCOMP_RET_* value. */
function decide(program: Buffer, call: Call, arch: SeccompArch = 'x86_64'): number {
  const data = Buffer.alloc(64);
  data.writeUInt32LE(call.nr >>> 0, 0);
  data.writeUInt32LE((call.arch ?? AUDIT[arch]) >>> 0, 4);
  (call.args ?? []).forEach((a, i) => data.writeBigUInt64LE(BigInt(a), 16 + 8 * i));
  let acc = 0;
  let pc = 0;
  for (let steps = 0; steps < 100_000; steps++) {
    const code = program.readUInt16LE(pc * 8);
    const jt = program[pc * 8 + 2];
    const jf = program[pc * 8 + 3];
    const k = program.readUInt32LE(pc * 8 + 4);
    pc++;
    switch (code) {
      case 0x20: acc = data.readUInt32LE(k); break; // LD W ABS
      case 0x54: acc = (acc & k) >>> 0; break; // ALU AND K
      case 0x05: pc += k; break; // JA
      case 0x15: pc += acc === k ? jt : jf; break; // JEQ
      case 0x25: pc += acc > k ? jt : jf; break; // JGT
      case 0x35: pc += acc >= k ? jt : jf; break; // JGE
      case 0x06: return k; // RET
      default: throw new Error(`opcode ${code}`);
    }
  }
  throw new Error('no RET reached');
}

const errno = (n: number) => (SECCOMP_RET.ERRNO | n) >>> 0;
const ALLOW = SECCOMP_RET.ALLOW;
const EPERM = errno(1);
const ENOSYS = errno(38);
const x86 = (name: string) => X86_64_SYSCALLS[name];
const arm = (name: string) => AARCH64_SYSCALLS[name];
const nr = (arch: SeccompArch, name: string) => (arch === 'x86_64' ? x86 : arm)(name);

function compile(policy: SeccompPolicy, arch: SeccompArch = 'x86_64'): Buffer {
  const program = compileSeccomp(policy, arch);
  verify(program);
  return program;
}

// ── Architecture and ABI ────────────────────────────────────────────────────────────────────────

test('a foreign architecture is killed before anything else, whatever the policy says', (t) => {
  const program = compile({ defaultAction: 'allow', rules: [] });
  t.is(decide(program, { nr: x86('getpid') }), ALLOW);
  t.is(decide(program, { nr: 20, arch: AUDIT_ARCH_I386 }), SECCOMP_RET.KILL_PROCESS, 'int 0x80 from an x86_64 process');
  t.is(decide(program, { nr: 0, arch: AUDIT_ARCH_AARCH64 }), SECCOMP_RET.KILL_PROCESS);
  const forArm = compile({ defaultAction: 'allow', rules: [] }, 'aarch64');
  t.is(decide(forArm, { nr: 0 }, 'aarch64'), ALLOW);
  t.is(decide(forArm, { nr: 0, arch: AUDIT_ARCH_X86_64 }, 'aarch64'), SECCOMP_RET.KILL_PROCESS);
  t.is(decide(forArm, { nr: 0, arch: 0x40000028 /* AUDIT_ARCH_ARM */ }, 'aarch64'), SECCOMP_RET.KILL_PROCESS);
});

test('x86_64: the x32 ABI (nr | 0x40000000) gets ENOSYS even under an allow-all policy; aarch64 has no such check', (t) => {
  const program = compile({ defaultAction: 'allow', rules: [{ syscalls: ['getpid'], action: 'allow' }] });
  t.is(decide(program, { nr: 0x40000000 | x86('getpid') }), ENOSYS);
  t.is(decide(program, { nr: 0x40000000 }), ENOSYS);
  t.is(decide(program, { nr: 0xffffffff }), ENOSYS, 'nr -1 too');
  t.is(decide(program, { nr: 0x3fffffff }), ALLOW);
  const forArm = compile({ defaultAction: { errno: 5 }, rules: [] }, 'aarch64');
  t.is(decide(forArm, { nr: 0x40000000 }, 'aarch64'), errno(5));
});

// ── Actions ─────────────────────────────────────────────────────────────────────────────────────

test('each action compiles to its SECCOMP_RET value', (t) => {
  const policy: SeccompPolicy = {
    defaultAction: { errno: 38 },
    rules: [
      { syscalls: ['getpid'], action: 'allow' },
      { syscalls: ['getppid'], action: { errno: 13 } },
      { syscalls: ['gettid'], action: 'kill-process' },
      { syscalls: ['tkill'], action: 'kill-thread' },
      { syscalls: ['getuid'], action: 'trap' },
      { syscalls: ['getgid'], action: 'log' },
      { syscalls: ['geteuid'], action: { errno: 0 } },
    ],
  };
  for (const arch of ['x86_64', 'aarch64'] as const) {
    const program = compile(policy, arch);
    const at = (name: string) => decide(program, { nr: nr(arch, name) }, arch);
    t.is(at('getpid'), 0x7fff0000);
    t.is(at('getppid'), 0x0005000d);
    t.is(at('gettid'), 0x80000000);
    t.is(at('tkill'), 0x00000000);
    t.is(at('getuid'), 0x00030000);
    t.is(at('getgid'), 0x7ffc0000);
    t.is(at('geteuid'), 0x00050000, 'errno 0: a faked success');
    t.is(at('read'), ENOSYS, 'the default');
  }
});

test('when several rules of one system call match, the most severe wins, in any order', (t) => {
  const rules = [
    { syscalls: ['mkdir'], action: 'allow' as const },
    { syscalls: ['mkdir'], action: { errno: 13 } },
    { syscalls: ['mkdir'], action: 'log' as const },
  ];
  for (const order of [rules, [...rules].reverse()]) {
    t.is(decide(compile({ defaultAction: 'allow', rules: order }), { nr: x86('mkdir') }), errno(13));
  }
  const withKill = compile({ defaultAction: 'allow', rules: [...rules, { syscalls: ['mkdir'], action: 'trap', args: [{ index: 1, op: 'eq', value: 0o777n }] }] });
  t.is(decide(withKill, { nr: x86('mkdir'), args: [0, 0o777] }), SECCOMP_RET.TRAP);
  t.is(decide(withKill, { nr: x86('mkdir'), args: [0, 0o755] }), errno(13));
});

// ── Argument comparisons ───────────────────────────────────────────────────────────────────────

const U64 = (1n << 64n) - 1n;
const SAMPLES = [0n, 1n, 5n, 0x7fffffffn, 0x80000000n, 0xffffffffn, 0x100000000n, 0x100000005n, 0x1ffffffffn, 0xffffffff00000000n, 0xffffffff00000005n, 0x7fffffffffffffffn, U64];

const holds: Record<Exclude<SeccompArgCheck['op'], 'masked-eq'>, (a: bigint, v: bigint) => boolean> = {
  eq: (a, v) => a === v,
  ne: (a, v) => a !== v,
  lt: (a, v) => a < v,
  le: (a, v) => a <= v,
  gt: (a, v) => a > v,
  ge: (a, v) => a >= v,
};

test('64-bit comparisons: every op agrees with bigint arithmetic, also when only the high word differs', (t) => {
  let checked = 0;
  for (const [op, predicate] of Object.entries(holds) as Array<[keyof typeof holds, (a: bigint, v: bigint) => boolean]>) {
    for (const value of SAMPLES) {
      for (const index of [0, 5]) {
        const program = compile({ defaultAction: { errno: 1 }, rules: [{ syscalls: ['read'], action: 'allow', args: [{ index, op, value }] }] });
        for (const arg of SAMPLES) {
          const args = Array.from({ length: 6 }, (_, i) => (i === index ? arg : 0xdeadbeefn));
          const expected = predicate(arg, value) ? ALLOW : EPERM;
          if (decide(program, { nr: x86('read'), args }) !== expected) t.fail(`arg${index}=${arg.toString(16)} ${op} ${value.toString(16)}`);
          checked++;
        }
      }
    }
  }
  t.is(checked, 6 * SAMPLES.length * 2 * SAMPLES.length);
});

test('masked-eq compares (arg & mask) with valueTwo in both words', (t) => {
  const pairs: Array<[bigint, bigint]> = [
    [0x7e020000n, 0n], [0x10000000n, 0x10000000n], [0xffffffffn, 40n], [0xffffffff00000000n, 0x100000000n],
    [U64, 0x100000005n], [0xf000n, 0x2000n], [0n, 0n], [0xffn, 0x100n] /* datum outside the mask: never */,
  ];
  const args = [...SAMPLES, 0x10000000n, 0x50020000n, 0x100000028n, 0x28n, 0x2000n, 0x12345000000000n];
  for (const [mask, datum] of pairs) {
    const program = compile({ defaultAction: 'kill-thread', rules: [{ syscalls: ['ioctl'], action: 'allow', args: [{ index: 2, op: 'masked-eq', value: mask, valueTwo: datum }] }] });
    for (const arg of args) {
      const expected = (arg & mask) === datum ? ALLOW : SECCOMP_RET.KILL_THREAD;
      t.is(decide(program, { nr: x86('ioctl'), args: [1, 2, arg] }), expected, `(${arg.toString(16)} & ${mask.toString(16)}) == ${datum.toString(16)}`);
    }
  }
});

test('all checks of a rule must hold; the next rule is tried when one fails', (t) => {
  const program = compile({
    defaultAction: { errno: 1 },
    rules: [
      { syscalls: ['socket'], action: 'allow', args: [{ index: 0, op: 'eq', value: 2n }, { index: 1, op: 'le', value: 3n }, { index: 2, op: 'ne', value: 0x100000000n }] },
      { syscalls: ['socket'], action: { errno: 97 }, args: [{ index: 0, op: 'ge', value: 40n }] },
    ],
  }, 'aarch64');
  const socket = (...args: Array<bigint | number>) => decide(program, { nr: arm('socket'), args }, 'aarch64');
  t.is(socket(2, 1, 0), ALLOW);
  t.is(socket(2, 3, 6), ALLOW);
  t.is(socket(2, 4, 0), EPERM);
  t.is(socket(2, 1, 0x100000000n), EPERM);
  t.is(socket(10, 1, 0), EPERM);
  t.is(socket(40, 1, 0), errno(97));
  t.is(socket(0x100000002n, 1, 0), errno(97), 'a high word makes family ≥ 40 and not 2');
});

// ── Long programs ──────────────────────────────────────────────────────────────────────────────

test('hundreds of rules with distinct decisions: jumps past 255 instructions go through JA', (t) => {
  for (const arch of ['x86_64', 'aarch64'] as const) {
    const table = arch === 'x86_64' ? X86_64_SYSCALLS : AARCH64_SYSCALLS;
    const names = Object.keys(table);
    // Every system call its own errno, and every third one an argument check in front of it.
    const policy: SeccompPolicy = {
      defaultAction: 'kill-process',
      rules: names.flatMap((name, i) => [
        { syscalls: [name], action: { errno: 100 + i } },
        ...(i % 3 === 0 ? [{ syscalls: [name], action: 'trap' as const, args: [{ index: 1, op: 'eq' as const, value: BigInt(i) << 32n }] }] : []),
      ]),
    };
    const program = compile(policy, arch);
    const insns = assemble(policy, arch);
    t.true(insns.some((i) => i.code === 0x05 && i.k > 255), `${arch}: a long JA is used (${insns.length} instructions)`);
    names.forEach((name, i) => {
      const number = table[name];
      if (decide(program, { nr: number, args: [0, 7] }, arch) !== errno(100 + i)) t.fail(`${arch} ${name}`);
      if (i % 3 === 0 && decide(program, { nr: number, args: [0, BigInt(i) << 32n] }, arch) !== SECCOMP_RET.TRAP) t.fail(`${arch} ${name} trap`);
    });
    for (const gap of [1000, 0x3ffffff0, 470, -1 >>> 0]) {
      const expected = arch === 'x86_64' && gap >= 0x40000000 ? ENOSYS : SECCOMP_RET.KILL_PROCESS;
      t.is(decide(program, { nr: gap }, arch), expected);
    }
  }
});

test('one argument rule over many scattered system calls is emitted once and shared', (t) => {
  const names = ['read', 'write', 'openat', 'close', 'mmap', 'ioctl', 'pipe2', 'dup3', 'socket', 'bind', 'execve', 'wait4'];
  const policy: SeccompPolicy = { defaultAction: 'allow', rules: [{ syscalls: names, action: { errno: 9 }, args: [{ index: 0, op: 'gt', value: 1000n }, { index: 3, op: 'masked-eq', value: 0xffn, valueTwo: 7n }] }] };
  const insns = assemble(policy, 'x86_64');
  t.true(insns.length < 60, `${insns.length} instructions`);
  const program = compile(policy);
  for (const name of names) {
    t.is(decide(program, { nr: x86(name), args: [1001, 0, 0, 0x107] }), errno(9));
    t.is(decide(program, { nr: x86(name), args: [1000, 0, 0, 0x107] }), ALLOW);
    t.is(decide(program, { nr: x86(name), args: [1001, 0, 0, 0x106] }), ALLOW);
  }
});

test('a program longer than the kernel takes is refused with ERR_INVALID_OPTION', (t) => {
  const names = Object.keys(X86_64_SYSCALLS);
  const args: SeccompArgCheck[] = [0, 1, 2, 3, 4, 5].map((index) => ({ index, op: 'masked-eq', value: U64, valueTwo: BigInt(index) << 40n }));
  const policy: SeccompPolicy = { defaultAction: 'allow', rules: names.map((name, i) => ({ syscalls: [name], action: { errno: 1 + (i % 100) }, args })) };
  const error = t.throws(() => compileSeccomp(policy, 'x86_64'));
  t.true(isSandboxError(error) && error.code === 'ERR_INVALID_OPTION');
  t.regex(error!.message, /compiles to \d+ BPF instructions for x86_64; the kernel takes at most 4096/);
});

// ── Names and tables ──────────────────────────────────────────────────────────────────────────

test('names missing on one architecture are skipped; a name no architecture has is an error', (t) => {
  const policy: SeccompPolicy = { defaultAction: { errno: 38 }, rules: [{ syscalls: ['open', 'arch_prctl', 'socketcall', 'openat'], action: 'allow' }] };
  const forArm = compile(policy, 'aarch64');
  t.is(decide(forArm, { nr: 2 /* io_submit on aarch64, open on x86_64 */ }, 'aarch64'), ENOSYS);
  t.is(decide(forArm, { nr: arm('openat') }, 'aarch64'), ALLOW);
  const forX86 = compile(policy);
  t.is(decide(forX86, { nr: x86('open') }), ALLOW);
  t.is(decide(forX86, { nr: x86('arch_prctl') }), ALLOW);
  const error = t.throws(() => compileSeccomp({ defaultAction: 'allow', rules: [{ syscalls: ['mkdri'], action: 'allow' }] }, 'x86_64'));
  t.true(isSandboxError(error) && error.code === 'ERR_INVALID_OPTION');
  t.regex(error!.message, /unknown system call `mkdri`/);
});

test('malformed rules are refused: errno range, argument index, comparison values', (t) => {
  const bad: SeccompPolicy[] = [
    { defaultAction: { errno: 4096 }, rules: [] },
    { defaultAction: 'allow', rules: [{ syscalls: ['read'], action: { errno: -1 } }] },
    { defaultAction: 'allow', rules: [{ syscalls: ['read'], action: 'allow', args: [{ index: 6, op: 'eq', value: 0n }] }] },
    { defaultAction: 'allow', rules: [{ syscalls: ['read'], action: 'allow', args: [{ index: 0, op: 'eq', value: 1n << 64n }] }] },
    { defaultAction: 'allow', rules: [{ syscalls: ['read'], action: 'allow', args: [{ index: 0, op: 'eq', value: -1n }] }] },
    { defaultAction: 'nope' as 'allow', rules: [] },
    { defaultAction: 'allow', rules: [{ syscalls: ['read'], action: 'trap', args: Array.from({ length: 60 }, (_, i) => ({ index: i % 6, op: 'ge' as const, value: BigInt(i) })) }] },
  ];
  for (const policy of bad) {
    const error = t.throws(() => compileSeccomp(policy, 'x86_64'));
    t.true(isSandboxError(error) && error.code === 'ERR_INVALID_OPTION', error?.message);
  }
});

test('the generated tables: x86_64 numbers, aarch64 from asm-generic with its 64-bit names', (t) => {
  t.like(X86_64_SYSCALLS, { read: 0, open: 2, clone: 56, fork: 57, execve: 59, arch_prctl: 158, newfstatat: 262, rseq: 334, pidfd_send_signal: 424, clone3: 435, file_setattr: 469 });
  t.like(AARCH64_SYSCALLS, {
    io_setup: 0, fcntl: 25, renameat: 38, openat: 56, lseek: 62, newfstatat: 79, fstat: 80, getrlimit: 163, clone: 220,
    execve: 221, mmap: 222, fadvise64: 223, wait4: 260, rseq: 293, kexec_file_load: 294, clone3: 435, mseal: 462, file_setattr: 469,
  });
  for (const name of ['open', 'stat', 'fork', 'vfork', 'arch_prctl', 'fcntl64', 'fstatat64', 'mmap2', 'sync_file_range2', 'arch_specific_syscall']) t.false(name in AARCH64_SYSCALLS, name);
  t.is(AUDIT_ARCH_X86_64, 0xc000003e);
  t.is(AUDIT_ARCH_AARCH64, 0xc00000b7);
  const numbers = Object.values(AARCH64_SYSCALLS);
  t.is(new Set(numbers).size, numbers.length, 'no number twice');
});

// ── The default policy ────────────────────────────────────────────────────────────────────────

const CONTEXT = { caps: new Set(['CAP_CHOWN', 'CAP_SYS_CHROOT', 'CAP_MKNOD']), kernel: [6, 18, 0] };

for (const arch of ['x86_64', 'aarch64'] as const) {
  test(`default policy on ${arch}: ordinary calls pass, dangerous ones get EPERM, clone3 and unknown ones ENOSYS`, (t) => {
    const program = compile(defaultSeccompPolicy(CONTEXT), arch);
    t.log(`${arch}: ${program.length / 8} instructions`);
    const at = (name: string, ...args: Array<bigint | number>) => {
      const number = nr(arch, name);
      if (number === undefined) throw new Error(`${name} is not on ${arch}`);
      return decide(program, { nr: number, args }, arch);
    };
    for (const name of ['read', 'write', 'openat', 'close', 'mmap', 'execve', 'execveat', 'exit_group', 'wait4', 'rt_sigprocmask', 'rt_sigtimedwait', 'kill', 'sendto', 'pipe2', 'fcntl', 'prctl', 'futex', 'rseq', 'getrandom', 'set_robust_list', 'newfstatat', 'statx', 'epoll_pwait', 'ptrace', 'chroot', 'adjtimex', 'seccomp']) {
      t.is(at(name), ALLOW, name);
    }
    const denied = [
      'kexec_load', 'kexec_file_load', 'bpf', 'perf_event_open', 'userfaultfd', 'keyctl', 'add_key', 'request_key', 'open_by_handle_at',
      'name_to_handle_at', 'fsopen', 'fsconfig', 'fsmount', 'fspick', 'move_mount', 'open_tree', 'open_tree_attr', 'mount_setattr', 'mount', 'umount2', 'pivot_root',
      'init_module', 'finit_module', 'delete_module', 'setns', 'unshare', 'io_uring_setup', 'io_uring_enter', 'io_uring_register', 'swapon', 'swapoff',
      'reboot', 'acct', 'quotactl', 'quotactl_fd', 'settimeofday', 'clock_settime', 'clock_adjtime', 'lookup_dcookie', 'syslog', 'vhangup', 'nfsservctl',
      'kcmp', 'pidfd_getfd', 'process_madvise', 'get_mempolicy', 'set_mempolicy', 'mbind', 'move_pages', 'migrate_pages', 'sethostname', 'fanotify_init',
    ];
    const x86Only = ['uselib', 'ustat', 'sysfs', '_sysctl', 'iopl', 'ioperm', 'create_module', 'query_module', 'get_kernel_syms', 'modify_ldt'];
    for (const name of [...denied, ...(arch === 'x86_64' ? x86Only : [])]) t.is(at(name), EPERM, name);
    for (const name of ['unshare', 'setns']) for (const flags of [0, 0x200, 0x10000000]) t.is(at(name, flags), EPERM, `${name}(${flags})`);

    t.is(at('clone3'), ENOSYS);
    for (const name of ['statmount', 'listmount', 'lsm_get_self_attr', 'memfd_secret']) t.is(at(name), ENOSYS, name);
    t.is(decide(program, { nr: 1000 }, arch), ENOSYS, 'a number no kernel has yet');

    // clone: threads and fork pass, any CLONE_NEW* flag is refused, in the bits the kernel reads.
    const thread = 0x3d0f00; // CLONE_VM|FS|FILES|SIGHAND|THREAD|SYSVSEM|SETTLS|PARENT_SETTID|CHILD_CLEARTID
    t.is(at('clone', thread), ALLOW);
    t.is(at('clone', 0x01200011), ALLOW, 'fork: SIGCHLD|CLONE_CHILD_SETTID|CLONE_CHILD_CLEARTID');
    t.is(at('clone', 0x4111), ALLOW, 'posix_spawn: CLONE_VM|CLONE_VFORK|SIGCHLD');
    for (const flag of [0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000]) {
      t.is(at('clone', 0x11 | flag), EPERM, `clone flag ${flag.toString(16)}`);
      t.is(at('clone', (1n << 40n) | BigInt(flag)), EPERM);
    }
    t.is(at('clone', 0x80 | 0x11), ALLOW, '0x80 is part of the exit signal for clone');

    for (const value of [0, 8, 0x20000, 0x20008, 0xffffffff]) t.is(at('personality', value), ALLOW, `personality(${value.toString(16)})`);
    for (const value of [0x0040000n, 0x0400000n, 0x0100000n, 0x4n, 0x1n, 0x100000000n, 0x100000008n, 0xffffffffffffffffn]) t.is(at('personality', value), EPERM, `personality(${value.toString(16)})`);

    const mknodat = (mode: number, dev: number | bigint) => at('mknodat', -100 >>> 0, 0x1000, mode, dev);
    t.is(mknodat(0o060600, 0x800), EPERM, 'block device');
    t.is(mknodat(0o020600, 0x103), EPERM, 'char device 1:3');
    t.is(mknodat(0o020600, 0), ALLOW, 'overlay whiteout 0:0');
    t.is(mknodat(0o010600, 0), ALLOW, 'fifo');
    t.is(mknodat(0o100600, 0), ALLOW, 'regular file');
    t.is(mknodat(0o140600, 0), ALLOW, 'socket');

    t.is(at('socket', 2, 1, 0), ALLOW);
    t.is(at('socket', 1, 1, 0), ALLOW);
    t.is(at('socket', 40, 1, 0), EPERM, 'AF_VSOCK');
    t.is(at('socket', (7n << 32n) | 40n, 1, 0), EPERM, 'AF_VSOCK with a stray high word');
    t.is(at('socket', 16, 3, 9), errno(93), 'AF_NETLINK, NETLINK_AUDIT: EPROTONOSUPPORT');
    t.is(at('socket', 16, 0x80003, (1n << 35n) | 9n), errno(93));
    t.is(at('socket', 16, 3, 0), ALLOW, 'NETLINK_ROUTE');

    t.is(at('ioctl', 0, 0x5412, 0), EPERM, 'TIOCSTI');
    t.is(at('ioctl', 0, (1n << 32n) | 0x5412n, 0), EPERM, 'TIOCSTI with a stray high word');
    t.is(at('ioctl', 0, 0x541c, 0), EPERM, 'TIOCLINUX');
    t.is(at('ioctl', 0, 0x5401, 0), ALLOW, 'TCGETS');
    t.is(at('ioctl', 0, 0x5413, 0), ALLOW, 'TIOCGWINSZ');
    t.true(program.length / 8 < 400);
  });
}

test('default policy: ptrace needs kernel 4.8, chroot needs CAP_SYS_CHROOT', (t) => {
  const old = compile(defaultSeccompPolicy({ caps: new Set(), kernel: [4, 4, 0] }));
  for (const name of ['ptrace', 'process_vm_readv', 'process_vm_writev', 'chroot']) t.is(decide(old, { nr: x86(name) }), EPERM, name);
  const fresh = compile(defaultSeccompPolicy({ caps: new Set(['CAP_SYS_CHROOT']), kernel: [4, 8, 0] }));
  for (const name of ['ptrace', 'process_vm_readv', 'process_vm_writev', 'chroot']) t.is(decide(fresh, { nr: x86(name) }), ALLOW, name);
});
