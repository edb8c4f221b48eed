// SPDX-License-Identifier: Apache-2.0
// Unpacks one layer tar into a fresh directory by Docker's rules, refusing any entry that would write outside it.

import { on } from 'node:events';
import {
  chmodSync, closeSync, constants, fchmodSync, fchownSync, futimesSync, linkSync, lchownSync, lstatSync, lutimesSync,
  mkdirSync, openSync, rmSync, symlinkSync, utimesSync, writeSync, type Stats,
} from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { Parser, type ReadEntry } from 'tar';
import { SandboxError } from '../errors.js';
import { Sha256Stream } from './digest.js';
import { mknod, trySetXattr } from './native-fs.js';
import type { LayerRef } from './oci-layout.js';
import { TarXattrScanner, type EntryXattrs } from './tar-xattrs.js';
import { markOpaque, opaqueWhiteout, whiteoutPrefix, writeWhiteout } from './whiteout.js';
import { ZstdDecompressStream } from './zstd.js';

const defaultMaxLayerBytes = 8 * 1024 ** 3;
// Who owns what this process creates (no chown needed for entries owned so).
const euid = process.geteuid?.() ?? -1;
const egid = process.getegid?.() ?? -1;

/** How to unpack a layer. */
export interface UnpackOptions {
  /** For an overlay an unprivileged user mounts with `userxattr`: xattr whiteouts, no chown, no device nodes. */
  rootless: boolean;
  /** Largest uncompressed tar accepted, in bytes (a decompression bomb fails the layer); default 8 GiB. */
  maxBytes?: number;
}

/**
 * Unpacks a layer blob into `dest`, an empty directory this process created and nobody else
 * writes to. One streaming pass: blob → gunzip or zstd → sha256 of the tar (the diffID, checked against
 * `layer.diffId` before anything is finalised) → tar entries → files. Regular files, directories,
 * symlinks, hard links, modes, mtimes and (rootful) owners and device nodes are restored; OCI
 * whiteouts become overlayfs markers ({@link writeWhiteout}, {@link markOpaque}).
 *
 * A hostile entry fails the whole layer with ERR_IMAGE_INVALID naming it: a `..` component, a
 * path through a symlink, a hard link to something not already in the layer, an unknown entry
 * type, bytes that are not a tar. Leading `/` is stripped, as Docker does. On failure `dest` may
 * hold partial content: the caller removes it.
 *
 * Why not node-tar's `Unpack`: it reports hostile entries as warnings and skips them, so a layer
 * would unpack "successfully" without them. Here node-tar only parses. Every path is resolved
 * component by component under `dest` with lstat, refusing symlinks, and files are created with
 * O_EXCL|O_NOFOLLOW (after removing whatever the layer put there before). That is enough without
 * openat(2), which Node lacks: `dest` is fresh and private, and only this writer, one entry at a
 * time, changes it, so nothing can swap a checked directory for a symlink behind our back.
 *
 * @throws SandboxError ERR_IMAGE_INVALID (hostile or malformed layer, too large),
 *   ERR_DIGEST_MISMATCH (blob or diffID).
 *
 * @example
 * ```ts
 * const dir = await mkdtemp(join(cache, '.tmp-'));
 * await unpackLayer(openBlob(layoutDir, layer, 'layer'), layer, dir, { rootless: false });
 * ```
 */
