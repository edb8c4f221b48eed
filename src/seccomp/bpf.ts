// SPDX-License-Identifier: Apache-2.0
// Compiles a seccomp rule set to a classic-BPF program (struct sock_filter[]) for one architecture.
//
// The program's shape, for a system call number in A:
//
//   check seccomp_data.arch          a foreign architecture (i386 via int 0x80, arm32...) → KILL_PROCESS
//   load nr; on x86_64 nr ≥ 2^30     the x32 ABI → ERRNO(ENOSYS), what a kernel without x32 says
//   binary search over intervals     the number line cut into runs of numbers that share one
//                                    decision; each split is `JGE k` (+ a long `JA` when the
//                                    left half is more than 255 instructions away)
//   leaf                             the run's decision inline (a RET, or short argument checks),
//                                    or a `JA` to a block shared by several runs
//
// Conditional jumps are 8-bit: they only ever skip within one rule's argument checks (at most
// 6 instructions per check; a rule whose checks exceed 255 is refused) or over a left subtree
// known to be short; every longer distance is a `JA` with a 32-bit offset. So rule lists of any
// length compile, up to the kernel's 4096 instructions (BPF_MAXINSNS).
import { SandboxError } from '../errors.js';
import { ARCHES, OTHER_ARCH_SYSCALL_NAMES, X32_SYSCALL_BIT, type SeccompArch } from './syscalls.js';

/**
 * What the kernel does with a system call: run it, fail it with an errno (without running it),
 * kill the process or the thread, send SIGSYS (`trap`), or run it and log it.
 *
 * @example
 * ```ts
 * const deny: SeccompAction = { errno: 1 }; // EPERM
 * ```
 */
export type SeccompAction = 'allow' | 'kill-process' | 'kill-thread' | 'trap' | 'log' | { errno: number };

/**
 * An unsigned 64-bit comparison of one system call argument: `eq`/`ne`/`lt`/`le`/`gt`/`ge`
 * against `value`, or `masked-eq`: `(arg & value) === valueTwo`.
 *
 * @example
 * ```ts
 * const noNamespaces: SeccompArgCheck = { index: 0, op: 'masked-eq', value: 0x7e020000n, valueTwo: 0n };
 * ```
 */
export interface SeccompArgCheck {
  /** Argument 0..5. */
  index: number;
  op: 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge' | 'masked-eq';
  /** 0 ≤ value < 2^64. For `masked-eq`: the mask. */
  value: bigint;
  /** For `masked-eq`: what the masked argument must equal (default 0). */
  valueTwo?: bigint;
}

/**
 * One rule: these system calls get `action` when every check in `args` holds.
 *
 * @example
 * ```ts
 * const rule: SeccompRule = { syscalls: ['mkdir', 'mkdirat'], action: { errno: 13 } };
 * ```
 */
export interface SeccompRule {
  /** System call names; a name the architecture lacks is skipped. */
  syscalls: string[];
  action: SeccompAction;
  /** All must hold (AND). None: the rule always applies. */
  args?: SeccompArgCheck[];
}

/**
 * A normalised seccomp policy: what the default profile and parsed Docker/OCI profiles become.
 * When several rules of one system call match, the most severe action wins, in the kernel's
 * order for stacked filters: kill-process, kill-thread, trap, errno, log, allow.
 *
 * @example
 * ```ts
 * const policy: SeccompPolicy = { defaultAction: 'allow', rules: [{ syscalls: ['ptrace'], action: { errno: 1 } }] };
 * ```
 */
export interface SeccompPolicy {
  /** For every system call no rule decides. */
  defaultAction: SeccompAction;
  rules: SeccompRule[];
}

// struct sock_filter opcodes (linux/bpf_common.h).
const LD_W_ABS = 0x20; // BPF_LD | BPF_W | BPF_ABS
const ALU_AND_K = 0x54; // BPF_ALU | BPF_AND | BPF_K
const JA = 0x05; // BPF_JMP | BPF_JA
const JEQ_K = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JGT_K = 0x25; // BPF_JMP | BPF_JGT | BPF_K
const JGE_K = 0x35; // BPF_JMP | BPF_JGE | BPF_K
const RET_K = 0x06; // BPF_RET | BPF_K

/** @internal SECCOMP_RET_* (linux/seccomp.h). */
export const SECCOMP_RET = {
  KILL_PROCESS: 0x80000000,
  KILL_THREAD: 0x00000000,
  TRAP: 0x00030000,
  ERRNO: 0x00050000,
  LOG: 0x7ffc0000,
  ALLOW: 0x7fff0000,
} as const;

