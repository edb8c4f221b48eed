// SPDX-License-Identifier: Apache-2.0
// Files in a running sandbox, reached from the host without ever leaving the sandbox's root.
// readFile follows symlinks inside the root (as `docker cp` does, reading as the host process);
// writes never follow one at the last component.
//
// Why this is safe against a hostile workload that rewrites its files while we work: every
// path is resolved by the kernel with openat2(RESOLVE_IN_ROOT) against an fd of the sandbox's
// root (/proc/<pid 1>/root), so `..`, absolute paths and symlinks stay inside. Names inside a
// directory are then reached through that directory's fd (`/proc/self/fd/N/name`), one
// component that is never followed when it is a symlink (O_NOFOLLOW, lstat, readlink).
// Devices and fifos are refused, and the sandbox's mounts are nodev anyway.
import { constants, closeSync, fstatSync, fchmodSync, ftruncateSync, fchownSync, futimesSync, lchownSync, lstatSync, lutimesSync, mkdirSync, openSync, readdirSync, readlinkSync, symlinkSync, unlinkSync, type Stats } from 'node:fs';
import { read, write } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { posix } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { promisify } from 'node:util';
import { Header, Parser, Pax, type ReadEntry } from 'tar';
import { SandboxError } from '../errors.js';
import { native } from '../native/binding.js';

const readAsync = promisify(read);
const writeAsync = promisify(write);
const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_DIRECTORY, O_NONBLOCK, O_NOCTTY } = constants;
const O_PATH = 0o10000000;

const errnoName = (negative: number) => Object.entries(osConstants.errno).find(([, value]) => value === -negative)?.[0] ?? `errno ${-negative}`;

function fileError(what: string, path: string, cause: unknown): SandboxError {
  const code = (cause as NodeJS.ErrnoException)?.code;
  return new SandboxError('ERR_FILE', `Cannot ${what} \`${path}\` in the sandbox${code ? `: ${code}` : ''}`, { cause });
}

/** @internal The absolute, normalised form of a path inside the sandbox. */
export function sandboxPath(path: string): string {
  if (typeof path !== 'string' || path.length === 0 || path.includes('\0')) throw new SandboxError('ERR_INVALID_OPTION', `Invalid sandbox path \`${String(path)}\`: expected a non-empty string without NUL bytes`);
  return posix.normalize(posix.join('/', path));
}

const viaFd = (fd: number, name = '') => (name ? `/proc/self/fd/${fd}/${name}` : `/proc/self/fd/${fd}`);

/** @internal A sandbox's root directory, opened once per operation. */
export class SandboxRoot {
  readonly fd: number;
  /** uid/gid inside the sandbox → on the host (identity without a user namespace). */
  readonly #toHost: (id: number, kind: 'uid' | 'gid') => number;

  private constructor(fd: number, toHost: (id: number, kind: 'uid' | 'gid') => number) {
    this.fd = fd;
    this.#toHost = toHost;
  }

  /** Opens /proc/<pid>/root, then checks with the pidfd that pid still names the sandbox's pid 1. */
  static open(pid: number, alive: () => boolean, toHost: (id: number, kind: 'uid' | 'gid') => number): SandboxRoot {
    let fd: number;
    try {
      fd = openSync(`/proc/${pid}/root`, O_PATH | O_DIRECTORY);
    } catch (error) {
      throw new SandboxError('ERR_SANDBOX_STOPPED', 'The sandbox is not running', { cause: error });
    }
    if (!alive()) {
      closeSync(fd);
      throw new SandboxError('ERR_SANDBOX_STOPPED', 'The sandbox is not running');
    }
    return new SandboxRoot(fd, toHost);
  }

  close(): void {
    closeSync(this.fd);
  }

  /** openat2 confined to the root; throws ERR_FILE naming `path`. */
  openIn(path: string, flags: number, mode = 0, what = 'open'): number {
    const fd = native().openInRoot(this.fd, path, flags, mode);
    if (fd < 0) throw fileError(what, path, Object.assign(new Error(errnoName(fd)), { code: errnoName(fd) }));
    return fd;
  }

