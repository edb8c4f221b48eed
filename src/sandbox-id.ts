// SPDX-License-Identifier: Apache-2.0
// Sandbox ids name their owner: `<host pid>x<16 hex digits>`. What a crashed host left behind
// (cgroups, network objects) is found by ids whose host process is gone.

/** @internal `<host pid>x<16 hex digits>`; group 1 is the owning host's pid. */
export const SANDBOX_ID_PATTERN = /^([1-9][0-9]{0,9})x[0-9a-f]{16}$/;

/** @internal Whether a process with this pid exists (EPERM: alive, just not ours to signal). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}
