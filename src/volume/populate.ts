// SPDX-License-Identifier: Apache-2.0
// Populating an empty named volume from the image, as Docker does: what the image has at the
// mount's target is copied into the volume (files, modes, owners, times) before it is mounted.
import { lstatSync, readdirSync, renameSync, rmSync, statSync, type Stats } from 'node:fs';
import { chmod, copyFile, lchown, lutimes, mkdir, mkdtemp, readdir, readlink, symlink } from 'node:fs/promises';
import { constants } from 'node:fs';
import { dirname, join } from 'node:path';
import { isRoot } from '../paths.js';
import { getXattr, mknod } from '../image/native-fs.js';

/** The layers' directories that make up one directory of the merged image, top layer first. */
type Sources = string[];

function isWhiteout(path: string, stat: Stats): boolean {
  // Rootful layers: overlayfs's character device 0:0. Rootless (userxattr) layers: an empty file
  // marked with the xattr (see image/whiteout.ts).
  if (stat.isCharacterDevice()) return stat.rdev === 0;
  if (!stat.isFile() || stat.size !== 0) return false;
  return getXattr(path, 'user.overlay.whiteout') !== null || getXattr(path, 'trusted.overlay.whiteout') !== null;
}

function isOpaque(dir: string): boolean {
  // 'x' only says the directory holds xattr whiteouts; 'y' hides the layers below.
  return getXattr(dir, 'trusted.overlay.opaque') === 'y' || getXattr(dir, 'user.overlay.opaque') === 'y';
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw error;
  }
}

/**
 * The directories of `layers` (bottom first, as overlay lowerdirs are listed) that overlayfs
 * would merge at `relative`, top first; empty when the image has no directory there. Walks
 * without following symlinks: a symlink, file or whiteout on the way hides what lies below.
 */
export function imageDirectorySources(layers: readonly string[], relative: string): Sources {
  const parts = relative.split('/').filter((part) => part !== '');
  const sources: Sources = [];
  for (const layer of [...layers].reverse()) {
    let path = layer;
    let hidesBelow = false;
    let present = true;
    for (const part of parts) {
      path = join(path, part);
      const stat = lstatOrUndefined(path);
      if (!stat) {
        present = false;
        break;
      }
      // Anything but a directory (a whiteout included) ends the merge here.
      if (!stat.isDirectory()) return sources;
      if (isOpaque(path)) hidesBelow = true;
    }
    if (present) sources.push(path);
    if (hidesBelow) break;
  }
  return sources;
}

async function copyMetadata(path: string, stat: Stats): Promise<void> {
  // Owner first: chown clears the set-id bits that chmod then sets.
  try {
    await lchown(path, stat.uid, stat.gid);
  } catch (error) {
    // A rootless host cannot give files away; its layers belong to it anyway.
    if (isRoot() || (error as NodeJS.ErrnoException).code !== 'EPERM') throw error;
  }
  if (!stat.isSymbolicLink()) await chmod(path, stat.mode & 0o7777);
  await lutimes(path, stat.atime, stat.mtime);
}

// Copies the merged directory `sources` into the existing directory `dest`, without its own metadata.
async function copyMerged(sources: Sources, dest: string): Promise<void> {
  const seen = new Set<string>();
  for (const [index, source] of sources.entries()) {
    for (const name of await readdir(source)) {
      if (seen.has(name)) continue;
      seen.add(name);
      const path = join(source, name);
      const stat = lstatSync(path);
      if (isWhiteout(path, stat)) continue;
      const target = join(dest, name);
      if (stat.isDirectory()) {
        const below: Sources = [path];
        if (!isOpaque(path)) {
          for (const lower of sources.slice(index + 1)) {
            const lowerStat = lstatOrUndefined(join(lower, name));
            if (!lowerStat) continue;
            if (!lowerStat.isDirectory()) break;
            below.push(join(lower, name));
            if (isOpaque(join(lower, name))) break;
          }
        }
        await mkdir(target, { mode: 0o700 });
        await copyMerged(below, target);
      } else if (stat.isFile()) {
        await copyFile(path, target, constants.COPYFILE_EXCL);
      } else if (stat.isSymbolicLink()) {
        await symlink(await readlink(path), target);
      } else if (stat.isFIFO() || stat.isCharacterDevice() || stat.isBlockDevice()) {
        const rdev = stat.rdev;
        mknod(target, stat.mode, (rdev >>> 8) & 0xfff, (rdev & 0xff) | ((rdev >>> 12) & ~0xff));
      } else {
        continue; // sockets are not content
      }
      await copyMetadata(target, stat);
    }
  }
}

function isEmptyDir(dir: string): boolean {
  return readdirSync(dir).length === 0;
}

/**
 * @internal When the volume directory `data` is empty and the image has a directory at
 * `target`, fills it with that directory's merged content and gives it the directory's owner,
 * mode and times. A volume with anything in it is never touched. The copy is made beside
 * `data`, then its entries are renamed into `data` right after `data` was seen empty again
 * (no await in between): a half copy is never seen, two starts in this process never both
 * copy, and `data` itself stays the same directory, which running sandboxes may have mounted.
 * Returns whether it copied.
 */
export async function populateVolume(data: string, layers: readonly string[], target: string): Promise<boolean> {
  if (!isEmptyDir(data)) return false;
  const sources = imageDirectorySources(layers, target);
  if (sources.length === 0) return false;
  const rootStat = statSync(sources[0]!);
  const staging = await mkdtemp(join(dirname(data), '.populate-'));
  try {
    await copyMerged(sources, staging);
    if (!isEmptyDir(data)) return false;
    for (const name of readdirSync(staging)) renameSync(join(staging, name), join(data, name));
    await copyMetadata(data, rootStat);
    return true;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}
