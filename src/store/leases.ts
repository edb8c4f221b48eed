// SPDX-License-Identifier: Apache-2.0
// Pull leases: the blobs a pull in progress needs, which garbage collection must keep although no reference names them yet.

import { randomBytes } from 'node:crypto';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from './atomic-file.js';
import { isAlive } from './lock.js';

/** @internal `<root>/leases`. */
export function leasesDir(root: string): string {
  return join(root, 'leases');
}

/**
 * @internal Records that this process is pulling `digests` into the store; returns the lease
 * file. Take it under the store lock and before looking for blobs already there, so a
 * concurrent garbage collection either ran before or keeps them.
 */
export async function addLease(root: string, digests: string[]): Promise<string> {
  const path = join(leasesDir(root), `${process.pid}-${randomBytes(6).toString('hex')}.json`);
  await writeFileAtomic(path, JSON.stringify(digests));
  return path;
}

/** @internal Ends a lease. */
export async function removeLease(path: string): Promise<void> {
  await rm(path, { force: true });
}

/**
 * @internal The digests held by leases of live processes; leases of processes that died are
 * removed. Call under the store lock.
 */
export async function leasedDigests(root: string): Promise<Set<string>> {
  const leased = new Set<string>();
  let names: string[];
  try {
    names = await readdir(leasesDir(root));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return leased;
    throw error;
  }
  for (const name of names) {
    const path = join(leasesDir(root), name);
    // Leases are written under the lock that collection holds: anything else here (a `.tmp-*`) was left by a crash.
    const pid = Number(/^(\d+)-[0-9a-f]+\.json$/.exec(name)?.[1]);
    if (!isAlive(pid)) {
      await rm(path, { force: true });
      continue;
    }
    const digests: unknown = JSON.parse(await readFile(path, 'utf8'));
    if (Array.isArray(digests)) for (const digest of digests) leased.add(String(digest));
  }
  return leased;
}
