// SPDX-License-Identifier: Apache-2.0
// Per-sandbox cgroups: create one with limits (v1 or v2), read its stats, kill it, remove it, collect leftovers.

import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { SandboxError } from '../errors.js';
import { isProcessAlive, SANDBOX_ID_PATTERN } from '../sandbox-id.js';
import { killProcs, rmdirPatientlySync, writeIfPresent } from './cgroupfs.js';
import { detectCgroups } from './detect.js';
import { CgroupV1, createCgroupV1 } from './v1.js';
import { CgroupV2, createCgroupV2 } from './v2.js';

export { CgroupV1 } from './v1.js';
export { CgroupV2 } from './v2.js';

/** The directory under each hierarchy root that holds nsbox's cgroups, unless another `parent` is given. */
export const DEFAULT_CGROUP_PARENT = 'nsbox';

/** Resource limits of one sandbox. Every field is optional; a missing one is not limited. */
export interface CgroupLimits {
  /** Memory limit in bytes (swap is not allowed on top of it). */
  memoryBytes?: number;
  /** Maximum number of processes and threads. */
  pids?: number;
  /** CPU time as fractional cores, e.g. 0.5 for half a core (a quota per 100 ms period). */
  cpus?: number;
}

/** What {@link createCgroup} needs. */
export interface CgroupOptions {
  /** The sandbox's id, `<host pid>x<16 hex digits>`: use {@link newCgroupId}. The host pid lets a later run collect leftovers. */
  id: string;
  /** The directory under each hierarchy root to create the cgroup in. Default {@link DEFAULT_CGROUP_PARENT}. */
  parent?: string;
  /** Which cgroup version to use, chosen by the caller from {@link detectCgroups}. */
  version: 'v1' | 'v2';
  /** Limits to write before any process joins. */
  limits?: CgroupLimits;
  /** Make it freezable (pause/resume): on v1 this joins the freezer hierarchy too. v2 always can. */
  freezable?: boolean;
}

/** What a sandbox's processes use now, read from its cgroup. */
export interface CgroupUsage {
  /** Memory charged now (page cache included), in bytes; null without the memory controller. */
  memoryBytes: number | null;
  /** Processes and threads now; null without the pids controller. */
  pids: number | null;
}

/** What a sandbox's processes used, read from its cgroup. */
export interface CgroupStats {
  /** CPU time (user + system) of every process that ran in the cgroup, in milliseconds. */
  cpuTimeMs: number;
  /** Peak memory use in bytes; null without the memory controller (or on a v2 kernel without memory.peak, before 5.19). */
  memoryPeakBytes: number | null;
  /** Peak number of tasks; null without the pids controller or pids.peak (before 6.1). */
  pidsPeak: number | null;
  /** True when the kernel's OOM killer killed a process of this cgroup. */
  oomKilled: boolean;
}

/** The operations both cgroup versions offer. */
export interface CgroupHandle {
  /** The sandbox id this cgroup was created for. */
  readonly id: string;
  /** The `cgroup.procs` files a process writes its pid (or "0") to in order to join the cgroup. */
  readonly procsFiles: readonly string[];
  /** Reads the current stats. Missing files give null (or 0 CPU time), never an error. */
  stats(): CgroupStats;
  /** Current memory and task counts. */
  usage(): CgroupUsage;
  /**
   * Freezes every process of the cgroup and resolves once they all are frozen.
   * @throws SandboxError ERR_UNSUPPORTED when the cgroup was not made freezable (v1 without the freezer).
   */
  freeze(): Promise<void>;
  /** Thaws a frozen cgroup; does nothing to one that is not frozen. */
  thaw(): void;
  /** Sends `signal` to every process in the cgroup but those in `except`, once. */
  signal(signal: NodeJS.Signals, except?: ReadonlySet<number>): void;
  /** The pids of its processes now. */
  pids(): number[];
  /** SIGKILLs every process in the cgroup. Does nothing once the cgroup is removed. */
  kill(): void;
  /**
   * Removes the cgroup's directories (never the shared parent). Waits up to about 2 s for a cgroup to
   * become free after its last process exited, then kills what is left and waits again. Idempotent.
   * @throws SandboxError ERR_CGROUP when a directory stays busy.
   */
  remove(): Promise<void>;
  /** Kills the processes and removes the directories without awaiting, for process-exit handlers. Best effort, never throws. */
  removeSync(): void;
}

