// SPDX-License-Identifier: Apache-2.0
// A sandbox's cgroup on cgroup v2: one directory in the unified hierarchy, handed to CLONE_INTO_CGROUP.

import { join } from 'node:path';
import { SandboxError } from '../errors.js';
import type { CgroupHandle, CgroupLimits, CgroupStats, CgroupUsage } from './cgroup.js';
import {
  CPU_PERIOD_US, killProcs, listProcs, signalProcs, makeDir, readKey, readNumber, readOptional, removeDirs, removeDirsSync, waitUntil, writeIfPresent, writeValue,
} from './cgroupfs.js';
import type { CgroupLayout } from './detect.js';

/** The controllers joined for their stats whenever available (memory.peak, memory.events, pids.peak). */
const STATS_CONTROLLERS = ['memory', 'pids'];

/** A sandbox's cgroup in the unified hierarchy: `<mount>/<parent>/<id>`. Made by {@link createCgroup}. */
export class CgroupV2 implements CgroupHandle {
  readonly version = 'v2' as const;
  readonly id: string;
  /** The cgroup directory: open it as the `cgroup` fd of clone3(CLONE_INTO_CGROUP). */
  readonly dir: string;
  /** `<dir>/cgroup.procs`, for kernels without CLONE_INTO_CGROUP (before 5.7). */
  readonly procsFiles: readonly string[];

  /** @internal Use {@link createCgroup}. */
  constructor(id: string, dir: string) {
    this.id = id;
    this.dir = dir;
    this.procsFiles = [join(dir, 'cgroup.procs')];
  }

  stats(): CgroupStats {
    return {
      cpuTimeMs: (readKey(join(this.dir, 'cpu.stat'), 'usage_usec') ?? 0) / 1000,
      memoryPeakBytes: readNumber(join(this.dir, 'memory.peak')),
      pidsPeak: readNumber(join(this.dir, 'pids.peak')),
      oomKilled: (readKey(join(this.dir, 'memory.events'), 'oom_kill') ?? 0) > 0,
    };
  }

  usage(): CgroupUsage {
    return { memoryBytes: readNumber(join(this.dir, 'memory.current')), pids: readNumber(join(this.dir, 'pids.current')) };
  }

  async freeze(): Promise<void> {
    writeValue(join(this.dir, 'cgroup.freeze'), '1');
    // cgroup.events says `frozen 1` once every task has stopped.
    await waitUntil(() => readKey(join(this.dir, 'cgroup.events'), 'frozen') === 1, () => this.thaw(), this.dir);
  }

  signal(signal: NodeJS.Signals, except?: ReadonlySet<number>): void {
    signalProcs(this.procsFiles, signal, except);
  }

  pids(): number[] {
    return listProcs(this.procsFiles);
  }

  thaw(): void {
    writeIfPresent(join(this.dir, 'cgroup.freeze'), '0');
  }

  kill(): void {
    this.thaw();
    // cgroup.kill (Linux 5.14+) kills the whole cgroup atomically, forks in flight included.
    if (!writeIfPresent(join(this.dir, 'cgroup.kill'), '1')) killProcs(this.procsFiles);
  }

  remove(): Promise<void> {
    return removeDirs([this.dir], () => this.kill());
  }

  removeSync(): void {
    removeDirsSync([this.dir], () => this.kill());
  }
}

/** Creates the v2 directory, enabling the controllers it needs on the way, and writes the limits. @internal */
export function createCgroupV2(layout: CgroupLayout, id: string, parent: string, limits: CgroupLimits): CgroupV2 {
  const v2 = layout.v2;
  if (v2 === null) {
    throw new SandboxError(
      'ERR_UNSUPPORTED',
      'cgroup v2 is not mounted on this host (no cgroup2 entry in /proc/self/mountinfo). Mount it or use version "v1".',
    );
  }
  const required = [
    ...(limits.memoryBytes === undefined ? [] : ['memory']),
    ...(limits.pids === undefined ? [] : ['pids']),
    ...(limits.cpus === undefined ? [] : ['cpu']),
  ];
  for (const controller of required) {
    if (!v2.controllers.includes(controller)) {
      throw new SandboxError(
        'ERR_UNSUPPORTED',
        `A ${controller} limit needs the cgroup v2 "${controller}" controller, but ${v2.mountPoint} does not offer it ` +
          `(its cgroup.controllers lists: ${v2.controllers.join(' ') || 'nothing'}). Enable "${controller}" for ` +
          `cgroup v2 (on a hybrid host boot with cgroup_no_v1=${controller} or systemd.unified_cgroup_hierarchy=1; ` +
          'in a container, delegate it to this cgroup), or use version "v1".',
      );
    }
  }
  const wanted = [...new Set([...required, ...STATS_CONTROLLERS.filter((c) => v2.controllers.includes(c))])];

  // A child only gets the controllers its parent enables in cgroup.subtree_control. The root's is shared
  // with the rest of the host, so it is touched only for a parent we just made, or for a limit that the
  // existing parent cannot enforce otherwise.
  const parentDir = join(v2.mountPoint, parent);
  const parentIsNew = makeDir(parentDir);
  const parentHas = parentIsNew ? [] : readList(join(parentDir, 'cgroup.controllers'));
  enableControllers(v2.mountPoint, parentIsNew ? wanted : required.filter((c) => !parentHas.includes(c)), required);
  enableControllers(parentDir, wanted, required);

  const dir = join(parentDir, id);
  if (!makeDir(dir)) throw new SandboxError('ERR_CGROUP', `Cannot create cgroup \`${dir}\`: it already exists`);
  try {
    if (limits.memoryBytes !== undefined) {
      writeValue(join(dir, 'memory.max'), String(limits.memoryBytes));
      // No swap: the memory limit is the whole budget, as on v1 with memsw.
      writeIfPresent(join(dir, 'memory.swap.max'), '0');
    }
    if (limits.pids !== undefined) writeValue(join(dir, 'pids.max'), String(limits.pids));
    if (limits.cpus !== undefined) {
      writeValue(join(dir, 'cpu.max'), `${Math.round(limits.cpus * CPU_PERIOD_US)} ${CPU_PERIOD_US}`);
    }
  } catch (error) {
    removeDirsSync([dir], () => {});
    throw error;
  }
  return new CgroupV2(id, dir);
}

/** Enables controllers in `<dir>/cgroup.subtree_control`; failing to enable one that is not `required` is fine. */
function enableControllers(dir: string, controllers: readonly string[], required: readonly string[]): void {
  const file = join(dir, 'cgroup.subtree_control');
  const enabled = readList(file);
  for (const controller of controllers) {
    if (enabled.includes(controller)) continue;
    try {
      writeValue(file, `+${controller}`);
    } catch (error) {
      // Only wanted for its stats: run without them rather than fail the sandbox.
      if (required.includes(controller)) throw error;
    }
  }
}

function readList(path: string): string[] {
  return (readOptional(path) ?? '').split(/\s+/).filter(Boolean);
}
