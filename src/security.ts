// SPDX-License-Identifier: Apache-2.0
// The default security profile: capabilities, masked and read-only /proc paths, rlimits.
import { readFileSync } from 'node:fs';
import { MountOp, type NativeMountOp } from './native/native.js';

// Docker's default capability set without NET_RAW (as Podman): raw and packet sockets let a
// workload forge traffic, and nothing a sandboxed program ordinarily does needs them.
const DEFAULT_CAPABILITIES = {
  CHOWN: 0, DAC_OVERRIDE: 1, FOWNER: 3, FSETID: 4, KILL: 5, SETGID: 6, SETUID: 7, SETPCAP: 8,
  NET_BIND_SERVICE: 10, SYS_CHROOT: 18, MKNOD: 27, AUDIT_WRITE: 29, SETFCAP: 31,
} as const;

function hostCapabilities(): bigint {
  const status = readFileSync('/proc/self/status', 'utf8');
  const field = (name: string) => BigInt(`0x${/^\s*(\w+)/.exec(status.split(`${name}:`)[1] ?? '0')![1]}`);
  return field('CapPrm') & field('CapBnd');
}

let caps: [number, number] | undefined;

/**
 * @internal Docker's default set, intersected with what this process holds: a capability
 * the host lacks cannot be granted, and asking for it would fail the spawn.
 */
export function defaultCapabilities(): [number, number] {
  if (!caps) {
    let wanted = 0n;
    for (const bit of Object.values(DEFAULT_CAPABILITIES)) wanted |= 1n << BigInt(bit);
    const kept = wanted & hostCapabilities();
    caps = [Number(kept & 0xffffffffn), Number(kept >> 32n)];
  }
  return caps;
}

// As Docker masks them: kernel data a workload has no business reading.
const MASKED = [
  '/proc/asound', '/proc/acpi', '/proc/interrupts', '/proc/kcore', '/proc/keys', '/proc/latency_stats',
  '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi',
];
const READONLY = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

/** @internal Mount steps that hide and freeze /proc paths; they run after /proc is mounted. */
export function procProtection(): NativeMountOp[] {
  return [
    ...MASKED.map((dst) => ({ op: MountOp.Mask, src: '', dst, data: '', flags: 0, mode: 0 })),
    ...READONLY.map((dst) => ({ op: MountOp.Readonly, src: '', dst, data: '', flags: 0, mode: 0 })),
  ];
}

// getrlimit(2) resource numbers (the same on x86_64 and aarch64) and their /proc/self/limits names.
const RESOURCES = {
  cpu: [0, 'Max cpu time'],
  fsize: [1, 'Max file size'],
  data: [2, 'Max data size'],
  stack: [3, 'Max stack size'],
  core: [4, 'Max core file size'],
  nproc: [6, 'Max processes'],
  nofile: [7, 'Max open files'],
  memlock: [8, 'Max locked memory'],
  as: [9, 'Max address space'],
  sigpending: [11, 'Max pending signals'],
  msgqueue: [12, 'Max msgqueue size'],
} as const;

/**
 * The rlimits a sandbox can set (see the `rlimits` option).
 *
 * @example
 * ```ts
 * const rlimits: Partial<Record<RlimitName, number>> = { nofile: 1024, fsize: 64 * 2 ** 20 };
 * ```
 */
export type RlimitName = keyof typeof RESOURCES;

/** @internal */
export const RLIMIT_NAMES = Object.keys(RESOURCES) as RlimitName[];

/** @internal A limit as asked for: Infinity means unlimited. */
export interface RlimitValue {
  soft: number;
  hard: number;
}

// No core dumps (they would land in the sandbox and could be large), and 4096 open files.
// No RLIMIT_NPROC by default: it counts every process of that uid on the host (and never
// applies to root), so the pids cgroup is the per-sandbox limit instead.
const DEFAULTS: Partial<Record<RlimitName, RlimitValue>> = { core: { soft: 0, hard: 0 }, nofile: { soft: 4096, hard: 4096 } };

let hostHard: Map<string, number> | undefined;

// The host process's hard limits (-1: unlimited), read once.
function hardLimit(name: string): number {
  if (!hostHard) {
    hostHard = new Map();
    for (const line of readFileSync('/proc/self/limits', 'utf8').split('\n').slice(1)) {
      const match = /^(.+?)\s{2,}(\S+)\s+(\S+)/.exec(line);
      if (match) hostHard.set(match[1]!, match[3] === 'unlimited' ? -1 : Number(match[3]));
    }
  }
  return hostHard.get(name) ?? -1;
}

/**
 * @internal The [resource, soft, hard] triples for prlimit: the defaults overridden by the
 * caller's, each clamped to the host's hard limit — only a privileged process may raise a
 * hard limit, and asking for more would fail the spawn (as it fails Podman here).
 */
export function rlimitsFor(requested: Partial<Record<RlimitName, RlimitValue | null>>): Array<[number, number, number]> {
  const merged = { ...DEFAULTS, ...requested };
  const triples: Array<[number, number, number]> = [];
  for (const name of RLIMIT_NAMES) {
    const value = merged[name];
    if (!value) continue;
    const [resource, label] = RESOURCES[name];
    const ceiling = hardLimit(label);
    const clamp = (n: number) => (ceiling < 0 ? (n === Infinity ? -1 : n) : Math.min(n, ceiling));
    const hard = clamp(value.hard);
    const soft = hard < 0 ? clamp(value.soft) : Math.min(clamp(value.soft), hard);
    triples.push([resource, soft, hard]);
  }
  return triples;
}