export async function unpackLayer(blob: Readable, layer: LayerRef, dest: string, options: UnpackOptions): Promise<void> {
  const maxBytes = options.maxBytes ?? defaultMaxLayerBytes;
  const xattrs = new TarXattrScanner();
  const writer = new LayerWriter(dest, layer.digest, options.rootless, xattrs.queue);
  let head = Buffer.alloc(0);
  let diffId = '';
  const tarHash = new Sha256Stream({
    onChunk: (bytes, chunk) => {
      if (bytes > maxBytes) {
        throw new SandboxError('ERR_IMAGE_INVALID', `Layer ${layer.digest} unpacks to more than ${maxBytes} bytes`);
      }
      // node-tar would silently gunzip a second time (past our byte limit); a layer is one tar.
      if (head.length < 2) {
        head = Buffer.concat([head, chunk.subarray(0, 2 - head.length)]);
        if (head.length === 2 && head[0] === 0x1f && head[1] === 0x8b) {
          throw new SandboxError('ERR_IMAGE_INVALID', `Layer ${layer.digest} is not a tar archive (it is gzip inside the blob)`);
        }
      }
    },
    onEnd: (digest) => {
      diffId = digest;
    },
  });
  const parser = new Parser({
    brotli: false,
    zstd: false,
    // Any warning is a broken or hostile tar, except the one for a tar with no entries at all:
    // empty layers are real (the old Docker builder made them for ENV and friends).
    onwarn: (code: string, message: string) => {
      if (code !== 'TAR_BAD_ARCHIVE' || message !== 'Unrecognized archive format') parser.abort(writer.invalidTar(code, message));
    },
  });
  parser.on('ignoredEntry', (entry: ReadEntry) => parser.abort(writer.invalid(entry, `has an unsupported type (${entry.type})`)));
  const decompress = { gzip: () => [createGunzip()], zstd: () => [new ZstdDecompressStream(`Layer ${layer.digest}`)], none: () => [] }[layer.compression];
  const source = [blob, ...decompress(), tarHash, xattrs];
  await untar(source, parser, (entry) => writer.write(entry));
  if (diffId !== layer.diffId) {
    throw new SandboxError('ERR_DIGEST_MISMATCH', `Layer ${layer.digest}: uncompressed content is ${diffId}, but the image config says ${layer.diffId}`);
  }
  await writer.finish();
}

/**
 * @internal Feeds the streams into the parser and hands its entries to `write` one at a time.
 * node-tar emits the next entry only after the current one ends, and we end it (resume) only
 * after writing it, so at most one entry is in flight. The first failure, on either side, stops both.
 */
export async function untar(source: Readable[], parser: Parser, write: (entry: ReadEntry) => Promise<void>): Promise<void> {
  const abort = new AbortController();
  let current: ReadEntry | undefined;
  // A stream that fails mid-entry leaves that entry waiting for data forever: end it early
  // (its file stays partial, and the layer fails on the next turn of the loop).
  abort.signal.addEventListener('abort', () => current?.end());
  const feeding = pipeline([...source, parser], { signal: abort.signal });
  feeding.catch((error: unknown) => abort.abort(error));
  try {
    for await (const [entry] of on(parser, 'entry', { close: ['end'], signal: abort.signal })) {
      current = entry as ReadEntry;
      await write(current);
      current.resume();
    }
    await feeding;
  } catch (error) {
    // Our own failure: nothing waits on the entry, and ending it while the parser still feeds it
    // its body would make the parser throw ("write after end"). Only the feeding is stopped.
    current = undefined;
    abort.abort(error);
    throw abort.signal.reason;
  }
}

interface Meta {
  mode: number;
  xattrs?: Map<string, Buffer>;
  uid?: number;
  gid?: number;
  atime?: Date;
  mtime?: Date;
}

/**
 * Writes the entries of one layer under `root`; all paths it keeps are relative, `/`-joined.
 *
 * Its file system calls are synchronous on purpose. An entry's calls depend on one another (lstat,
 * open, write, chown, chmod, utimes, close), so the async forms only add a round trip through
 * libuv's thread pool to each: with thousands of small files that made the unpack twice as slow as
 * `tar -x` on a busy machine (profile: the main thread idle most of the time). Each call is
 * microseconds on the page cache, and the event loop still turns between chunks and entries.
 */
