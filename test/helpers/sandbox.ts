// SPDX-License-Identifier: Apache-2.0
// Shared bits for tests that run real sandboxes: the probe image and host-side observations.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { failStageKey } from '../../src/options.js';
import type { SandboxOptions } from '../../src/index.js';
import { probeRootfs } from './probe-image.js';
import { netnsDir } from '../../src/network/netns.js';

export { probeRootfs };

/** Options with a forced setup-stage failure (the addon's test hook). */
export function withFailStage(options: SandboxOptions, stage: number): SandboxOptions {
  return Object.assign({ ...options }, { [failStageKey]: stage });
}

/** Attack commands in the probe refuse to run unless this env names the sandbox's own hostname. */
export function guardEnv(hostname: string): Record<string, string> {
  return { PROBE_GUARD_HOSTNAME: hostname };
}

/** Host pids of every process whose pid namespace is `pidns` (e.g. 'pid:[4026532]'). */
export function processesInPidNamespace(pidns: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/ns/pid`) === pidns) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** Children of this process whose state (R, S, Z, …) passes `keep`. */
export function childrenOf(keep: (state: string) => boolean): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (keep(fields[0]!) && Number(fields[1]) === process.pid) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** Zombie children of this process. */
export function zombieChildren(): number[] {
  return childrenOf((state) => state === 'Z');
}

/** Open fds of this process. */
export function openFds(): string[] {
  // Not network-namespace fds: the bridged-network tests of another file create and drop them.
  return readdirSync('/proc/self/fd').filter((fd) => !isNetnsFd(fd));
}

/** Whether an fd of this process refers to a network namespace. */
export function isNetnsFd(fd: string): boolean {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`).startsWith('net:[');
  } catch {
    return false; // closed meanwhile (readdirSync's own directory fd, for one)
  }
}

/**
 * A mount line that is no sandbox's of this process: the shared network-namespace directory (a
 * permanent mount point, as iproute2's /run/netns) and the namespaces other processes' bridged
 * sandboxes hold in it (network tests running at the same time).
 */
export function foreignNetnsMount(line: string): boolean {
  const point = line.split(' ')[4] ?? '';
  const dir = netnsDir();
  return point === dir || (point.startsWith(`${dir}/`) && !point.slice(dir.length + 1).startsWith(`${process.pid}x`));
}

/** Mount lines of this process's mount namespace. */
export function hostMounts(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').trim().split('\n');
}

/** cgroup directories (any hierarchy, v1 or v2) that belong to sandboxes of this process. */
export function ownCgroups(): string[] {
  const found: string[] = [];
  for (const root of ['/sys/fs/cgroup', ...readdirSync('/sys/fs/cgroup').map((d) => `/sys/fs/cgroup/${d}`)]) {
    try {
      for (const name of readdirSync(`${root}/nsbox`)) if (name.startsWith(`${process.pid}x`)) found.push(`${root}/nsbox/${name}`);
    } catch {
      // no nsbox parent in this hierarchy
    }
  }
  return found;
}