  chown(fdOrPath: number | string, uid: number, gid: number): void {
    const hostUid = this.#toHost(uid, 'uid');
    const hostGid = this.#toHost(gid, 'gid');
    if (hostUid < 0 || hostGid < 0) return;
    if (typeof fdOrPath === 'number') fchownSync(fdOrPath, hostUid, hostGid);
    else lchownSync(fdOrPath, hostUid, hostGid);
  }

  async readFile(path: string, maxBytes: number): Promise<Buffer> {
    const fd = this.openIn(path, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0, 'read');
    try {
      const stats = fstatSync(fd);
      if (!stats.isFile()) throw fileError('read', path, Object.assign(new Error('not a regular file'), { code: stats.isDirectory() ? 'EISDIR' : 'EINVAL' }));
      if (stats.size > maxBytes) throw new SandboxError('ERR_FILE', `Cannot read \`${path}\` in the sandbox: ${stats.size} bytes is more than maxBytes (${maxBytes})`);
      const chunks: Buffer[] = [];
      let total = 0;
      for (;;) {
        const chunk = Buffer.allocUnsafe(Math.min(1 << 20, maxBytes - total + 1));
        const { bytesRead } = await readAsync(fd, chunk, 0, chunk.length, null);
        if (bytesRead === 0) break;
        total += bytesRead;
        if (total > maxBytes) throw new SandboxError('ERR_FILE', `Cannot read \`${path}\` in the sandbox: it grew past maxBytes (${maxBytes})`);
        chunks.push(chunk.subarray(0, bytesRead));
      }
      return Buffer.concat(chunks, total);
    } finally {
      closeSync(fd);
    }
  }

  async writeFile(path: string, data: Buffer, mode: number, owner: { uid: number; gid: number }): Promise<void> {
    // The host writes as itself (root, usually), so it never follows a symlink at the last
    // component (a workload could point one at a file it may not write, e.g. in a bind mount),
    // writes only to a regular file with one link, truncates only after those checks, and
    // chowns only a file it created. O_NONBLOCK: a fifo planted there fails instead of blocking.
    let created = true;
    let fd: number;
    try {
      fd = this.openIn(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, mode, 'write');
    } catch (error) {
      if (((error as SandboxError).cause as NodeJS.ErrnoException | undefined)?.code !== 'EEXIST') throw error;
      created = false;
      fd = this.openIn(path, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, 0, 'write');
    }
    try {
      const stats = fstatSync(fd);
      if (!stats.isFile() || stats.nlink !== 1)
        throw fileError('write', path, Object.assign(new Error('not a regular file with a single link'), { code: 'EINVAL' }));
      ftruncateSync(fd, 0);
      if (created) this.chown(fd, owner.uid, owner.gid);
      fchmodSync(fd, mode);
      for (let offset = 0; offset < data.length; ) {
        const { bytesWritten } = await writeAsync(fd, data, offset, data.length - offset, null);
        offset += bytesWritten;
      }
    } finally {
      closeSync(fd);
    }
  }