/** @internal The kernel's limit on a classic-BPF program (BPF_MAXINSNS). */
export const MAX_INSTRUCTIONS = 4096;
const MAX_JUMP = 255;
// Offsets in struct seccomp_data: int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6].
const OFFSET_NR = 0;
const OFFSET_ARCH = 4;
// Both architectures are little-endian: the low word of args[i] comes first.
const argLow = (index: number) => 16 + 8 * index;
const argHigh = (index: number) => 16 + 8 * index + 4;
const ENOSYS = 38;
const MAX_ERRNO = 4095;
const U64_MAX = (1n << 64n) - 1n;

// An instruction while assembling. Conditional targets may name a place not yet known:
// 'pass' (after this argument check), 'fail' (the next rule); `label` marks a long JA to a shared block.
type Target = number | 'pass' | 'fail';
interface Insn {
  code: number;
  jt: Target;
  jf: Target;
  k: number;
  kTarget?: 'fail';
  label?: string;
}

const stmt = (code: number, k: number): Insn => ({ code, jt: 0, jf: 0, k });
const jump = (code: number, k: number, jt: Target, jf: Target): Insn => ({ code, jt, jf, k });

function invalid(message: string): SandboxError {
  return new SandboxError('ERR_INVALID_OPTION', `Invalid seccomp profile: ${message}`);
}

/** @internal The 32-bit SECCOMP_RET_* value of an action. */
export function actionValue(action: SeccompAction): number {
  if (typeof action === 'object') return (SECCOMP_RET.ERRNO | action.errno) >>> 0;
  switch (action) {
    case 'allow': return SECCOMP_RET.ALLOW;
    case 'kill-process': return SECCOMP_RET.KILL_PROCESS;
    case 'kill-thread': return SECCOMP_RET.KILL_THREAD;
    case 'trap': return SECCOMP_RET.TRAP;
    case 'log': return SECCOMP_RET.LOG;
  }
}

// The kernel's precedence among stacked filters; used to order the rules of one system call.
function severity(action: SeccompAction): number {
  if (typeof action === 'object') return 3;
  return { 'kill-process': 0, 'kill-thread': 1, trap: 2, log: 4, allow: 5 }[action];
}

const ret = (action: SeccompAction): Insn => stmt(RET_K, actionValue(action));
const words = (v: bigint): [number, number] => [Number(v >> 32n), Number(v & 0xffffffffn)];

// One argument check: falls through (or jumps to 'pass') when it holds, jumps to 'fail' when not.
function argCheck(check: SeccompArgCheck): Insn[] {
  const lo = argLow(check.index);
  const hi = argHigh(check.index);
  const [vHi, vLo] = words(check.value);
  switch (check.op) {
    case 'eq':
      return [stmt(LD_W_ABS, hi), jump(JEQ_K, vHi, 0, 'fail'), stmt(LD_W_ABS, lo), jump(JEQ_K, vLo, 'pass', 'fail')];
    case 'ne':
      return [stmt(LD_W_ABS, hi), jump(JEQ_K, vHi, 0, 'pass'), stmt(LD_W_ABS, lo), jump(JEQ_K, vLo, 'fail', 'pass')];
    case 'gt':
      return [stmt(LD_W_ABS, hi), jump(JGT_K, vHi, 'pass', 0), jump(JEQ_K, vHi, 0, 'fail'), stmt(LD_W_ABS, lo), jump(JGT_K, vLo, 'pass', 'fail')];
    case 'ge':
      return [stmt(LD_W_ABS, hi), jump(JGT_K, vHi, 'pass', 0), jump(JEQ_K, vHi, 0, 'fail'), stmt(LD_W_ABS, lo), jump(JGE_K, vLo, 'pass', 'fail')];
    case 'lt':
      return [stmt(LD_W_ABS, hi), jump(JGT_K, vHi, 'fail', 0), jump(JEQ_K, vHi, 0, 'pass'), stmt(LD_W_ABS, lo), jump(JGE_K, vLo, 'fail', 'pass')];
    case 'le':
      return [stmt(LD_W_ABS, hi), jump(JGT_K, vHi, 'fail', 0), jump(JEQ_K, vHi, 0, 'pass'), stmt(LD_W_ABS, lo), jump(JGT_K, vLo, 'fail', 'pass')];
    case 'masked-eq': {
      const [mHi, mLo] = words(check.value);
      const [dHi, dLo] = words(check.valueTwo ?? 0n);
      const out: Insn[] = [];
      // A word whose mask and datum are both 0 always matches: skip it. A datum outside the mask never does.
      if ((dHi & ~mHi) !== 0 || (dLo & ~mLo) !== 0) return [{ ...stmt(JA, 0), kTarget: 'fail' }];
      if (mHi !== 0) out.push(stmt(LD_W_ABS, hi), stmt(ALU_AND_K, mHi), jump(JEQ_K, dHi, 0, 'fail'));
      if (mLo !== 0) out.push(stmt(LD_W_ABS, lo), stmt(ALU_AND_K, mLo), jump(JEQ_K, dLo, 0, 'fail'));
      return out;
    }
  }
}

