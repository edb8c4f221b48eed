// SPDX-License-Identifier: Apache-2.0
// Finds the cgroup hierarchies of this host (v1, v2 or both) from /proc/self/mountinfo.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Which cgroup versions are mounted: only v1 controllers, only v2, both (hybrid), or none. */
export type CgroupMode = 'v1' | 'v2' | 'hybrid' | 'none';

/** One mounted cgroup v1 hierarchy with the controllers bound to it (often one, sometimes co-mounted, e.g. `cpu,cpuacct`). */
export interface CgroupV1Hierarchy {
  /** Where the hierarchy is mounted, e.g. `/sys/fs/cgroup/memory`. */
  readonly mountPoint: string;
  /** The controllers bound to it, e.g. `['cpu', 'cpuacct']`. */
  readonly controllers: readonly string[];
}

/** The cgroup v2 (unified) hierarchy. */
export interface CgroupV2Hierarchy {
  /** The mount point nsbox uses: the first one in mountinfo. */
  readonly mountPoint: string;
  /** Every place the unified hierarchy is mounted (usually just one). */
  readonly mountPoints: readonly string[];
  /** The controllers listed in the root's `cgroup.controllers` (empty on a hybrid host whose controllers are all on v1). */
  readonly controllers: readonly string[];
}

/** The cgroup layout of this host, as {@link detectCgroups} found it. */
export interface CgroupLayout {
  readonly mode: CgroupMode;
  /** The unified hierarchy, or null when cgroup2 is not mounted. */
  readonly v2: CgroupV2Hierarchy | null;
  /** The v1 hierarchies that have at least one controller (named ones such as `name=systemd` are left out). */
  readonly v1: readonly CgroupV1Hierarchy[];
  /** v1 controller name → mount point of its hierarchy, e.g. `{ memory: '/sys/fs/cgroup/memory', cpu: '/sys/fs/cgroup/cpu,cpuacct' }`. */
  readonly v1Controllers: Readonly<Record<string, string>>;
}

// The controllers a v1 mount can carry. Every other super option (rw, name=…, xattr,
// release_agent=…, clone_children, noprefix, …) is a mount flag, not a controller.
const V1_CONTROLLERS = new Set([
  'blkio', 'cpu', 'cpuacct', 'cpuset', 'debug', 'devices', 'freezer', 'hugetlb',
  'memory', 'misc', 'net_cls', 'net_prio', 'perf_event', 'pids', 'rdma',
]);

let cached: CgroupLayout | undefined;

/**
 * Detects the cgroup hierarchies mounted in this process's mount namespace, once, and caches the result.
 *
 * @example
 * ```ts
 * const layout = detectCgroups();
 * if (layout.v2?.controllers.includes('memory')) console.log('cgroup v2 can limit memory');
 * else if (layout.v1Controllers.memory) console.log('memory limits use', layout.v1Controllers.memory);
 * ```
 */
export function detectCgroups(): CgroupLayout {
  cached ??= layoutFromMountinfo(readFileSync('/proc/self/mountinfo', 'utf8'), readRootControllers);
  return cached;
}

/**
 * Builds a {@link CgroupLayout} from the text of a mountinfo file. `readControllers` returns the controllers
 * listed in `cgroup.controllers` at a cgroup2 mount point. Pure apart from that callback; exported for tests.
 *
 * @example
 * ```ts
 * const layout = layoutFromMountinfo(readFileSync('/proc/self/mountinfo', 'utf8'), () => []);
 * ```
 * @internal
 */
export function layoutFromMountinfo(mountinfo: string, readControllers: (mountPoint: string) => string[]): CgroupLayout {
  // A later mount on the same mount point hides the earlier one, so keep only the last per point.
  const visible = new Map<string, { fstype: string; superOptions: string[] }>();
  for (const line of mountinfo.split('\n')) {
    // "36 25 0:31 / /sys/fs/cgroup/memory rw,nosuid shared:15 - cgroup cgroup rw,memory"
    const fields = line.split(' ');
    const separator = fields.indexOf('-', 6);
    if (separator === -1) continue;
    const mountPoint = unescapeMountinfo(fields[4]);
    visible.delete(mountPoint);
    visible.set(mountPoint, { fstype: fields[separator + 1], superOptions: (fields[separator + 3] ?? '').split(',') });
  }

  const v2MountPoints: string[] = [];
  const v1: CgroupV1Hierarchy[] = [];
  const v1Controllers: Record<string, string> = {};
  for (const [mountPoint, { fstype, superOptions }] of visible) {
    if (fstype === 'cgroup2') {
      v2MountPoints.push(mountPoint);
    } else if (fstype === 'cgroup') {
      const controllers = superOptions.filter((option) => V1_CONTROLLERS.has(option));
      if (controllers.length === 0) continue;
      v1.push({ mountPoint, controllers });
      for (const controller of controllers) v1Controllers[controller] ??= mountPoint;
    }
  }

  const v2 = v2MountPoints.length === 0
    ? null
    : { mountPoint: v2MountPoints[0], mountPoints: v2MountPoints, controllers: readControllers(v2MountPoints[0]) };
  const mode: CgroupMode = v2 && v1.length > 0 ? 'hybrid' : v2 ? 'v2' : v1.length > 0 ? 'v1' : 'none';
  return { mode, v2, v1, v1Controllers };
}

// mountinfo escapes space, tab, newline and backslash as three octal digits ("\040").
function unescapeMountinfo(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}

function readRootControllers(mountPoint: string): string[] {
  try {
    return readFileSync(join(mountPoint, 'cgroup.controllers'), 'utf8').split(/\s+/).filter(Boolean);
  } catch {
    // Unreadable means nothing can be enabled below it; creating cgroups will report what is missing.
    return [];
  }
}