  /** Unpacks a tar stream into the directory `dest` (which must exist), refusing entries that leave it. */
  async extract(dest: string, tar: Readable, owner: { uid: number; gid: number } | 'preserve'): Promise<void> {
    const destFd = this.openIn(dest, O_PATH | O_DIRECTORY, 0, 'copy into');
    closeSync(destFd);
    const parser = new Parser({ strict: true });
    const failures: unknown[] = [];
    const done = new Promise<void>((resolve, reject) => {
      parser.on('error', reject);
      parser.on('end', resolve);
      tar.on('error', reject);
    });
    let queue = Promise.resolve();
    parser.on('entry', (entry: ReadEntry) => {
      entry.pause();
      queue = queue.then(() => this.#extractEntry(dest, entry, owner)).catch((error) => {
        failures.push(error);
        entry.resume();
      });
    });
    tar.pipe(parser);
    await done;
    await queue;
    if (failures.length > 0) throw failures[0];
  }

  async #extractEntry(dest: string, entry: ReadEntry, owner: { uid: number; gid: number } | 'preserve'): Promise<void> {
    const relative = posix.normalize(entry.path).replace(/^(\.\/)+/, '').replace(/\/+$/, '');
    if (relative === '.' || relative === '') {
      entry.resume();
      return;
    }
    if (relative.startsWith('/') || relative === '..' || relative.startsWith('../'))
      throw new SandboxError('ERR_FILE', `Cannot copy into the sandbox: tar entry \`${entry.path}\` leaves the destination`);
    const target = posix.join(dest, relative);
    const parentFd = this.openIn(posix.dirname(target), O_PATH | O_DIRECTORY, 0, 'copy into');
    const name = posix.basename(target);
    const at = viaFd(parentFd, name);
    const mode = (entry.mode ?? 0o644) & 0o7777;
    const id = owner === 'preserve' ? { uid: entry.uid ?? 0, gid: entry.gid ?? 0 } : owner;
    const mtime = entry.mtime ?? new Date();
    try {
      const existing = lstatOrNull(at);
      switch (entry.type) {
        case 'Directory': {
          if (existing && !existing.isDirectory()) unlinkSync(at);
          if (!existing?.isDirectory()) mkdirSync(at, { mode: 0o700 });
          const fd = openSync(at, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
          try {
            // A directory that was there keeps its owner and mode (it may be a mount point or the workload's).
            if (!existing) {
              this.chown(fd, id.uid, id.gid);
              fchmodSync(fd, mode);
            }
            futimesSync(fd, mtime, mtime);
          } finally {
            closeSync(fd);
          }
          entry.resume();
          return;
        }
        case 'File':
        case 'OldFile':
        case 'ContiguousFile': {
          removeExisting(existing, at, target);
          // O_EXCL: a name the workload slips in after the unlink (a link to another file) is refused, never written through.
          const fd = openSync(at, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK, 0o600);
          try {
            if (!fstatSync(fd).isFile()) throw new SandboxError('ERR_FILE', `Cannot copy into the sandbox: \`${target}\` is not a regular file`);
            for await (const chunk of entry as AsyncIterable<Buffer>) {
              for (let offset = 0; offset < chunk.length; ) offset += (await writeAsync(fd, chunk, offset, chunk.length - offset, null)).bytesWritten;
            }
            this.chown(fd, id.uid, id.gid);
            fchmodSync(fd, mode);
            futimesSync(fd, mtime, mtime);
          } finally {
            closeSync(fd);
          }
          return;
        }
        case 'SymbolicLink': {
          removeExisting(existing, at, target);
          symlinkSync(entry.linkpath ?? '', at);
          this.chown(at, id.uid, id.gid);
          lutimesSync(at, mtime, mtime);
          entry.resume();
          return;
        }
        case 'Link': {
          const linkTarget = posix.normalize(entry.linkpath ?? '');
          if (linkTarget.startsWith('/') || linkTarget === '..' || linkTarget.startsWith('../'))
            throw new SandboxError('ERR_FILE', `Cannot copy into the sandbox: hard link \`${entry.path}\` points outside the destination`);
          const sourceFd = this.openIn(posix.join(dest, linkTarget), O_PATH | O_NOFOLLOW, 0, 'link to');
          try {
            removeExisting(existing, at, target);
            const r = native().linkAt(sourceFd, parentFd, name);
            if (r < 0) throw fileError('link', target, Object.assign(new Error(errnoName(r)), { code: errnoName(r) }));
          } finally {
            closeSync(sourceFd);
          }
          entry.resume();
          return;
        }
        default:
          throw new SandboxError('ERR_FILE', `Cannot copy into the sandbox: tar entry \`${entry.path}\` is a ${entry.type}; only files, directories, symlinks and hard links are copied`);
      }
    } catch (error) {
      if (error instanceof SandboxError) throw error;
      throw fileError('copy into', target, error);
    } finally {
      closeSync(parentFd);
    }
  }

  /** A tar stream of `path` (a directory, recursively, or one file or symlink), named relative to its parent as `docker cp` does. */
  pack(path: string): Readable {
    const out = new PassThrough();
    const run = async () => {
      const parentFd = this.openIn(posix.dirname(path), O_PATH | O_DIRECTORY, 0, 'copy out');
      try {
        const name = posix.basename(path) || '.';
        await this.#packEntry(out, parentFd, name, name === '/' ? '.' : name);
      } finally {
        closeSync(parentFd);
      }
      out.end(Buffer.alloc(1024));
    };
    run().catch((error) => out.destroy(error instanceof SandboxError ? error : fileError('copy out', path, error)));
    return out;
  }

  async #packEntry(out: PassThrough, dirFd: number, name: string, archiveName: string): Promise<void> {
    const at = viaFd(dirFd, name);
    const stats = lstatSync(at);
    const base = { path: archiveName, mode: stats.mode & 0o7777, uid: stats.uid, gid: stats.gid, mtime: stats.mtime };
    if (stats.isSymbolicLink()) {
      await emit(out, { ...base, type: 'SymbolicLink', size: 0, linkpath: readlinkSync(at) });
    } else if (stats.isDirectory()) {
      await emit(out, { ...base, path: `${archiveName}/`, type: 'Directory', size: 0 });
      const fd = openSync(at, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
      try {
        for (const child of readdirSync(viaFd(fd)).sort()) await this.#packEntry(out, fd, child, `${archiveName}/${child}`);
      } finally {
        closeSync(fd);
      }
    } else if (stats.isFile()) {
      const fd = openSync(at, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
      try {
        const opened = fstatSync(fd);
        if (!opened.isFile() || opened.ino !== stats.ino) throw new SandboxError('ERR_FILE', `Cannot copy \`${archiveName}\` out of the sandbox: it changed while being read`);
        await emit(out, { ...base, type: 'File', size: opened.size });
        // Exactly the announced size: a file that grows is cut, one that shrinks is padded.
        let left = opened.size;
        while (left > 0) {
          const chunk = Buffer.alloc(Math.min(left, 1 << 20));
          const { bytesRead } = await readAsync(fd, chunk, 0, chunk.length, null);
          await push(out, bytesRead === 0 ? chunk : chunk.subarray(0, bytesRead));
          left -= bytesRead === 0 ? chunk.length : bytesRead;
        }
        const padding = (512 - (opened.size % 512)) % 512;
        if (padding) await push(out, Buffer.alloc(padding));
      } finally {
        closeSync(fd);
      }
    }
    // Sockets, fifos and devices are left out, as `docker cp` leaves sockets out.
  }
}