// Resolves 'pass' to the end of `code` (relative to each instruction).
function resolvePass(code: Insn[]): Insn[] {
  const end = code.length;
  return code.map((insn, i) => ({
    ...insn,
    jt: insn.jt === 'pass' ? end - i - 1 : insn.jt,
    jf: insn.jf === 'pass' ? end - i - 1 : insn.jf,
  }));
}

// The decision for one system call: its rules, most severe first; the default when none matches.
function decisionBlock(rules: NormalRule[], defaultAction: SeccompAction): Insn[] {
  const block: Insn[] = [];
  for (const rule of rules) {
    if (rule.args.length === 0) {
      block.push(ret(rule.action));
      return block;
    }
    const body = [...rule.args.flatMap((check) => resolvePass(argCheck(check))), ret(rule.action)];
    const end = body.length;
    body.forEach((insn, i) => {
      const distance = end - i - 1;
      if (insn.jt === 'fail') insn.jt = distance;
      if (insn.jf === 'fail') insn.jf = distance;
      if (insn.kTarget === 'fail') {
        insn.k = distance;
        delete insn.kTarget;
      }
      if ((typeof insn.jt === 'number' && insn.jt > MAX_JUMP) || (typeof insn.jf === 'number' && insn.jf > MAX_JUMP))
        throw invalid(`a rule for \`${rule.name}\` has too many argument checks (${rule.args.length})`);
    });
    block.push(...body);
  }
  block.push(ret(defaultAction));
  return block;
}

interface NormalRule {
  name: string;
  action: SeccompAction;
  args: SeccompArgCheck[];
}

function checkAction(action: SeccompAction, where: string): void {
  if (typeof action === 'object') {
    if (!Number.isInteger(action.errno) || action.errno < 0 || action.errno > MAX_ERRNO) throw invalid(`${where}: errno must be an integer 0..${MAX_ERRNO}, got ${String(action.errno)}`);
    return;
  }
  if (!['allow', 'kill-process', 'kill-thread', 'trap', 'log'].includes(action)) throw invalid(`${where}: unknown action \`${String(action)}\``);
}

function checkArg(check: SeccompArgCheck, where: string): void {
  if (!Number.isInteger(check.index) || check.index < 0 || check.index > 5) throw invalid(`${where}: argument index must be 0..5, got ${String(check.index)}`);
  if (!['eq', 'ne', 'lt', 'le', 'gt', 'ge', 'masked-eq'].includes(check.op)) throw invalid(`${where}: unknown comparison \`${String(check.op)}\``);
  for (const v of [check.value, check.valueTwo ?? 0n]) {
    if (typeof v !== 'bigint' || v < 0n || v > U64_MAX) throw invalid(`${where}: comparison values must be bigints in 0..2^64-1, got ${String(v)}`);
  }
}

/** @internal Whether `name` is a system call of any architecture nsbox knows of. */
export function isKnownSyscall(name: string): boolean {
  return name in ARCHES.x86_64.syscalls || name in ARCHES.aarch64.syscalls || OTHER_ARCH_SYSCALL_NAMES.has(name);
}

