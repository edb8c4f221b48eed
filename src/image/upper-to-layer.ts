// SPDX-License-Identifier: Apache-2.0
// Turns an overlayfs upper directory into the tar of an OCI layer: overlay whiteouts and opaque directories become OCI ones.

import { createReadStream, type BigIntStats } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { SandboxError } from '../errors.js';
import { getXattr, getXattrBytes, listXattrs } from './native-fs.js';
import { tarHeader, tarPadding, tarTrailer } from './tar-writer.js';
import { opaqueWhiteout, whiteoutPrefix } from './whiteout.js';

/** @internal How {@link upperToLayer} maps the owners it finds. */
export interface UpperToLayerOptions {
  /** Host id → id inside the sandbox, for an upper directory a user namespace wrote (rootless). Default: unchanged. */
  uid?: (hostId: number) => number;
  gid?: (hostId: number) => number;
}

// The overlay's own attributes describe the upper directory, not the files: never copied into a layer.
const overlayXattr = /^(trusted|user)\.overlay\./;
// A host's labels, not image content (Docker leaves them out too).
const hostXattrs = new Set(['security.selinux']);

/**
 * @internal The tar of the layer that an overlayfs upper directory holds, as a stream of
 * buffers: one pass over the tree, file contents streamed, never a whole file in memory.
 * Entries come in sorted order, each directory before what it holds.
 *
 * What overlayfs wrote is turned into the OCI form (what layer-unpack and whiteout.ts do in
 * reverse): a whiteout (a character device 0:0, or a file with `trusted|user.overlay.whiteout`,
 * the xattr form) becomes an empty `.wh.NAME`; a directory with `trusted|user.overlay.opaque` = `y`
 * gets a `.wh..wh..opq` entry. Modes, owners, mtimes, symlinks, hard links (as `Link` entries
 * to the first path), device nodes, fifos and xattrs (other than the overlay's own and
 * `security.selinux`) are kept; sockets are left out, as Docker does.
 *
 * @throws SandboxError ERR_UNSUPPORTED for what a layer cannot express or the overlay kept
 *   elsewhere (a name starting `.wh.`, an overlay `redirect` or `metacopy` attribute),
 *   ERR_PERMISSION when a file cannot be read, ERR_IMAGE_INVALID when a file changes while read.
 */
export async function* upperToLayer(upper: string, options: UpperToLayerOptions = {}): AsyncGenerator<Buffer> {
  const mapUid = options.uid ?? ((id) => id);
  const mapGid = options.gid ?? ((id) => id);
  // First path of each inode with more than one link: later ones become hard links to it.
  const linked = new Map<bigint, string>();

  async function* walk(dir: string, prefix: string): AsyncGenerator<Buffer> {
    for (const name of (await readdir(dir)).sort()) {
      const path = join(dir, name);
      const rel = `${prefix}${name}`;
      const stats = await lstat(path, { bigint: true });
      const base = { mode: Number(stats.mode) & 0o7777, uid: mapUid(Number(stats.uid)), gid: mapGid(Number(stats.gid)), mtime: stats.mtime };
      if (isWhiteout(path, stats)) {
        yield tarHeader({ ...base, path: `${prefix}${whiteoutPrefix}${name}`, type: 'File', mode: 0o600, size: 0 });
        continue;
      }
      if (name.startsWith(whiteoutPrefix)) {
        throw new SandboxError('ERR_UNSUPPORTED', `Cannot commit \`/${rel}\`: a name starting with \`${whiteoutPrefix}\` is a whiteout in an image layer`);
      }
      const xattrs = readXattrs(path, rel);
      if (stats.isDirectory()) {
        yield tarHeader({ ...base, path: `${rel}/`, type: 'Directory', size: 0, xattrs });
        if (getXattr(path, 'trusted.overlay.opaque') === 'y' || getXattr(path, 'user.overlay.opaque') === 'y') {
          yield tarHeader({ ...base, path: `${rel}/${opaqueWhiteout}`, type: 'File', mode: base.mode & 0o777, size: 0 });
        }
        yield* walk(path, `${rel}/`);
      } else if (stats.isFile()) {
        const first = stats.nlink > 1n ? linked.get(stats.ino) : undefined;
        if (first !== undefined) {
          yield tarHeader({ ...base, path: rel, type: 'Link', size: 0, linkpath: first, xattrs });
          continue;
        }
        if (stats.nlink > 1n) linked.set(stats.ino, rel);
        const size = Number(stats.size);
        yield tarHeader({ ...base, path: rel, type: 'File', size, xattrs });
        yield* fileContent(path, rel, size);
        yield tarPadding(size);
      } else if (stats.isSymbolicLink()) {
        yield tarHeader({ ...base, path: rel, type: 'SymbolicLink', size: 0, linkpath: await readlink(path), xattrs });
      } else if (stats.isCharacterDevice() || stats.isBlockDevice()) {
        const { major, minor } = splitDevice(stats.rdev);
        yield tarHeader({ ...base, path: rel, type: stats.isCharacterDevice() ? 'CharacterDevice' : 'BlockDevice', size: 0, devmajor: major, devminor: minor, xattrs });
      } else if (stats.isFIFO()) {
        yield tarHeader({ ...base, path: rel, type: 'FIFO', size: 0, xattrs });
      }
    }
  }

  try {
    yield* walk(upper, '');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') {
      throw new SandboxError('ERR_PERMISSION', `Cannot read the upper directory ${upper} to commit it: ${(error as Error).message}`, { cause: error });
    }
    throw error;
  }
  yield tarTrailer;
}

// A whiteout as overlayfs makes it (a 0:0 character device), or in the xattr form.
function isWhiteout(path: string, stats: BigIntStats): boolean {
  if (stats.isCharacterDevice()) return stats.rdev === 0n;
  if (!stats.isFile() || stats.size !== 0n) return false;
  return getXattr(path, 'trusted.overlay.whiteout') !== null || getXattr(path, 'user.overlay.whiteout') !== null;
}

function readXattrs(path: string, rel: string): Array<[string, Buffer]> | undefined {
  const xattrs: Array<[string, Buffer]> = [];
  for (const name of listXattrs(path).sort()) {
    if (/^(trusted|user)\.overlay\.(redirect|metacopy)$/.test(name)) {
      throw new SandboxError('ERR_UNSUPPORTED', `Cannot commit \`/${rel}\`: overlayfs kept it as a ${name.split('.').at(-1)} of a lower layer (mount without redirect_dir and metacopy)`);
    }
    if (overlayXattr.test(name) || hostXattrs.has(name)) continue;
    // Bytes, not text: values such as security.capability are binary.
    const value = getXattrBytes(path, name);
    if (value !== null) xattrs.push([name, value]);
  }
  return xattrs.length > 0 ? xattrs : undefined;
}

async function* fileContent(path: string, rel: string, size: number): AsyncGenerator<Buffer> {
  let read = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 256 * 1024 })) {
    const bytes = chunk as Buffer;
    read += bytes.length;
    if (read > size) break;
    yield bytes;
  }
  if (read !== size) throw new SandboxError('ERR_IMAGE_INVALID', `Cannot commit \`/${rel}\`: it changed size while being read (is the sandbox still running?)`);
}

// glibc's gnu_dev_major/gnu_dev_minor.
function splitDevice(rdev: bigint): { major: number; minor: number } {
  const major = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
  const minor = Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
  return { major, minor };
}
