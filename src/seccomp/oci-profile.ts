// SPDX-License-Identifier: Apache-2.0
// Reads a Docker/OCI seccomp profile (JSON) into a normalised policy for one sandbox, checking every field.
//
// The format is Docker's (`docker run --security-opt seccomp=profile.json`), which is a superset
// of the OCI runtime spec's `linux.seccomp`. How nsbox reads it:
//   - `includes`/`excludes` are decided here, for the sandbox's architecture, capability set and
//     the running kernel: a rule applies when every `includes` condition holds (all listed caps
//     held, the arch listed, kernel ≥ minKernel) and no `excludes` condition does (none of the
//     listed caps held, the arch not listed, kernel < minKernel).
//   - `architectures`/`archMap` are checked but only the native architecture is ever allowed:
//     system calls of another ABI (i386 through int 0x80, x32, arm32) kill the process.
//   - Several comparisons of one argument in a rule become one rule per comparison (any of them
//     applies), as runc does; comparisons of different arguments must all hold.
//   - When rules conflict the most severe action wins (kill > trap > errno > log > allow).
//   - `flags` are accepted and have no effect (the filter is installed by one thread, right before
//     execve); SCMP_ACT_TRACE and SCMP_ACT_NOTIFY need a tracer or a listener nsbox does not
//     have, and are refused with ERR_UNSUPPORTED.
import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';
import { SandboxError } from '../errors.js';
import { isKnownSyscall, type SeccompAction, type SeccompArgCheck, type SeccompPolicy, type SeccompRule } from './bpf.js';
import type { SeccompArch } from './syscalls.js';

/**
 * A Docker/OCI seccomp profile, as in the JSON files `docker run --security-opt seccomp=…` takes.
 *
 * @example
 * ```ts
 * const profile: SeccompProfile = {
 *   defaultAction: 'SCMP_ACT_ALLOW',
 *   syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }],
 * };
 * await run({ image: 'host', command: ['mkdir', '/tmp/x'], seccomp: profile }); // EACCES
 * ```
 */
export interface SeccompProfile {
  /** SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, SCMP_ACT_KILL_PROCESS, SCMP_ACT_KILL(_THREAD), SCMP_ACT_TRAP or SCMP_ACT_LOG. */
  defaultAction: string;
  /** errno of a SCMP_ACT_ERRNO default; EPERM (1) when absent. */
  defaultErrnoRet?: number;
  /** SCMP_ARCH_* names (checked; only the native architecture is allowed). */
  architectures?: string[];
  /** Docker's per-architecture variant of `architectures`. */
  archMap?: Array<{ architecture: string; subArchitectures?: string[] | null }>;
  /** SECCOMP_FILTER_FLAG_* (accepted, no effect). */
  flags?: string[];
  /** Only for SCMP_ACT_NOTIFY, which nsbox does not support: must be empty. */
  listenerPath?: string;
  /** Only for SCMP_ACT_NOTIFY. */
  listenerMetadata?: string;
  /** The rules. */
  syscalls?: SeccompProfileSyscall[] | null;
}

/**
 * One rule of a {@link SeccompProfile}.
 *
 * @example
 * ```ts
 * const rule: SeccompProfileSyscall = { names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0, op: 'SCMP_CMP_EQ' }] };
 * ```
 */
export interface SeccompProfileSyscall {
  names?: string[] | null;
  /** Docker's older single-name form. */
  name?: string;
  action: string;
  errnoRet?: number | null;
  args?: SeccompProfileArg[] | null;
  comment?: string;
  includes?: SeccompProfileFilter | null;
  excludes?: SeccompProfileFilter | null;
}

/**
 * An argument comparison of a {@link SeccompProfileSyscall}. Values are unsigned 64-bit: numbers
 * up to 2^53 - 1, or bigints / decimal strings above that.
 *
 * @example
 * ```ts
 * const noNewUserns: SeccompProfileArg = { index: 0, value: 0x10000000, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' };
 * ```
 */
export interface SeccompProfileArg {
  index: number;
  value: number | bigint | string;
  valueTwo?: number | bigint | string | null;
  op: string;
}

/**
 * Docker's conditions on a rule: architectures (Go names like amd64, or SCMP_ARCH_*), capabilities
 * (CAP_SYS_ADMIN…) and a minimum kernel ("4.8").
 *
 * @example
 * ```ts
 * const onlyWithSysAdmin: SeccompProfileFilter = { caps: ['CAP_SYS_ADMIN'] };
 * ```
 */
