// SPDX-License-Identifier: Apache-2.0
// Writes tar archives block by block, hostile ones included (`..` paths, links anywhere), for the unpack tests.
import { createHash } from 'node:crypto';
import { Header, type HeaderData } from 'tar';

/** One entry: a ustar header (node-tar encodes it as given, nothing sanitised) and its body. */
export interface RawEntry extends HeaderData {
  path: string;
  body?: string | Buffer;
}

/**
 * The tar bytes of `entries`, with the two zero blocks at the end.
 *
 * @example
 * const tar = rawTar([{ path: 'evil', type: 'SymbolicLink', linkpath: '/etc' }, { path: 'evil/passwd', body: 'x' }]);
 */
export function rawTar(entries: RawEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const { body = '', ...data } of entries) {
    const content = Buffer.from(body);
    const header = new Header({ type: 'File', mode: 0o644, uid: 0, gid: 0, mtime: new Date('2020-01-01T00:00:00Z'), ...data, size: content.length });
    if (header.encode()) throw new Error(`${data.path}: needs a pax header; keep test paths short`);
    blocks.push(header.block!, content, Buffer.alloc((512 - (content.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

/** `sha256:<hex>` of a buffer: a tar's diffID. */
export function sha256Of(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}
