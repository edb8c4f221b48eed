// SPDX-License-Identifier: Apache-2.0
// The image store's lock: one O_EXCL lock file, so processes sharing a store take turns to change its index or collect garbage.

import { open, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SandboxError } from '../errors.js';

// Holders keep the lock for milliseconds (an index write, a lease) or for one garbage collection.
const waitLimitMs = 120_000;
// A lock file that is still empty this long after its creation was left by a crash before its pid was written.
const emptyLockGraceMs = 10_000;

/**
 * @internal Runs `fn` holding `<root>/lock`, created with O_EXCL and holding the owner's pid.
 * A lock whose owner process is gone is removed. (Two waiters that find the same dead owner at
 * the same instant could both remove it; that needs a crash while holding the lock first, and
 * holders keep it for milliseconds.)
 * @throws SandboxError ERR_TIMEOUT when the lock stays taken for two minutes.
 */
export async function withLock<T>(root: string, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
  const path = join(root, 'lock');
  await acquire(path, signal);
  try {
    return await fn();
  } finally {
    await rm(path, { force: true });
  }
}

async function acquire(path: string, signal: AbortSignal | undefined): Promise<void> {
  const deadline = Date.now() + waitLimitMs;
  for (;;) {
    try {
      const handle = await open(path, 'wx', 0o600);
      try {
        await handle.writeFile(String(process.pid));
      } finally {
        await handle.close();
      }
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    if (await ownerIsGone(path)) {
      await rm(path, { force: true });
      continue;
    }
    if (Date.now() > deadline) {
      throw new SandboxError('ERR_TIMEOUT', `The lock ${path} stayed taken for ${waitLimitMs / 1000} s (by pid ${await readOwner(path)})`);
    }
    await sleep(5 + Math.random() * 20, undefined, { signal });
  }
}

async function ownerIsGone(path: string): Promise<boolean> {
  const owner = await readOwner(path);
  if (owner === undefined) return false;
  if (owner === '') {
    const created = await stat(path).then((s) => s.mtimeMs, () => undefined);
    return created !== undefined && Date.now() - created > emptyLockGraceMs;
  }
  return !isAlive(Number(owner));
}

async function readOwner(path: string): Promise<string | undefined> {
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** @internal Whether process `pid` exists (a process of another user counts as alive). */
export function isAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