export interface SeccompProfileFilter {
  arches?: string[] | null;
  caps?: string[] | null;
  minKernel?: string | null;
}

/** @internal What includes/excludes are evaluated against. */
export interface ProfileContext {
  arch: SeccompArch;
  /** Capability names the sandbox holds ('CAP_CHOWN', ...). */
  caps: ReadonlySet<string>;
  /** The running kernel: [major, minor, patch]. */
  kernel: readonly [number, number, number];
}

/** @internal Capability names by bit number (linux/capability.h). */
export const CAPABILITY_NAMES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN',
  'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ',
  'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
] as const;

/** @internal The names of the capabilities set in a [low, high] pair of 32-bit masks. */
export function capabilityNames([low, high]: readonly [number, number]): Set<string> {
  const names = new Set<string>();
  CAPABILITY_NAMES.forEach((name, bit) => {
    const word = bit < 32 ? low : high;
    if ((word >>> (bit % 32)) & 1) names.add(name);
  });
  return names;
}

const SCMP_ARCHES = new Set([
  'SCMP_ARCH_NATIVE', 'SCMP_ARCH_X86', 'SCMP_ARCH_X86_64', 'SCMP_ARCH_X32', 'SCMP_ARCH_ARM', 'SCMP_ARCH_AARCH64',
  'SCMP_ARCH_LOONGARCH64', 'SCMP_ARCH_M68K', 'SCMP_ARCH_MIPS', 'SCMP_ARCH_MIPS64', 'SCMP_ARCH_MIPS64N32',
  'SCMP_ARCH_MIPSEL', 'SCMP_ARCH_MIPSEL64', 'SCMP_ARCH_MIPSEL64N32', 'SCMP_ARCH_PPC', 'SCMP_ARCH_PPC64',
  'SCMP_ARCH_PPC64LE', 'SCMP_ARCH_S390', 'SCMP_ARCH_S390X', 'SCMP_ARCH_PARISC', 'SCMP_ARCH_PARISC64',
  'SCMP_ARCH_RISCV64', 'SCMP_ARCH_SH', 'SCMP_ARCH_SHEB',
]);

// How includes/excludes.arches may name the sandbox's architecture (Docker uses Go's names).
const ARCH_ALIASES: Record<SeccompArch, string[]> = {
  x86_64: ['amd64', 'x86_64', 'SCMP_ARCH_X86_64'],
  aarch64: ['arm64', 'aarch64', 'SCMP_ARCH_AARCH64'],
};

const FILTER_FLAGS = new Set([
  'SECCOMP_FILTER_FLAG_TSYNC', 'SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW', 'SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV',
]);

const OPS: Record<string, SeccompArgCheck['op']> = {
  SCMP_CMP_EQ: 'eq', SCMP_CMP_NE: 'ne', SCMP_CMP_LT: 'lt', SCMP_CMP_LE: 'le', SCMP_CMP_GT: 'gt', SCMP_CMP_GE: 'ge', SCMP_CMP_MASKED_EQ: 'masked-eq',
};

const SIMPLE_ACTIONS: Record<string, Exclude<SeccompAction, { errno: number }>> = {
  SCMP_ACT_ALLOW: 'allow', SCMP_ACT_KILL: 'kill-thread', SCMP_ACT_KILL_THREAD: 'kill-thread',
  SCMP_ACT_KILL_PROCESS: 'kill-process', SCMP_ACT_TRAP: 'trap', SCMP_ACT_LOG: 'log',
};
const UNSUPPORTED_ACTIONS = new Set(['SCMP_ACT_TRACE', 'SCMP_ACT_NOTIFY']);

const EPERM = 1;
const MAX_ERRNO = 4095;
const U64_MAX = (1n << 64n) - 1n;

type Json = Record<string, unknown>;

// Errors name the field the way a reader finds it in the JSON: `seccomp.syscalls[3].args[0].op`.
class Reader {
  constructor(private readonly prefix: string) {}

  // 'seccomp' + 'syscalls[0].op' → 'seccomp.syscalls[0].op'; 'seccomp profile `p.json`:' + … → 'seccomp profile `p.json`: syscalls[0].op'.
  name(field: string): string {
    if (field === '') return this.prefix.replace(/:$/, '');
    return this.prefix.endsWith(':') ? `${this.prefix} ${field}` : `${this.prefix}.${field}`;
  }

