// SPDX-License-Identifier: Apache-2.0
// One cgroup v1 made ahead of time, off the start path: while a sandbox's child sets itself up (the
// JS thread only waits then), a cgroup with the same limits is made for the next sandbox, which
// takes it by renaming it to its own id. Never used by any process before, so it is as fresh as a
// new one; unused for a second, it is removed.

import { randomBytes } from 'node:crypto';
import type { CgroupV1 } from './v1.js';

/** `<host pid>s<16 hex digits>`: a spare of that host, collected like a sandbox's cgroup if the host dies. */
export const SPARE_CGROUP_PATTERN = /^([1-9][0-9]{0,9})s[0-9a-f]{16}$/;

// Long enough for the gap between two starts of a busy host, short enough not to leave a cgroup
// around when it idles.
const IDLE_MS = 1000;

interface Spare {
  /** The options it was made for (version, limits, freezer). */
  key: string;
  cgroup: CgroupV1;
  timer: NodeJS.Timeout;
}

let spare: Spare | undefined;
let making = false;
let exitHook = false;

/** @internal The spare made for `key`, renamed to `id`; undefined when there is none (or the rename failed). */
export function takeSpareCgroup(key: string, id: string): CgroupV1 | undefined {
  if (spare?.key !== key) return undefined;
  const { cgroup, timer } = spare;
  spare = undefined;
  clearTimeout(timer);
  try {
    return cgroup.renameTo(id);
  } catch {
    cgroup.removeSync();
    return undefined;
  }
}

/**
 * @internal Makes a spare for `key` with `make(name)` once the current JS turn is over (so the
 * start that asked for it goes on first), unless there is one already.
 */
export function prepareSpareCgroup(key: string, make: (name: string) => CgroupV1): void {
  if (making || spare?.key === key) return;
  making = true;
  setImmediate(() => {
    making = false;
    if (spare?.key === key) return;
    discardSpareCgroup();
    let cgroup: CgroupV1;
    try {
      cgroup = make(`${process.pid}s${randomBytes(8).toString('hex')}`);
    } catch {
      return; // Only a head start: the next sandbox makes its own cgroup and reports what fails.
    }
    spare = { key, cgroup, timer: setTimeout(discardSpareCgroup, IDLE_MS).unref() };
    if (!exitHook) {
      exitHook = true;
      process.once('exit', discardSpareCgroup);
    }
  });
}

/** @internal Removes the spare, if any (idle, other limits wanted, or the host exits). */
export function discardSpareCgroup(): void {
  if (!spare) return;
  clearTimeout(spare.timer);
  const { cgroup } = spare;
  spare = undefined;
  cgroup.removeSync();
}
