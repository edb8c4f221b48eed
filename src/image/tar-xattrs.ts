// SPDX-License-Identifier: Apache-2.0
// Reads the xattrs of a layer tar (PAX `SCHILY.xattr.<name>` records) as raw bytes, which node-tar drops.

import { Transform, type TransformCallback } from 'node:stream';

/** The xattrs one tar entry carries, and the path the scanner read for it (to check it pairs with the right entry). */
export interface EntryXattrs {
  path: string;
  xattrs: Map<string, Buffer>;
}

const block = 512;
const xattrPrefix = Buffer.from('SCHILY.xattr.');
// Header types node-tar reads as entries of the file system (others are metadata for the next entry).
const fsTypes = new Set(['0', '', '1', '2', '3', '4', '5', '6', '7', 'D']);

/**
 * @internal A pass-through stream in front of node-tar that walks the same tar headers and
 * queues, for each file-system entry in order, the `SCHILY.xattr.*` records of its PAX header
 * with their values as raw bytes (node-tar decodes PAX values as UTF-8 text, which breaks
 * binary values such as `security.capability`, and drops xattrs anyway).
 *
 * The walk follows node-tar's rules for entry sizes (a PAX `size` applies to the next
 * file-system entry only; directories have no body). Should the two ever disagree, the path
 * kept with each queued item no longer matches the entry node-tar emits, and the unpacker
 * refuses the layer: xattrs are never applied to another entry. A bad checksum stops the walk
 * (node-tar rejects the layer there).
 */
export class TarXattrScanner extends Transform {
  /** Entries whose headers passed, in order: an empty map for entries without xattrs. */
  readonly queue: EntryXattrs[] = [];
  #pending = Buffer.alloc(0);
  /** Bytes of entry body still to skip, or to collect when `#collect` is set. */
  #remaining = 0;
  #padding = 0;
  #collect: { type: string; chunks: Buffer[] } | undefined;
  #ex: { path?: string; size?: number; xattrs: Map<string, Buffer> } = { xattrs: new Map() };
  #globalSize: number | undefined;
  #stopped = false;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (!this.#stopped) this.#scan(chunk);
    callback(null, chunk);
  }

  #scan(chunk: Buffer): void {
    let data = this.#pending.length > 0 ? Buffer.concat([this.#pending, chunk]) : chunk;
    this.#pending = Buffer.alloc(0);
    while (data.length > 0 && !this.#stopped) {
      if (this.#remaining > 0) {
        const take = Math.min(this.#remaining, data.length);
        this.#collect?.chunks.push(Buffer.from(data.subarray(0, take)));
        this.#remaining -= take;
        data = data.subarray(take);
        if (this.#remaining === 0 && this.#collect) this.#endMeta();
        continue;
      }
      if (this.#padding > 0) {
        const take = Math.min(this.#padding, data.length);
        this.#padding -= take;
        data = data.subarray(take);
        continue;
      }
      if (data.length < block) {
        this.#pending = Buffer.from(data);
        return;
      }
      this.#header(data.subarray(0, block));
      data = data.subarray(block);
    }
  }

  #header(header: Buffer): void {
    if (header.every((byte) => byte === 0)) return;
    if (!checksumValid(header)) {
      this.#stopped = true;
      return;
    }
    const type = text(header, 156, 1);
    const isFs = fsTypes.has(type);
    let size = number(header, 124, 12);
    if (isFs) size = this.#ex.size ?? this.#globalSize ?? size;
    if (type === '5') size = 0;
    if (isFs) {
      const name = this.#ex.path ?? headerPath(header);
      // node-tar reads a '0' entry whose name ends in '/' as a directory.
      if ((type === '0' || type === '') && name.endsWith('/')) size = 0;
      this.queue.push({ path: name, xattrs: this.#ex.xattrs });
      this.#ex = { xattrs: new Map() };
      this.#collect = undefined;
    } else {
      this.#collect = { type, chunks: [] };
    }
    this.#remaining = size;
    this.#padding = (block - (size % block)) % block;
    if (size === 0 && this.#collect) this.#endMeta();
  }

  #endMeta(): void {
    const { type, chunks } = this.#collect as { type: string; chunks: Buffer[] };
    this.#collect = undefined;
    const body = Buffer.concat(chunks);
    if (type === 'x' || type === 'X') {
      for (const [key, value] of paxRecords(body)) {
        if (key.subarray(0, xattrPrefix.length).equals(xattrPrefix)) this.#ex.xattrs.set(key.subarray(xattrPrefix.length).toString('utf8'), value);
        else if (key.toString() === 'path') this.#ex.path = value.toString('utf8').replace(/\0.*/s, '');
        else if (key.toString() === 'size' && Number(value.toString()) >= 0) this.#ex.size = Number(value.toString());
      }
    } else if (type === 'g') {
      for (const [key, value] of paxRecords(body)) {
        if (key.toString() === 'size' && Number(value.toString()) >= 0) this.#globalSize = Number(value.toString());
      }
    } else if (type === 'L' || type === 'N') {
      this.#ex.path = body.toString('utf8').replace(/\0.*/s, '');
    }
  }
}

/** PAX records `<length> <key>=<value>\n`, values as bytes (they may hold anything, newlines and NULs included). */
function* paxRecords(body: Buffer): Generator<[Buffer, Buffer]> {
  for (let at = 0; at < body.length; ) {
    const space = body.indexOf(0x20, at);
    if (space === -1) return;
    const length = Number(body.subarray(at, space).toString());
    if (!Number.isSafeInteger(length) || length <= space - at || at + length > body.length) return;
    const record = body.subarray(space + 1, at + length - 1);
    const equals = record.indexOf(0x3d);
    if (equals > 0) yield [record.subarray(0, equals), record.subarray(equals + 1)];
    at += length;
  }
}

function text(header: Buffer, offset: number, size: number): string {
  return header.subarray(offset, offset + size).toString('utf8').replace(/\0.*/s, '');
}

// The path node-tar reads from a header: name, after the ustar prefix when there is one.
function headerPath(header: Buffer): string {
  const name = text(header, 0, 100);
  if (header.subarray(257, 265).toString('latin1') !== 'ustar\u000000') return name;
  const prefix = header[475] !== 0 ? text(header, 345, 155) : text(header, 345, 130);
  return prefix ? `${prefix}/${name}` : name;
}

// Octal, or base-256 when the top bit of the first byte is set (GNU, for sizes past 8 GiB).
function number(header: Buffer, offset: number, size: number): number {
  const field = header.subarray(offset, offset + size);
  if (field[0] & 0x80) {
    let value = field[0] & 0x7f;
    for (let i = 1; i < field.length; i++) value = value * 256 + field[i];
    return value;
  }
  const digits = field.toString('latin1').replace(/\0.*/s, '').trim();
  return digits === '' ? 0 : Number.parseInt(digits, 8) || 0;
}

function checksumValid(header: Buffer): boolean {
  let sum = 8 * 0x20;
  for (let i = 0; i < 148; i++) sum += header[i];
  for (let i = 156; i < block; i++) sum += header[i];
  return sum === number(header, 148, 8);
}
