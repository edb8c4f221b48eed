// SPDX-License-Identifier: Apache-2.0
// What the suite needs to know about the host: tools on PATH, the machine's description, processes.
import { accessSync, constants, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The absolute path of `name` on PATH, or undefined. */
export function which(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    const file = path.join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The machine a report was measured on. */
export interface Machine {
  cpu: string;
  cores: number;
  memoryBytes: number;
  kernel: string;
  cgroups: string;
  node: string;
  date: string;
  /** 1-minute load average when the run started: other work on the machine skews every row. */
  loadAverage: number;
}

export function describeMachine(cgroups: string): Machine {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  return {
    cpu: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? 'unknown',
    cores: cpuinfo.match(/^processor\s*:/gm)?.length ?? os.cpus().length,
    memoryBytes: os.totalmem(),
    kernel: os.release(),
    cgroups,
    node: process.version,
    date: new Date().toISOString(),
    loadAverage: os.loadavg()[0],
  };
}

/** One line of /proc/meminfo in bytes. */
export function meminfo(key: string): number {
  const line = new RegExp(`^${key}:\\s+(\\d+) kB$`, 'm').exec(readFileSync('/proc/meminfo', 'utf8'));
  if (!line) throw new Error(`/proc/meminfo has no ${key}`);
  return Number(line[1]) * 1024;
}

/** VmRSS and Threads of a process, from /proc/PID/status. */
export function processStatus(pid: number | 'self' = 'self'): { rssBytes: number; threads: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? Number.NaN);
  return { rssBytes: field('VmRSS') * 1024, threads: field('Threads') };
}

/**
 * The live descendants of `root` that are in `root`'s own pid namespace, i.e. host processes
 * outside any sandbox (a sandbox's pid 1 and everything under it are in a new pid namespace).
 */
export function hostDescendants(root: number = process.pid): number[] {
  const parentOf = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] !== 'Z') parentOf.set(Number(entry), Number(fields[1]));
    } catch {
      // exited meanwhile
    }
  }
  const pidns = (pid: number) => {
    try {
      return readlinkSync(`/proc/${pid}/ns/pid`);
    } catch {
      return undefined;
    }
  };
  const own = pidns(root);
  const found: number[] = [];
  for (const pid of parentOf.keys()) {
    let ancestor = parentOf.get(pid);
    while (ancestor !== undefined && ancestor !== root && ancestor > 1) ancestor = parentOf.get(ancestor);
    if (ancestor === root && pidns(pid) === own) found.push(pid);
  }
  return found;
}
