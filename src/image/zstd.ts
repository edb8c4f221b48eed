// SPDX-License-Identifier: Apache-2.0
// Streaming zstd decompression for layers (Node 20's zlib has none): fzstd, pure JavaScript, wrapped as a Transform.

import { Transform, type TransformCallback } from 'node:stream';
import { Decompress } from 'fzstd';
import { SandboxError } from '../errors.js';

/**
 * @internal A Transform that decompresses a zstd stream (one or more frames) as it flows.
 * Malformed or truncated input fails the stream with ERR_IMAGE_INVALID naming `what`.
 *
 * Why fzstd: no native build, no install script, streaming, from the author of fflate. Its
 * window buffer follows the frame header (up to 2 GiB, which zstd allows); the layer size
 * limit bounds the output, not that buffer.
 */
export class ZstdDecompressStream extends Transform {
  readonly #what: string;
  readonly #decoder: Decompress;

  constructor(what: string) {
    super();
    this.#what = what;
    // fzstd hands out views of its window, which it overwrites later: copy each block.
    this.#decoder = new Decompress((block) => {
      if (block.length > 0) this.push(Buffer.from(block));
    });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    callback(this.#feed(chunk, false));
  }

  override _flush(callback: TransformCallback): void {
    callback(this.#feed(new Uint8Array(0), true));
  }

  #feed(chunk: Uint8Array, final: boolean): Error | null {
    try {
      this.#decoder.push(chunk, final);
      return null;
    } catch (error) {
      return new SandboxError('ERR_IMAGE_INVALID', `${this.#what}: broken zstd data (${(error as Error).message})`, { cause: error });
    }
  }
}