class LayerWriter {
  readonly #root: string;
  readonly #layer: string;
  readonly #rootless: boolean;
  /** The xattrs of each entry, in the order node-tar emits them (see {@link TarXattrScanner}). */
  readonly #xattrQueue: EntryXattrs[];
  /** The current entry's xattrs. */
  #xattrs = new Map<string, Buffer>();
  /** Paths known to be real directories (we made or lstat-checked them since they last changed). */
  readonly #dirs = new Set<string>(['']);
  /** Directory metadata, applied last: writing into a directory changes its mtime, and a read-only mode would stop us. */
  readonly #dirMeta = new Map<string, Meta>([['', { mode: 0o755 }]]);

  constructor(root: string, layer: string, rootless: boolean, xattrQueue: EntryXattrs[]) {
    this.#root = root;
    this.#layer = layer;
    this.#rootless = rootless;
    this.#xattrQueue = xattrQueue;
  }

  async write(entry: ReadEntry): Promise<void> {
    const scanned = this.#xattrQueue.shift();
    this.#xattrs = scanned?.xattrs ?? new Map();
    if (this.#xattrs.size > 0 && scanned?.path !== entry.path) throw this.invalid(entry, 'has xattrs that could not be paired with it (inconsistent tar headers)');
    const parts = splitPath(entry.path);
    if (!parts) throw this.invalid(entry, 'has a `..` component');
    if (parts.length === 0) {
      if (entry.type !== 'Directory') throw this.invalid(entry, 'replaces the layer root with a non-directory');
      this.#dirMeta.set('', this.#meta(entry, 0o755));
      return;
    }
    const name = parts.pop() as string;
    const parent = this.#walk(parts, entry, true);
    const rel = parent === '' ? name : `${parent}/${name}`;
    if (name === opaqueWhiteout) {
      markOpaque(this.#abs(parent), this.#rootless);
    } else if (name.startsWith(whiteoutPrefix)) {
      this.#whiteout(parent, name.slice(whiteoutPrefix.length), entry);
    } else {
      await this.#create(rel, entry);
    }
  }

  /** Applies the deferred directory metadata, deepest first (a parent may become unreadable). */
  async finish(): Promise<void> {
    const byDepth = [...this.#dirMeta].sort(([a], [b]) => depth(b) - depth(a));
    for (const [rel, meta] of byDepth) {
      const fd = openSync(this.#abs(rel), constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
      try {
        if (!this.#rootless && meta.uid !== undefined) fchownSync(fd, meta.uid, meta.gid ?? 0);
        fchmodSync(fd, meta.mode);
        this.#applyXattrs(this.#abs(rel), meta.xattrs, 'directory');
        if (meta.mtime) futimesSync(fd, meta.atime ?? meta.mtime, meta.mtime);
      } finally {
        closeSync(fd);
      }
    }
  }

  invalid(entry: ReadEntry, problem: string): SandboxError {
    return new SandboxError('ERR_IMAGE_INVALID', `Layer ${this.#layer}: entry \`${entry.path}\` ${problem}`);
  }

  invalidTar(code: string, message: string): SandboxError {
    return new SandboxError('ERR_IMAGE_INVALID', `Layer ${this.#layer}: broken tar (${code}: ${message})`);
  }

  async #create(rel: string, entry: ReadEntry): Promise<void> {
    const path = this.#abs(rel);
    switch (entry.type) {
      case 'Directory':
      case 'GNUDumpDir':
        if (!this.#clear(rel, true)) mkdirSync(path, 0o755);
        this.#dirs.add(rel);
        this.#dirMeta.set(rel, this.#meta(entry, 0o755));
        return;
      case 'File':
      case 'OldFile':
      case 'ContiguousFile':
        this.#clear(rel, false);
        return this.#file(path, entry);
      case 'SymbolicLink':
        this.#clear(rel, false);
        symlinkSync(entry.linkpath ?? '', path);
        return this.#setOwnerAndTimes(path, entry, true);
      case 'Link':
        return this.#hardLink(rel, entry);
      case 'CharacterDevice':
      case 'BlockDevice':
      case 'FIFO':
        return this.#node(rel, entry);
      default:
        throw this.invalid(entry, `has an unsupported type (${entry.type})`);
    }
  }

  async #file(path: string, entry: ReadEntry): Promise<void> {
    const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    try {
      for await (const chunk of entry) {
        for (let offset = 0; offset < (chunk as Buffer).length; ) offset += writeSync(fd, chunk as Buffer, offset);
      }
      const meta = this.#meta(entry, 0o644);
      // A new file is already ours; during the unpack no directory is setgid (modes come last).
      if (!this.#rootless && ((meta.uid ?? 0) !== euid || (meta.gid ?? 0) !== egid)) fchownSync(fd, meta.uid ?? 0, meta.gid ?? 0);
      fchmodSync(fd, meta.mode);
      // After the data and chown: both make the kernel drop security.capability.
      this.#applyXattrs(path, this.#xattrs, 'file');
      if (meta.mtime) futimesSync(fd, meta.atime ?? meta.mtime, meta.mtime);
    } finally {
      closeSync(fd);
    }
  }

  #hardLink(rel: string, entry: ReadEntry): void {
    const target = splitPath(entry.linkpath ?? '');
    if (!target || target.length === 0) throw this.invalid(entry, `links to \`${entry.linkpath}\`, outside the layer`);
    const name = target.pop() as string;
    const parent = this.#walk(target, entry, false);
    const targetRel = parent === '' ? name : `${parent}/${name}`;
    const stats = lstatOrNull(this.#abs(targetRel));
    if (!stats) throw this.invalid(entry, `links to \`${entry.linkpath}\`, which is not in the layer`);
    if (stats.isDirectory() || targetRel === rel) throw this.invalid(entry, `links to \`${entry.linkpath}\`, which cannot be hard-linked`);
    this.#clear(rel, false);
    linkSync(this.#abs(targetRel), this.#abs(rel));
  }

  // Device nodes need CAP_MKNOD: a rootless unpack skips them, as Docker does in a user
  // namespace. A fifo needs no privilege, so it is made either way.
  #node(rel: string, entry: ReadEntry): void {
    if (this.#rootless && entry.type !== 'FIFO') return;
    const type = entry.type === 'FIFO' ? constants.S_IFIFO : entry.type === 'BlockDevice' ? constants.S_IFBLK : constants.S_IFCHR;
    const path = this.#abs(rel);
    const meta = this.#meta(entry, 0o644);
    this.#clear(rel, false);
    mknod(path, type | meta.mode, entry.header.devmaj, entry.header.devmin);
    this.#setOwnerAndTimes(path, entry, false);
    // mknod's mode went through the umask; path-based calls are safe on the node we just made.
    chmodSync(path, meta.mode);
  }

  #whiteout(parent: string, hidden: string, entry: ReadEntry): void {
    // Other `.wh..wh.*` names are aufs bookkeeping that Docker skips too.
    if (hidden.startsWith(whiteoutPrefix)) return;
    if (hidden === '' || hidden === '.' || hidden === '..') throw this.invalid(entry, 'is a whiteout without a name');
    // Whiteouts hide the layers below, never this one: an entry of this layer wins.
    if (lstatOrNull(this.#abs(parent === '' ? hidden : `${parent}/${hidden}`))) return;
    writeWhiteout(this.#abs(parent), hidden, this.#rootless);
  }

  #setOwnerAndTimes(path: string, entry: ReadEntry, isSymlink: boolean): void {
    const meta = this.#meta(entry, 0);
    if (!this.#rootless) lchownSync(path, meta.uid ?? 0, meta.gid ?? 0);
    this.#applyXattrs(path, this.#xattrs, 'other');
    if (meta.mtime) (isSymlink ? lutimesSync : utimesSync)(path, meta.atime ?? meta.mtime, meta.mtime);
  }

  /**
   * Resolves the directory `parts` under the root, refusing any component that is a symlink or
   * not a directory; missing ones are created (mode 0755, like Docker's implicit parents) when
   * `create`, else they fail the entry.
   */
  #walk(parts: string[], entry: ReadEntry, create: boolean): string {
    let rel = '';
    for (const part of parts) {
      rel = rel === '' ? part : `${rel}/${part}`;
      if (this.#dirs.has(rel)) continue;
      const stats = lstatOrNull(this.#abs(rel));
      if (!stats && !create) throw this.invalid(entry, `needs \`${rel}\`, which is not in the layer`);
      if (!stats) {
        mkdirSync(this.#abs(rel), 0o755);
        this.#dirMeta.set(rel, { mode: 0o755 });
      } else if (stats.isSymbolicLink()) {
        throw this.invalid(entry, `goes through the symlink \`${rel}\``);
      } else if (!stats.isDirectory()) {
        throw this.invalid(entry, `goes through \`${rel}\`, which is not a directory`);
      }
      this.#dirs.add(rel);
    }
    return rel;
  }

  /**
   * Makes room for a new entry at `rel`: removes what is there (a later entry replaces an earlier
   * one), except an existing directory when `keepDirectory` (directories merge). Returns whether
   * a directory was kept.
   */
  #clear(rel: string, keepDirectory: boolean): boolean {
    const stats = lstatOrNull(this.#abs(rel));
    if (!stats) return false;
    if (keepDirectory && stats.isDirectory()) return true;
    rmSync(this.#abs(rel), { recursive: true });
    for (const known of [...this.#dirs, ...this.#dirMeta.keys()]) {
      if (known === rel || known.startsWith(`${rel}/`)) {
        this.#dirs.delete(known);
        this.#dirMeta.delete(known);
      }
    }
    return false;
  }

  /**
   * Sets the entry's xattrs (PAX `SCHILY.xattr.*`) that this unpack may set:
   * - never `trusted.overlay.*` or `user.overlay.*`: overlayfs' own markers (opaque, redirect,
   *   metacopy) come only from OCI whiteouts, a layer must not forge them; nor `security.selinux`:
   *   labels are the host's policy, not the image's;
   * - rootful: every other name, `security.capability` included (file capabilities work);
   * - rootless: `user.*` only. An unprivileged process may not set `security.*` or `trusted.*`
   *   (and a capability written from outside the sandbox's user namespace could not name its
   *   root anyway), so file capabilities are dropped there, as in rootless Docker and Podman;
   * - `user.*` only on files and directories (the kernel refuses it elsewhere).
   * A filesystem without xattr support (ENOTSUP) skips them, as Docker does; other failures fail the layer.
   */
  #applyXattrs(path: string, xattrs: Map<string, Buffer> | undefined, kind: 'file' | 'directory' | 'other'): void {
    for (const [name, value] of xattrs ?? []) {
      if (/^(trusted|user)\.overlay\./.test(name) || name === 'security.selinux') continue;
      if (this.#rootless && !name.startsWith('user.')) continue;
      if (kind === 'other' && name.startsWith('user.')) continue;
      const failure = trySetXattr(path, name, value);
      if (failure && failure !== 'ENOTSUP' && failure !== 'EOPNOTSUPP') {
        throw new SandboxError('ERR_IMAGE_INVALID', `Layer ${this.#layer}: cannot set xattr \`${name}\` on \`${path.slice(this.#root.length + 1)}\` (${failure})`);
      }
    }
  }

  #meta(entry: ReadEntry, defaultMode: number): Meta {
    return {
      mode: (entry.mode ?? defaultMode) & 0o7777,
      xattrs: this.#xattrs,
      uid: entry.uid,
      gid: entry.gid,
      atime: entry.atime,
      mtime: entry.mtime,
    };
  }

  #abs(rel: string): string {
    return join(this.#root, rel);
  }
}

/** The components of an entry path, leading `/` and `.` dropped; null when one is `..`. */
function splitPath(path: string): string[] | null {
  const parts = path.split('/').filter((part) => part !== '' && part !== '.');
  return parts.includes('..') ? null : parts;
}

function depth(rel: string): number {
  return rel === '' ? 0 : rel.split('/').length;
}

function lstatOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}