/** A sandbox's cgroup: narrow on `version` to get `dir` (v2) or `dirs` (v1). */
export type SandboxCgroup = CgroupV1 | CgroupV2;

/** `<host pid>x<16 hex digits>`: the host pid is the process that owns the cgroup. */

/**
 * Makes a fresh sandbox id that records this process as its owner, for {@link collectLeftoverCgroups}.
 *
 * @example
 * ```ts
 * newCgroupId(); // '48213x9f3c0a7be41d2c55'
 * ```
 */
export function newCgroupId(): string {
  return `${process.pid}x${randomBytes(8).toString('hex')}`;
}

/**
 * Creates a sandbox's cgroup with its limits written, ready for the sandbox's first process to join.
 * Nothing is left behind when it throws.
 *
 * @throws SandboxError ERR_INVALID_OPTION for a malformed `id` or `parent`; ERR_UNSUPPORTED when a limit's
 * controller is not available in the chosen version; ERR_PERMISSION when the directories cannot be created;
 * ERR_CGROUP for other cgroupfs failures.
 *
 * @example
 * ```ts
 * const cgroup = createCgroup({ id: newCgroupId(), version: 'v2', limits: { memoryBytes: 256 * 2 ** 20, pids: 64, cpus: 1 } });
 * // … spawn with clone3(CLONE_INTO_CGROUP) into cgroup.dir, wait for exit …
 * console.log(cgroup.stats());
 * await cgroup.remove();
 * ```
 */
export function createCgroup(options: CgroupOptions): SandboxCgroup {
  const { id, parent = DEFAULT_CGROUP_PARENT, version, limits = {}, freezable = false } = options;
  if (!SANDBOX_ID_PATTERN.test(id)) {
    throw new SandboxError('ERR_INVALID_OPTION', `Invalid cgroup id "${id}": expected <host pid>x<16 hex digits>, as newCgroupId() makes`);
  }
  if (!isDirName(parent)) {
    throw new SandboxError('ERR_INVALID_OPTION', `Invalid cgroup parent "${parent}": expected one directory name`);
  }
  const layout = detectCgroups();
  return version === 'v1' ? createCgroupV1(layout, id, parent, limits, freezable) : createCgroupV2(layout, id, parent, limits);
}

/**
 * Removes the cgroups that crashed host processes left behind under `<hierarchy root>/<parent>` in every
 * v1 and v2 hierarchy: directories named like a sandbox id whose host pid is no longer alive. Processes
 * still inside are SIGKILLed first. Anything else under `parent` is left alone, and so is a directory
 * that cannot be removed (it is tried again on the next call). Blocks up to about 2 s per busy directory.
 *
 * Pid reuse is not detected: a leftover whose host pid now belongs to another process waits for that one to exit.
 *
 * @returns The number of directories removed (a v1 sandbox has one per hierarchy).
 *
 * @example
 * ```ts
 * const removed = collectLeftoverCgroups();
 * if (removed > 0) console.warn(`removed ${removed} leftover sandbox cgroups`);
 * ```
 */
export function collectLeftoverCgroups(parent: string = DEFAULT_CGROUP_PARENT): number {
  if (!isDirName(parent)) {
    throw new SandboxError('ERR_INVALID_OPTION', `Invalid cgroup parent "${parent}": expected one directory name`);
  }
  const layout = detectCgroups();
  const roots = [...layout.v1.map((hierarchy) => hierarchy.mountPoint), ...(layout.v2 ? [layout.v2.mountPoint] : [])];
  let removed = 0;
  for (const root of roots) {
    const parentDir = join(root, parent);
    let names: string[];
    try {
      names = readdirSync(parentDir);
    } catch {
      continue; // No such parent in this hierarchy (or not ours to read).
    }
    for (const name of names) {
      const owner = SANDBOX_ID_PATTERN.exec(name)?.[1];
      if (owner === undefined || isProcessAlive(Number(owner))) continue;
      const dir = join(parentDir, name);
      try {
        // A host that died with its sandbox paused left it frozen: frozen tasks keep a SIGKILL pending until thawed.
        writeIfPresent(join(dir, 'freezer.state'), 'THAWED');
        writeIfPresent(join(dir, 'cgroup.freeze'), '0');
        killProcs([join(dir, 'cgroup.procs')]);
        if (rmdirPatientlySync(dir)) removed++;
      } catch {
        // Best effort: what cannot be removed now is tried again on the next call.
      }
    }
  }
  return removed;
}

function isDirName(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !name.includes('/') && !name.includes('\0');
}