  invalid(field: string, message: string): SandboxError {
    return new SandboxError('ERR_INVALID_OPTION', `Invalid sandbox option: ${this.name(field)} ${message}`);
  }

  unsupported(field: string, message: string): SandboxError {
    return new SandboxError('ERR_UNSUPPORTED', `${this.name(field)} ${message}`);
  }

  object(value: unknown, field: string, keys: readonly string[]): Json {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw this.invalid(field, `must be an object, got ${describe(value)}`);
    const unknownKey = Object.keys(value).find((k) => !keys.includes(k));
    if (unknownKey !== undefined) throw this.invalid(field, `has an unknown key \`${unknownKey}\` (known: ${keys.join(', ')})`);
    return value as Json;
  }

  string(value: unknown, field: string): string {
    if (typeof value !== 'string' || value === '') throw this.invalid(field, `must be a non-empty string, got ${describe(value)}`);
    return value;
  }

  strings(value: unknown, field: string): string[] {
    if (!Array.isArray(value)) throw this.invalid(field, `must be an array of strings, got ${describe(value)}`);
    return value.map((v, i) => this.string(v, `${field}[${i}]`));
  }

  integer(value: unknown, field: string, min: number, max: number): number {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) throw this.invalid(field, `must be an integer ${min}..${max}, got ${describe(value)}`);
    return value;
  }

  u64(value: unknown, field: string): bigint {
    let big: bigint | undefined;
    if (typeof value === 'bigint') big = value;
    else if (typeof value === 'number' && Number.isInteger(value)) {
      if (!Number.isSafeInteger(value)) throw this.invalid(field, `is above 2^53 and cannot be exact as a JSON number; write it as a decimal string ("${BigInt(value)}" is what was read)`);
      big = BigInt(value);
    } else if (typeof value === 'string' && /^\d{1,20}$/.test(value)) big = BigInt(value);
    if (big === undefined || big < 0n || big > U64_MAX) throw this.invalid(field, `must be an unsigned 64-bit integer, got ${describe(value)}`);
    return big;
  }

  kernel(value: unknown, field: string): [number, number, number] {
    const m = typeof value === 'string' ? /^(\d+)\.(\d+)(?:\.(\d+))?$/.exec(value) : null;
    if (!m) throw this.invalid(field, `must be a kernel version like "4.8", got ${describe(value)}`);
    return [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)];
  }

  /** An optional field: absent or null reads as undefined. */
  optional<T>(json: Json, key: string, read: (value: unknown) => T): T | undefined {
    const value = json[key];
    return value === undefined || value === null ? undefined : read(value);
  }
}

function describe(value: unknown): string {
  if (typeof value === 'string') return `\`${value}\``;
  if (typeof value === 'bigint') return `${value}n`;
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  return typeof value === 'object' ? 'an object' : `${String(value)}`;
}

function compareKernel(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}

const FILTER_KEYS = ['arches', 'caps', 'minKernel'] as const;

function readFilter(reader: Reader, value: unknown, field: string) {
  const json = reader.object(value, field, FILTER_KEYS);
  const caps = reader.optional(json, 'caps', (v) => reader.strings(v, `${field}.caps`));
  caps?.forEach((cap, i) => {
    if (!(CAPABILITY_NAMES as readonly string[]).includes(cap)) throw reader.invalid(`${field}.caps[${i}]`, `is not a capability name (like CAP_SYS_ADMIN), got \`${cap}\``);
  });
  return {
    arches: reader.optional(json, 'arches', (v) => reader.strings(v, `${field}.arches`)) ?? [],
    caps: caps ?? [],
    minKernel: reader.optional(json, 'minKernel', (v) => reader.kernel(v, `${field}.minKernel`)),
  };
}

function readAction(reader: Reader, name: string, errnoRet: number | undefined, field: string, errnoField: string): SeccompAction {
  if (UNSUPPORTED_ACTIONS.has(name)) throw reader.unsupported(field, `${name} is not supported: nsbox installs no tracer or notification listener`);
  if (name === 'SCMP_ACT_ERRNO') return { errno: errnoRet ?? EPERM };
  const simple = SIMPLE_ACTIONS[name];
  if (simple === undefined) throw reader.invalid(field, `must be one of ${[...Object.keys(SIMPLE_ACTIONS), 'SCMP_ACT_ERRNO'].join(', ')}, got \`${name}\``);
  if (errnoRet !== undefined) throw reader.invalid(errnoField, `is only meaningful with SCMP_ACT_ERRNO, not ${name}`);
  return simple;
}

