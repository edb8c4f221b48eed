// SPDX-License-Identifier: Apache-2.0
// A sandbox's cgroup on cgroup v1: one directory per hierarchy it needs (memory, pids, cpu, cpuacct).

import { join } from 'node:path';
import { SandboxError } from '../errors.js';
import type { CgroupHandle, CgroupLimits, CgroupStats, CgroupUsage } from './cgroup.js';
import {
  CPU_PERIOD_US, killProcs, listProcs, signalProcs, makeDirAndParent, readKey, readNumber, readOptional, removeDirs, removeDirsSync, waitUntil, writeIfPresent, writeValue,
} from './cgroupfs.js';
import type { CgroupLayout } from './detect.js';

/**
 * A sandbox's cgroup on v1 hierarchies: `<mount>/<parent>/<id>` in the memory, pids and cpuacct
 * hierarchies (whichever are mounted, for stats and limits) and in cpu when a CPU limit is set.
 * Co-mounted controllers (`cpu,cpuacct`) share one directory. Made by {@link createCgroup}.
 */
export class CgroupV1 implements CgroupHandle {
  readonly version = 'v1' as const;
  readonly id: string;
  /** Every directory this cgroup created, one per hierarchy. */
  readonly dirs: readonly string[];
  /** The `cgroup.procs` file of every directory: a process joins the sandbox's cgroup by writing its pid (or "0") to each. */
  readonly procsFiles: readonly string[];
  /**
   * The `tasks` file of every directory. A single-threaded process that writes "0" here moves itself
   * without the write side of the kernel's global cgroup_threadgroup_rwsem, which `cgroup.procs`
   * takes: that lock waits for an RCU grace period (8–22 ms in 1–3% of runs on this VM). The
   * sandbox's first process is single-threaded when it joins, so both files give the same result.
   */
  readonly tasksFiles: readonly string[];
  /** Controller → the directory that holds its files. */
  readonly #dirOf: Readonly<Record<string, string>>;

  /** @internal Use {@link createCgroup}. */
  constructor(id: string, dirOf: Readonly<Record<string, string>>) {
    this.id = id;
    this.#dirOf = dirOf;
    this.dirs = [...new Set(Object.values(dirOf))];
    this.procsFiles = this.dirs.map((dir) => join(dir, 'cgroup.procs'));
    this.tasksFiles = this.dirs.map((dir) => join(dir, 'tasks'));
  }

  stats(): CgroupStats {
    const { memory, pids, cpuacct } = this.#dirOf;
    const oomKills = memory === undefined ? null : readKey(join(memory, 'memory.oom_control'), 'oom_kill');
    return {
      cpuTimeMs: cpuacct === undefined ? 0 : (readNumber(join(cpuacct, 'cpuacct.usage')) ?? 0) / 1e6,
      memoryPeakBytes: memory === undefined ? null : readNumber(join(memory, 'memory.max_usage_in_bytes')),
      // v1 has no pids peak of its own, but kernels since 6.1 give pids.peak to both versions.
      pidsPeak: pids === undefined ? null : readNumber(join(pids, 'pids.peak')),
      oomKilled: (oomKills ?? 0) > 0,
    };
  }

  usage(): CgroupUsage {
    const { memory, pids } = this.#dirOf;
    return {
      memoryBytes: memory === undefined ? null : readNumber(join(memory, 'memory.usage_in_bytes')),
      pids: pids === undefined ? null : readNumber(join(pids, 'pids.current')),
    };
  }

  async freeze(): Promise<void> {
    const { freezer } = this.#dirOf;
    if (freezer === undefined) throw new SandboxError('ERR_UNSUPPORTED', 'Pausing needs the cgroup v1 freezer hierarchy, which is not mounted on this host');
    const state = join(freezer, 'freezer.state');
    writeValue(state, 'FROZEN');
    // The state reads FREEZING until every task has stopped (writing again retries the stragglers).
    await waitUntil(() => (readOptional(state) ?? '').trim() === 'FROZEN' || (writeValue(state, 'FROZEN'), false), () => this.thaw(), freezer);
  }

  signal(signal: NodeJS.Signals, except?: ReadonlySet<number>): void {
    signalProcs(this.procsFiles, signal, except);
  }

  pids(): number[] {
    return listProcs(this.procsFiles);
  }

  thaw(): void {
    const { freezer } = this.#dirOf;
    if (freezer !== undefined) writeIfPresent(join(freezer, 'freezer.state'), 'THAWED');
  }

  kill(): void {
    // A frozen task keeps a SIGKILL pending until it thaws: thaw first, or removal would wait forever.
    this.thaw();
    // v1 has no cgroup.kill; SIGKILL every listed process until no new one shows up.
    killProcs(this.procsFiles);
  }

  remove(): Promise<void> {
    return removeDirs(this.dirs, () => this.kill());
  }

  removeSync(): void {
    removeDirsSync(this.dirs, () => this.kill());
  }
}

/** Creates the v1 directories and writes the limits; on failure removes what it created. @internal */
export function createCgroupV1(layout: CgroupLayout, id: string, parent: string, limits: CgroupLimits, freezable = false): CgroupV1 {
  const mounts = layout.v1Controllers;
  const required = [
    ...(limits.memoryBytes === undefined ? [] : ['memory']),
    ...(limits.pids === undefined ? [] : ['pids']),
    ...(limits.cpus === undefined ? [] : ['cpu']),
  ];
  for (const controller of required) {
    if (mounts[controller] === undefined) {
      throw new SandboxError(
        'ERR_UNSUPPORTED',
        `A ${controller} limit needs the cgroup v1 "${controller}" controller, which is not mounted on this host. ` +
          `Mount it (mount -t cgroup -o ${controller} cgroup /sys/fs/cgroup/${controller}) or use cgroup v2 with ` +
          `"${controller}" enabled.`,
      );
    }
  }
  // memory, pids and cpuacct are always joined when mounted: they give the stats (peak, OOM, CPU time).
  // The freezer only when mounted: without it the sandbox runs, and only pause() says why it cannot.
  const wanted = [...new Set([...required, 'memory', 'pids', 'cpuacct', ...(freezable ? ['freezer'] : [])])].filter((c) => mounts[c] !== undefined);

  const dirOf: Record<string, string> = {};
  const created: string[] = [];
  try {
    for (const controller of wanted) {
      const dir = join(mounts[controller], parent, id);
      if (!created.includes(dir)) {
        if (!makeDirAndParent(dir)) throw new SandboxError('ERR_CGROUP', `Cannot create cgroup \`${dir}\`: it already exists`);
        created.push(dir);
      }
      dirOf[controller] = dir;
    }
    if (limits.memoryBytes !== undefined) {
      writeValue(join(dirOf.memory, 'memory.limit_in_bytes'), String(limits.memoryBytes));
      // memory+swap must be >= the memory limit, so it is written second; equal means no swap use.
      writeIfPresent(join(dirOf.memory, 'memory.memsw.limit_in_bytes'), String(limits.memoryBytes));
    }
    if (limits.pids !== undefined) writeValue(join(dirOf.pids, 'pids.max'), String(limits.pids));
    if (limits.cpus !== undefined) {
      writeValue(join(dirOf.cpu, 'cpu.cfs_period_us'), String(CPU_PERIOD_US));
      writeValue(join(dirOf.cpu, 'cpu.cfs_quota_us'), String(Math.round(limits.cpus * CPU_PERIOD_US)));
    }
  } catch (error) {
    removeDirsSync(created, () => {});
    throw error;
  }
  return new CgroupV1(id, dirOf);
}
