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

const RLIMIT_CORE = 4;
const RLIMIT_NOFILE = 7;

function hardLimit(name: string): number {
  const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith(name));
  const hard = line?.slice(name.length).trim().split(/\s+/)[1];
  return hard === undefined || hard === 'unlimited' ? -1 : Number(hard);
}

let rlimits: Array<[number, number, number]> | undefined;

/**
 * @internal No core dumps, and at most 4096 open files — clamped to the host's hard limit,
 * because only a privileged process may raise it (Podman fails here by asking for more).
 */
export function defaultRlimits(): Array<[number, number, number]> {
  if (!rlimits) {
    const hardNofile = hardLimit('Max open files');
    const nofile = hardNofile < 0 ? 4096 : Math.min(4096, hardNofile);
    rlimits = [
      [RLIMIT_CORE, 0, 0],
      [RLIMIT_NOFILE, nofile, nofile],
    ];
  }
  return rlimits;
}
