// SPDX-License-Identifier: Apache-2.0
// A few fresh network namespaces made ahead of time, so that creating one is off the start path.
//
// Creating a network namespace is the largest kernel cost of a start (about 0.4 ms inside clone3
// on the benchmark machine). The addon makes them on a libuv worker thread; a sandbox's spawn
// enters one for its clone. Each is handed out once and never reused: the fd is closed right after
// the spawn, and the namespace lives exactly as long as the sandbox. Only without a user namespace
// (root): a sandbox in its own user namespace could not administer one owned by the host's.
// Nothing outlives the process: the pool holds only fds, which the kernel closes on exit.
import { native } from './native/binding.js';

/** How many namespaces are kept ready: enough for a burst of starts, small enough to cost nothing idle. */
const POOL_SIZE = 2;

const ready: number[] = [];
let filling = 0;
/** Set when the kernel refuses (e.g. ENOSPC from user.max_net_namespaces): starts fall back to clone3. */
let disabled = false;

function refill(): void {
  while (!disabled && ready.length + filling < POOL_SIZE) {
    filling++;
    native().createNetns((errno, fd) => {
      filling--;
      if (errno !== null || fd === null) disabled = true;
      else ready.push(fd);
    });
  }
}

/**
 * @internal A fresh network namespace's fd for one spawn, or -1 (a new one is then made in clone3).
 * The caller closes it with {@link releaseNetns} once the spawn has settled.
 */
export function takeNetns(): number {
  return ready.pop() ?? -1;
}

/**
 * @internal Closes a namespace fd from {@link takeNetns} (-1 is ignored) once the spawn has settled,
 * and only then refills the pool: making a namespace holds the kernel's rtnl_lock for most of its
 * 0.3 ms, which the starting child needs too (to bring up loopback), so a refill during the
 * child's setup would only move the wait there.
 */
export function releaseNetns(fd: number): void {
  if (fd >= 0) native().close(fd);
  refill();
}

/** @internal How many fds the pool holds now (for leak checks, which must not count them). */
export function pooledNetnsFds(): readonly number[] {
  return ready;
}