// As tar does: an entry replaces a file or symlink, never a directory (which a recursive removal
// through paths the workload can change would not do safely).
function removeExisting(existing: Stats | null, at: string, target: string): void {
  if (existing?.isDirectory()) throw new SandboxError('ERR_FILE', `Cannot copy into the sandbox: \`${target}\` is a directory`);
  if (existing) unlinkSync(at);
}

function lstatOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch {
    return null;
  }
}

type HeaderFields = { path: string; mode: number; uid: number; gid: number; mtime: Date; type: 'File' | 'Directory' | 'SymbolicLink'; size: number; linkpath?: string };

async function emit(out: PassThrough, fields: HeaderFields): Promise<void> {
  const header = new Header(fields);
  const block = Buffer.alloc(512);
  header.encode(block, 0);
  // Long names and large ids go in a PAX header first, as GNU tar and Docker write them.
  if (header.needPax) await push(out, new Pax({ path: fields.path, linkpath: fields.linkpath, uid: fields.uid, gid: fields.gid, size: fields.size, mtime: fields.mtime }).encode());
  await push(out, block);
}

function push(out: PassThrough, chunk: Buffer): Promise<void> {
  if (out.destroyed) return Promise.reject(new SandboxError('ERR_CANCELED', 'The copy was abandoned by its reader'));
  return out.write(chunk) ? Promise.resolve() : new Promise((resolve) => out.once('drain', resolve));
}
