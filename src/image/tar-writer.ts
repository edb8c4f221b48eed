// SPDX-License-Identifier: Apache-2.0
// Encodes tar entry headers: ustar, plus a PAX extended header for long names, large numbers and xattrs.

import { posix } from 'node:path';
import { Header } from 'tar';

/** The entry types the layer and archive writers produce. */
export type TarEntryType = 'File' | 'Directory' | 'SymbolicLink' | 'Link' | 'CharacterDevice' | 'BlockDevice' | 'FIFO';

/** @internal One tar entry's metadata; a `File`'s `size` bytes of content follow its header. */
export interface TarEntry {
  /** Relative, `/`-separated; a directory's ends with `/`. */
  path: string;
  type: TarEntryType;
  /** Permission bits, setuid/setgid/sticky included. */
  mode: number;
  uid: number;
  gid: number;
  /** Content bytes (0 for anything but a `File`). */
  size: number;
  /** Kept to whole seconds, as Docker's layers do. */
  mtime: Date;
  /** A symlink's target, or the path (in the archive) a hard link points to. */
  linkpath?: string;
  devmajor?: number;
  devminor?: number;
  /** Extended attributes, written as PAX `SCHILY.xattr.<name>` records (the form GNU tar, Docker and containerd use). */
  xattrs?: Array<[string, Buffer]>;
}

const blockSize = 512;

/** @internal The two zero blocks that end an archive. */
export const tarTrailer = Buffer.alloc(2 * blockSize);

/**
 * @internal The header block(s) of `entry`: a PAX extended header first when ustar cannot hold
 * the entry faithfully (a path or link target too long or not ASCII, a number too large) or it
 * has xattrs.
 */
export function tarHeader(entry: TarEntry): Buffer {
  const mtime = new Date(Math.floor(entry.mtime.getTime() / 1000) * 1000);
  const header = new Header({
    path: entry.path,
    type: entry.type,
    mode: entry.mode & 0o7777,
    uid: entry.uid,
    gid: entry.gid,
    size: entry.size,
    mtime,
    linkpath: entry.linkpath ?? '',
    uname: '',
    gname: '',
    devmaj: entry.devmajor ?? 0,
    devmin: entry.devminor ?? 0,
  });
  const needPax = header.encode();
  const records: Buffer[] = [];
  if (needPax) {
    records.push(paxRecord('path', Buffer.from(entry.path)));
    if (entry.linkpath) records.push(paxRecord('linkpath', Buffer.from(entry.linkpath)));
    records.push(paxRecord('size', Buffer.from(String(entry.size))));
    records.push(paxRecord('uid', Buffer.from(String(entry.uid))));
    records.push(paxRecord('gid', Buffer.from(String(entry.gid))));
    records.push(paxRecord('mtime', Buffer.from(String(mtime.getTime() / 1000))));
  }
  for (const [name, value] of entry.xattrs ?? []) records.push(paxRecord(`SCHILY.xattr.${name}`, value));
  if (records.length === 0) return header.block as Buffer;
  const body = Buffer.concat(records);
  const pax = new Header({
    path: `PaxHeader/${posix.basename(entry.path)}`.slice(0, 99),
    type: 'ExtendedHeader',
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: body.length,
    mtime,
    uname: '',
    gname: '',
  });
  pax.encode();
  return Buffer.concat([pax.block as Buffer, body, tarPadding(body.length), header.block as Buffer]);
}

/** @internal Zero bytes that fill the last block of `size` content bytes. */
export function tarPadding(size: number): Buffer {
  return Buffer.alloc((blockSize - (size % blockSize)) % blockSize);
}

// A PAX record: "<length> <key>=<value>\n", where length counts the whole record, its own digits included.
function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let length = body.length + 1;
  while (String(length).length + body.length !== length) length = String(length).length + body.length;
  return Buffer.concat([Buffer.from(String(length)), body]);
}