/**
 * @internal Reads a Docker/OCI profile (already parsed JSON) into a policy for `context`.
 * `prefix` starts every error's field name: 'seccomp', or 'seccomp profile `path`:' for a file.
 * Throws SandboxError ERR_INVALID_OPTION naming the first bad field, ERR_UNSUPPORTED for
 * SCMP_ACT_TRACE/NOTIFY and listeners.
 */
export function parseOciProfile(profile: unknown, context: ProfileContext, prefix = 'seccomp'): SeccompPolicy {
  const reader = new Reader(prefix);
  const top = reader.object(profile, '', ['defaultAction', 'defaultErrnoRet', 'architectures', 'archMap', 'flags', 'listenerPath', 'listenerMetadata', 'syscalls']);
  const defaultErrnoRet = reader.optional(top, 'defaultErrnoRet', (v) => reader.integer(v, 'defaultErrnoRet', 0, MAX_ERRNO));
  if (top.defaultAction === undefined) throw reader.invalid('defaultAction', 'is required');
  const defaultAction = readAction(reader, reader.string(top.defaultAction, 'defaultAction'), defaultErrnoRet, 'defaultAction', 'defaultErrnoRet');

  reader.optional(top, 'architectures', (v) => reader.strings(v, 'architectures'))?.forEach((arch, i) => {
    if (!SCMP_ARCHES.has(arch)) throw reader.invalid(`architectures[${i}]`, `is not a SCMP_ARCH_* name, got \`${arch}\``);
  });
  const archMap = reader.optional(top, 'archMap', (v) => {
    if (!Array.isArray(v)) throw reader.invalid('archMap', `must be an array, got ${describe(v)}`);
    return v;
  });
  archMap?.forEach((entry, i) => {
    const json = reader.object(entry, `archMap[${i}]`, ['architecture', 'subArchitectures']);
    const names = [reader.string(json.architecture, `archMap[${i}].architecture`), ...(reader.optional(json, 'subArchitectures', (v) => reader.strings(v, `archMap[${i}].subArchitectures`)) ?? [])];
    names.forEach((arch) => {
      if (!SCMP_ARCHES.has(arch)) throw reader.invalid(`archMap[${i}]`, `names \`${arch}\`, which is not a SCMP_ARCH_* name`);
    });
  });
  reader.optional(top, 'flags', (v) => reader.strings(v, 'flags'))?.forEach((flag, i) => {
    if (!FILTER_FLAGS.has(flag)) throw reader.invalid(`flags[${i}]`, `must be one of ${[...FILTER_FLAGS].join(', ')}, got \`${flag}\``);
  });
  for (const key of ['listenerPath', 'listenerMetadata']) {
    const value = top[key];
    if (value === undefined || value === null || value === '') continue;
    if (typeof value !== 'string') throw reader.invalid(key, `must be a string, got ${describe(value)}`);
    throw reader.unsupported(key, 'is not supported: nsbox has no seccomp notification listener');
  }

  const syscalls = reader.optional(top, 'syscalls', (v) => {
    if (!Array.isArray(v)) throw reader.invalid('syscalls', `must be an array, got ${describe(v)}`);
    return v;
  }) ?? [];

  const rules: SeccompRule[] = [];
  syscalls.forEach((entry, s) => {
    const at = `syscalls[${s}]`;
    const json = reader.object(entry, at, ['names', 'name', 'action', 'errnoRet', 'args', 'comment', 'includes', 'excludes']);
    const names = reader.optional(json, 'names', (v) => reader.strings(v, `${at}.names`));
    const single = reader.optional(json, 'name', (v) => reader.string(v, `${at}.name`));
    if (names !== undefined && single !== undefined) throw reader.invalid(at, 'has both `name` and `names`; use `names`');
    const list = names ?? (single !== undefined ? [single] : undefined);
    if (list === undefined || list.length === 0) throw reader.invalid(`${at}.names`, 'must list at least one system call');
    list.forEach((name, i) => {
      if (!isKnownSyscall(name)) throw reader.invalid(names ? `${at}.names[${i}]` : `${at}.name`, `is not a system call of any architecture, got \`${name}\``);
    });
    if (json.action === undefined) throw reader.invalid(`${at}.action`, 'is required');
    const errnoRet = reader.optional(json, 'errnoRet', (v) => reader.integer(v, `${at}.errnoRet`, 0, MAX_ERRNO));
    const action = readAction(reader, reader.string(json.action, `${at}.action`), errnoRet, `${at}.action`, `${at}.errnoRet`);
    if (json.comment !== undefined && typeof json.comment !== 'string') throw reader.invalid(`${at}.comment`, `must be a string, got ${describe(json.comment)}`);

    const argsJson = reader.optional(json, 'args', (v) => {
      if (!Array.isArray(v)) throw reader.invalid(`${at}.args`, `must be an array, got ${describe(v)}`);
      return v;
    }) ?? [];
    const args = argsJson.map((arg, a): SeccompArgCheck => {
      const where = `${at}.args[${a}]`;
      const argJson = reader.object(arg, where, ['index', 'value', 'valueTwo', 'op']);
      if (argJson.index === undefined) throw reader.invalid(`${where}.index`, 'is required');
      const index = reader.integer(argJson.index, `${where}.index`, 0, 5);
      if (argJson.op === undefined) throw reader.invalid(`${where}.op`, 'is required');
      const opName = reader.string(argJson.op, `${where}.op`);
      const op = OPS[opName];
      if (op === undefined) throw reader.invalid(`${where}.op`, `must be one of ${Object.keys(OPS).join(', ')}, got \`${opName}\``);
      if (argJson.value === undefined) throw reader.invalid(`${where}.value`, 'is required');
      const value = reader.u64(argJson.value, `${where}.value`);
      const valueTwo = reader.optional(argJson, 'valueTwo', (v) => reader.u64(v, `${where}.valueTwo`)) ?? 0n;
      if (op !== 'masked-eq' && valueTwo !== 0n) throw reader.invalid(`${where}.valueTwo`, `is only used by SCMP_CMP_MASKED_EQ, not ${opName}`);
      return op === 'masked-eq' ? { index, op, value, valueTwo } : { index, op, value };
    });

    const includes = reader.optional(json, 'includes', (v) => readFilter(reader, v, `${at}.includes`));
    const excludes = reader.optional(json, 'excludes', (v) => readFilter(reader, v, `${at}.excludes`));
    if (!applies(context, includes, excludes)) return;

    const indexes = args.map((a) => a.index);
    const repeated = indexes.some((index, i) => indexes.indexOf(index) !== i);
    if (repeated) for (const check of args) rules.push({ syscalls: list, action, args: [check] });
    else rules.push(args.length > 0 ? { syscalls: list, action, args } : { syscalls: list, action });
  });
  return { defaultAction, rules };
}