/** @internal Instruction as the kernel reads it. */
export interface SockFilter {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

/**
 * @internal Compiles `policy` for `arch` to struct sock_filter[] as bytes (8 each, little-endian).
 * Throws SandboxError ERR_INVALID_OPTION for a malformed policy, a system call name no
 * architecture has, or a program longer than the kernel takes.
 */
export function compileSeccomp(policy: SeccompPolicy, arch: SeccompArch): Buffer {
  return encode(assemble(policy, arch));
}

/** @internal As {@link compileSeccomp}, before encoding (for tests and instruction counts). */
export function assemble(policy: SeccompPolicy, arch: SeccompArch): SockFilter[] {
  const { auditArch, syscalls } = ARCHES[arch];
  checkAction(policy.defaultAction, 'defaultAction');

  // Number → its rules, in order of severity (stable, so equal severities keep the author's order).
  const byNumber = new Map<number, NormalRule[]>();
  policy.rules.forEach((rule, r) => {
    checkAction(rule.action, `rules[${r}]`);
    (rule.args ?? []).forEach((a, i) => checkArg(a, `rules[${r}].args[${i}]`));
    for (const name of rule.syscalls) {
      if (!isKnownSyscall(name)) throw invalid(`rules[${r}]: unknown system call \`${name}\``);
      const nr = syscalls[name];
      if (nr === undefined) continue; // not on this architecture
      const list = byNumber.get(nr) ?? [];
      list.push({ name, action: rule.action, args: rule.args ?? [] });
      byNumber.set(nr, list);
    }
  });

  // Each number's decision block, deduplicated by content; the default's block is one RET.
  const blocks = new Map<string, Insn[]>();
  const keyOf = (code: Insn[]) => code.map((i) => `${i.code},${String(i.jt)},${String(i.jf)},${i.k}`).join(';');
  const defaultBlock = [ret(policy.defaultAction)];
  const defaultKey = keyOf(defaultBlock);
  blocks.set(defaultKey, defaultBlock);
  const keyByNumber = new Map<number, string>();
  for (const [nr, rules] of byNumber) {
    const sorted = rules.map((rule, i) => ({ rule, i })).sort((a, b) => severity(a.rule.action) - severity(b.rule.action) || a.i - b.i).map((x) => x.rule);
    const block = decisionBlock(sorted, policy.defaultAction);
    const key = keyOf(block);
    if (!blocks.has(key)) blocks.set(key, block);
    keyByNumber.set(nr, key);
  }

  // Cut 0..2^32-1 into intervals of one decision each; unnamed numbers get the default.
  const intervals: Array<{ lo: number; key: string }> = [];
  const push = (lo: number, key: string) => {
    if (intervals.at(-1)?.lo === lo) intervals.pop(); // an empty interval: replaced
    if (intervals.at(-1)?.key === key) return; // same decision: the previous interval grows
    intervals.push({ lo, key });
  };
  push(0, defaultKey);
  for (const nr of [...keyByNumber.keys()].sort((a, b) => a - b)) {
    push(nr, keyByNumber.get(nr)!);
    if (!keyByNumber.has(nr + 1)) push(nr + 1, defaultKey);
  }

  // Blocks used by more than one interval and longer than a jump are emitted once, after the tree.
  const uses = new Map<string, number>();
  for (const { key } of intervals) uses.set(key, (uses.get(key) ?? 0) + 1);
  const shared = new Set([...uses].filter(([key, n]) => n > 1 && blocks.get(key)!.length > 1).map(([key]) => key));
  const leaf = (key: string): Insn[] => (shared.has(key) ? [{ ...stmt(JA, 0), label: key }] : blocks.get(key)!.map((i) => ({ ...i })));

  const tree = (l: number, r: number): Insn[] => {
    if (l === r) return leaf(intervals[l].key);
    const m = (l + r + 1) >> 1;
    const left = tree(l, m - 1);
    const right = tree(m, r);
    // nr ≥ intervals[m].lo → right half, placed after the left one.
    if (left.length <= MAX_JUMP) return [jump(JGE_K, intervals[m].lo, left.length, 0), ...left, ...right];
    return [jump(JGE_K, intervals[m].lo, 0, 1), stmt(JA, left.length), ...left, ...right];
  };

  const program: Insn[] = [
    stmt(LD_W_ABS, OFFSET_ARCH),
    jump(JEQ_K, auditArch, 1, 0),
    stmt(RET_K, SECCOMP_RET.KILL_PROCESS),
    stmt(LD_W_ABS, OFFSET_NR),
  ];
  if (arch === 'x86_64') program.push(jump(JGE_K, X32_SYSCALL_BIT, 0, 1), ret({ errno: ENOSYS }));
  program.push(...tree(0, intervals.length - 1));
  const starts = new Map<string, number>();
  for (const key of shared) {
    starts.set(key, program.length);
    program.push(...blocks.get(key)!.map((i) => ({ ...i })));
  }
  if (program.length > MAX_INSTRUCTIONS)
    throw invalid(`it compiles to ${program.length} BPF instructions for ${arch}; the kernel takes at most ${MAX_INSTRUCTIONS}`);

  return program.map((insn, i) => {
    const k = insn.label === undefined ? insn.k : starts.get(insn.label)! - i - 1;
    if (typeof insn.jt !== 'number' || typeof insn.jf !== 'number' || insn.jt > MAX_JUMP || insn.jf > MAX_JUMP)
      throw new Error(`seccomp compiler: unresolved or long jump at ${i}`);
    return { code: insn.code, jt: insn.jt, jf: insn.jf, k: k >>> 0 };
  });
}

/** @internal struct sock_filter[] as bytes: u16 code, u8 jt, u8 jf, u32 k, little-endian. */
export function encode(program: SockFilter[]): Buffer {
  const bytes = Buffer.alloc(program.length * 8);
  program.forEach((insn, i) => {
    bytes.writeUInt16LE(insn.code, i * 8);
    bytes.writeUInt8(insn.jt, i * 8 + 2);
    bytes.writeUInt8(insn.jf, i * 8 + 3);
    bytes.writeUInt32LE(insn.k, i * 8 + 4);
  });
  return bytes;
}
