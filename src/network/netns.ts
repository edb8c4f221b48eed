// SPDX-License-Identifier: Apache-2.0
// Named network namespaces under the run dir, made and removed by the addon (no `ip netns`).
import { mkdirSync, readdirSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { SandboxError } from '../errors.js';
import { native } from '../native/binding.js';
import { runDir } from '../paths.js';

/** @internal Where sandboxes' network namespaces are bound: `<run dir>/netns/<sandbox id>`. */
export function netnsDir(): string {
  return join(runDir(), 'netns');
}

function errnoName(errno: number): string {
  return Object.entries(constants.errno).find(([, value]) => value === errno)?.[0] ?? `errno ${errno}`;
}

/** @internal Creates the sandbox's network namespace (loopback only, down) and returns its path. */
export function createNetns(id: string): string {
  const dir = netnsDir();
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const path = join(dir, id);
  const failure = native().netnsCreate(dir, path);
  if (failure) {
    const code = failure.errno === constants.errno.EPERM ? 'ERR_PERMISSION' : 'ERR_NETWORK';
    throw new SandboxError(code, `Could not create the network namespace ${path}: ${failure.syscall}: ${errnoName(failure.errno)}`);
  }
  return path;
}

/** @internal Removes a namespace file (the namespace itself goes when no process is left in it). Idempotent. */
export function removeNetns(path: string): void {
  const failure = native().netnsRemove(path);
  if (failure) throw new SandboxError('ERR_NETWORK', `Could not remove the network namespace ${path}: ${failure.syscall}: ${errnoName(failure.errno)}`);
}

/** @internal The sandbox ids that have a namespace file. */
export function listNetns(): string[] {
  try {
    return readdirSync(netnsDir());
  } catch {
    return [];
  }
}

/** @internal Deletes a host interface by name; false when there was none. */
export function deleteLink(name: string): boolean {
  const status = native().deleteLink(name);
  if (status === 0) return true;
  if (status === -constants.errno.ENODEV) return false;
  throw new SandboxError('ERR_NETWORK', `Could not delete the interface ${name}: ${errnoName(-status)}`);
}