type Filter = ReturnType<typeof readFilter>;

function applies(context: ProfileContext, includes: Filter | undefined, excludes: Filter | undefined): boolean {
  const ours = ARCH_ALIASES[context.arch];
  if (includes) {
    if (includes.arches.length > 0 && !includes.arches.some((a) => ours.includes(a))) return false;
    if (!includes.caps.every((cap) => context.caps.has(cap))) return false;
    if (includes.minKernel && compareKernel(context.kernel, includes.minKernel) < 0) return false;
  }
  if (excludes) {
    if (excludes.arches.some((a) => ours.includes(a))) return false;
    if (excludes.caps.some((cap) => context.caps.has(cap))) return false;
    if (excludes.minKernel && compareKernel(context.kernel, excludes.minKernel) >= 0) return false;
  }
  return true;
}

// Docker's own default profile is about 20 KB.
const MAX_PROFILE_BYTES = 4 * 1024 * 1024;

/**
 * @internal Reads a profile file: a regular file of at most 4 MiB, so a path like /dev/zero or a
 * FIFO cannot hang or exhaust the host. Errors name the file: "seccomp profile `/p.json` ...".
 */
export function readOciProfileFile(path: string): { profile: unknown } {
  const fail = (what: string, cause?: unknown) => new SandboxError('ERR_INVALID_OPTION', `Invalid sandbox option: seccomp profile \`${path}\` ${what}`, { cause });
  let text: string;
  let fd: number | undefined;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw fail('is not a regular file');
    if (stat.size > MAX_PROFILE_BYTES) throw fail(`is larger than ${MAX_PROFILE_BYTES} bytes`);
    text = readFileSync(fd, 'utf8');
  } catch (error) {
    if (error instanceof SandboxError) throw error;
    throw fail(`cannot be read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, error);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  try {
    return { profile: JSON.parse(text) as unknown };
  } catch (error) {
    throw fail(`is not valid JSON: ${(error as Error).message}`, error);
  }
}
