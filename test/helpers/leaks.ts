// SPDX-License-Identifier: Apache-2.0
// What a host process holds that sandboxes could leak: a snapshot before, a list of differences after.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { liveCount } from '../../src/live.js';
import { runDir, scratchDir, stateDir } from '../../src/paths.js';
import { childrenOf, foreignNetnsMount, hostMounts, openFds, ownCgroups, zombieChildren } from './sandbox.js';

/** The state of this process that sandboxes must leave as they found it. */
export interface LeakSnapshot {
  mounts: string[];
  fds: string[];
  children: number[];
  tmpEntries: string[];
}

/** Pids of the live (non-zombie) children of this process. */
export function childProcesses(): number[] {
  return childrenOf((state) => state !== 'Z');
}

/** Host pids of live processes in a cgroup of a sandbox of `hostPid` (`/nsbox/<hostPid>x…` in /proc/PID/cgroup). */
export function processesInSandboxCgroups(hostPid: number): number[] {
  const found: number[] = [];
  const marker = `/nsbox/${hostPid}x`;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cgroup`, 'utf8').includes(marker) && !isZombie(Number(entry))) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

/** Fds described by their targets (`3 -> pipe:[123]`), for messages. */
function describeFds(fds: string[]): string[] {
  return fds.map((fd) => {
    try {
      return `${fd} -> ${readlinkSync(`/proc/self/fd/${fd}`)}`;
    } catch {
      return fd;
    }
  });
}

/** Takes the snapshot; call it after a first sandbox ran, so the addon's own fds and threads exist. */
export function leakSnapshot(): LeakSnapshot {
  return { mounts: hostMounts(), fds: openFds(), children: childProcesses(), tmpEntries: tmpEntries() };
}

// Where nsbox (and the hostile tests' own harness, prefix `nsbox-hostile-`; other test files
// running alongside must use other prefixes, or their work dirs read as this one's leaks) keep temporary
// entries: the run dir (only `scratch` belongs there), `.tmp-*` under the state dir's
// host-base and layer cache, and os.tmpdir().
function tmpEntries(): string[] {
  const list = (dir: string, keep: (name: string) => boolean) => {
    try {
      return readdirSync(dir).filter(keep).map((name) => join(dir, name));
    } catch {
      return [];
    }
  };
  return [
    ...list(runDir(), () => true),
    ...list(join(stateDir(), 'host-base'), (name) => name.includes('.tmp-')),
    ...list(join(stateDir(), 'layers-cache', 'layers'), (name) => name.startsWith('.tmp-')),
    ...list(tmpdir(), (name) => name.startsWith('nsbox-hostile-')),
  ];
}

/** One line per difference from `before`; empty when nothing leaked. */
export function leaksSince(before: LeakSnapshot): string[] {
  const problems: string[] = [];
  // Only mounts where a sandbox's could land: every sandbox mount is made under its root in the
  // run dir's scratch, or names nsbox's own directories. The host's namespace is shared with the
  // rest of the machine, whose mounts come and go (a count would read those as leaks).
  const mounts = hostMounts();
  const ours = (line: string) => {
    const point = line.split(' ')[4] ?? '';
    return !foreignNetnsMount(line) && (point.startsWith(runDir()) || point.startsWith(stateDir()) || line.includes('nsbox'));
  };
  const added = mounts.filter((line) => !before.mounts.includes(line) && ours(line));
  const removed = before.mounts.filter((line) => !mounts.includes(line) && ours(line));
  if (added.length > 0 || removed.length > 0) problems.push(`mounts: new ${JSON.stringify(added.slice(0, 5))}, gone ${JSON.stringify(removed.slice(0, 5))}`);
  const cgroups = ownCgroups();
  if (cgroups.length > 0) problems.push(`cgroups left: ${JSON.stringify(cgroups.slice(0, 6))}${cgroups.length > 6 ? ` and ${cgroups.length - 6} more` : ''}`);
  const zombies = zombieChildren();
  if (zombies.length > 0) problems.push(`zombie children: ${JSON.stringify(zombies)}`);
  const children = childProcesses().filter((pid) => !before.children.includes(pid));
  if (children.length > 0) problems.push(`new child processes: ${JSON.stringify(children)}`);
  const inCgroups = processesInSandboxCgroups(process.pid);
  if (inCgroups.length > 0) problems.push(`processes still in this host's sandbox cgroups: ${JSON.stringify(inCgroups)}`);
  const fds = openFds();
  if (fds.length !== before.fds.length) {
    const extra = describeFds(fds.filter((fd) => !before.fds.includes(fd)));
    problems.push(`fds: ${before.fds.length} before, ${fds.length} after; new: ${JSON.stringify(extra.slice(0, 10))}`);
  }
  if (liveCount() !== 0) problems.push(`${liveCount()} sandboxes still tracked as live`);
  const scratch = readdirSync(scratchDir());
  if (scratch.length > 0) problems.push(`scratch dir ${scratchDir()} not empty: ${JSON.stringify(scratch)}`);
  const temp = tmpEntries().filter((name) => !before.tmpEntries.includes(name));
  if (temp.length > 0) problems.push(`new temp entries: ${JSON.stringify(temp)}`);
  return problems;
}

/**
 * Waits up to `ms` for {@link leaksSince} to come back empty (a pipe's close or a kworker's
 * rmdir may lag the promise by a moment) and returns the last list.
 */
export async function settledLeaksSince(before: LeakSnapshot, ms = 3000): Promise<string[]> {
  const end = Date.now() + ms;
  for (;;) {
    const problems = leaksSince(before);
    if (problems.length === 0 || Date.now() > end) return problems;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
