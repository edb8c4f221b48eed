// SPDX-License-Identifier: Apache-2.0
// The sandboxes this process runs: exit delivery by pid, and killing them all when the host exits.
import { constants } from 'node:os';
import type { SandboxCgroup } from './cgroup/cgroup.js';
import { native } from './native/binding.js';
import type { NativeExit } from './native/native.js';

interface LiveSandbox {
  pidfd: number;
  cgroup: SandboxCgroup | undefined;
  onExit: (exit: NativeExit) => void;
}

const live = new Map<number, LiveSandbox>();
let installed = false;

function install(): void {
  if (installed) return;
  installed = true;
  native().setExitHandler((exit) => live.get(exit.pid)?.onExit(exit));
  // If the host exits with sandboxes running, they go with it (the parent-death signal also
  // covers a crash; what a crash leaves in cgroupfs is collected on the next start).
  process.once('exit', () => {
    for (const sandbox of live.values()) native().kill(sandbox.pidfd, constants.signals.SIGKILL);
    for (const sandbox of live.values()) sandbox.cgroup?.removeSync();
  });
}

/** @internal Starts watching a spawned sandbox; the promise settles when its pid 1 is reaped. */
export function track(pid: number, pidfd: number, syncFd: number, cgroup: SandboxCgroup | undefined): Promise<NativeExit> {
  install();
  return new Promise((resolve) => {
    live.set(pid, { pidfd, cgroup, onExit: resolve });
    native().watchExit(pid, pidfd, syncFd);
  });
}

/** @internal The sandbox is fully cleaned up: forget it. */
export function untrack(pid: number): void {
  live.delete(pid);
}

/** @internal How many sandboxes this process is running (for tests and leak checks). */
export function liveCount(): number {
  return live.size;
}
