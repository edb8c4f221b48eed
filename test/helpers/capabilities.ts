// SPDX-License-Identifier: Apache-2.0
// What the test host allows (root, unprivileged user namespaces, cgroup v1), and a prefix to drop to nobody.
import { readFileSync } from 'node:fs';

/** The uid/gid of `nobody` used by {@link runAsNobody}. */
export const NOBODY_UID = 65534;
export const NOBODY_GID = 65534;

function readProc(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** Whether this process runs with effective uid 0. */
export function isRoot(): boolean {
  return process.geteuid?.() === 0;
}

/**
 * Whether an unprivileged user may create a user namespace: the Debian/Ubuntu switch
 * kernel.unprivileged_userns_clone (when present) is on, user.max_user_namespaces > 0,
 * and AppArmor's restriction (kernel.apparmor_restrict_unprivileged_userns, when present) is off.
 */
export function hasUnprivilegedUserns(): boolean {
  const clone = readProc('/proc/sys/kernel/unprivileged_userns_clone');
  if (clone !== undefined && clone !== '1') return false;
  const apparmor = readProc('/proc/sys/kernel/apparmor_restrict_unprivileged_userns');
  if (apparmor !== undefined && apparmor !== '0') return false;
  const max = Number(readProc('/proc/sys/user/max_user_namespaces') ?? '0');
  return Number.isFinite(max) && max > 0;
}

/** Whether any cgroup v1 hierarchy is mounted (filesystem type `cgroup`, not `cgroup2`). */
export function cgroupV1Available(): boolean {
  const mounts = readProc('/proc/self/mounts') ?? '';
  return mounts.split('\n').some((line) => line.split(' ')[2] === 'cgroup');
}

/**
 * The argv that runs `args` as nobody (65534:65534, no supplementary groups) through
 * util-linux setpriv; the caller must be root. The environment is passed on unchanged.
 *
 * @example
 * const [file, ...rest] = runAsNobody([process.execPath, 'script.js']);
 * spawn(file, rest);
 */
export function runAsNobody(args: readonly string[]): string[] {
  return ['setpriv', `--reuid=${NOBODY_UID}`, `--regid=${NOBODY_GID}`, '--clear-groups', '--', ...args];
}
