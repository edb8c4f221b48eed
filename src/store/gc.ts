// SPDX-License-Identifier: Apache-2.0
// Garbage collection of the image store: removes blobs and unpacked layers no reference (or pull in progress) needs.

import { chmod, lstat, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { digestHex } from '../image/digest.js';
import { layerCacheDir } from '../image/layer-store.js';
import { tempOwnerPid } from '../image/temp-name.js';
import { blobsDir } from './blob-writer.js';
import { leasedDigests, leasesDir } from './leases.js';
import { isAlive } from './lock.js';
import { readReferences } from './references.js';
import { readStoredImage } from './stored-image.js';

/**
 * What {@link ImageStore.gc} removed.
 *
 * @example
 * ```ts
 * const { blobs, layers } = await store.gc();
 * console.log(`removed ${blobs} blobs and ${layers} unpacked layers`);
 * ```
 */
export interface GcResult {
  /** Blobs removed. */
  blobs: number;
  /** Unpacked layer directories removed (rootful and rootless forms counted apart). */
  layers: number;
}

// Temp entries whose maker cannot be judged (another pid namespace, an older name form) and
// untouched this long were left by a process that died: transfers time out after minutes of
// silence, and every written chunk updates a temp blob's mtime.
const abandonedAfterMs = 3600_000;

/**
 * @internal Removes what nothing needs: blobs that are neither part of a referenced image nor
 * leased by a pull in progress, unpacked layers of no referenced image, and abandoned temp
 * files. Call under the store lock. A layer still mounted by a running sandbox of a removed
 * image is removed too: remove images only when nothing runs from them. A referenced image
 * that lost a blob fails the collection (ERR_IMAGE_NOT_FOUND) rather than being collected.
 */
export async function collectGarbage(root: string): Promise<GcResult> {
  const keepBlobs = new Set<string>();
  for (const digest of await leasedDigests(root)) keepBlobs.add(digest);
  const keepLayers = new Set<string>();
  const records = new Map([...(await readReferences(root)).values()].map((record) => [record.digest, record]));
  for (const record of records.values()) {
    const image = await readStoredImage(root, record);
    keepBlobs.add(record.digest).add(image.manifest.config.digest);
    for (const layer of image.layers) {
      keepBlobs.add(layer.digest);
      keepLayers.add(digestHex(layer.diffId, 'diff_id'));
    }
  }
  await removeAbandonedTemps(root);
  let blobs = 0;
  for (const name of await entries(blobsDir(root))) {
    if (await removeIfUnused(join(blobsDir(root), name), keepBlobs.has(`sha256:${name}`))) blobs++;
  }
  let layers = 0;
  for (const dir of [layerCacheDir(root, false), layerCacheDir(root, true)]) {
    for (const name of await entries(dir)) {
      if (await removeIfUnused(join(dir, name), keepLayers.has(name))) layers++;
    }
  }
  return { blobs, layers };
}

/**
 * @internal Removes the temp files and directories (`.tmp-*`) that crashed processes left in
 * the store: the index's and leases' (atomic writes), blobs' (downloads) and layer caches'
 * (unpacks). One whose maker is a process of this pid namespace goes once that process is gone;
 * one that cannot be judged so, once an hour old. Safe without the lock: nobody owns them.
 * Returns how many went.
 */
export async function removeAbandonedTemps(root: string): Promise<number> {
  let removed = 0;
  for (const dir of [root, leasesDir(root), blobsDir(root), layerCacheDir(root, false), layerCacheDir(root, true)]) {
    for (const name of await entries(dir)) {
      if (!name.startsWith('.tmp-') || !(await isAbandoned(join(dir, name), tempOwnerPid(name)))) continue;
      await removeTree(join(dir, name));
      removed++;
    }
  }
  return removed;
}

async function isAbandoned(path: string, pid: number | undefined): Promise<boolean> {
  if (pid !== undefined) return pid !== process.pid && !isAlive(pid);
  const stats = await lstat(path).catch(() => undefined);
  return stats !== undefined && Date.now() - stats.mtimeMs > abandonedAfterMs;
}

// Temp entries are left to removeAbandonedTemps (and not counted); others go when not kept.
async function removeIfUnused(path: string, kept: boolean): Promise<boolean> {
  if (path.split('/').at(-1)!.startsWith('.tmp-') || kept) return false;
  await removeTree(path);
  return true;
}

async function entries(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

// A layer unpacked without root keeps the image's modes, read-only directories included:
// make directories writable and try again.
async function removeTree(path: string): Promise<void> {
  try {
    await rm(path, { recursive: true, force: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EACCES') throw error;
    await makeDirsWritable(path);
    await rm(path, { recursive: true, force: true });
  }
}

async function makeDirsWritable(path: string): Promise<void> {
  const stats = await lstat(path);
  if (!stats.isDirectory()) return;
  await chmod(path, 0o700);
  for (const name of await readdir(path)) await makeDirsWritable(join(path, name));
}
