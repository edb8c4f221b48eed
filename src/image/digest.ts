// SPDX-License-Identifier: Apache-2.0
// sha256 content digests: parse "sha256:<hex>" safely and hash data as it streams past.

import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { SandboxError } from '../errors.js';

const sha256Pattern = /^sha256:([a-f0-9]{64})$/;
const otherAlgorithmPattern = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

/**
 * Returns the hex part of a `sha256:<64 hex>` digest. Anything else is refused before it can
 * become part of a path (`sha256:../../x` must never reach `path.join`).
 *
 * @param where - what held the digest, for the error message.
 * @throws SandboxError ERR_UNSUPPORTED for a well-formed digest of another algorithm,
 *   ERR_IMAGE_INVALID for anything malformed.
 *
 * @example
 * ```ts
 * digestHex('sha256:' + 'a'.repeat(64), 'index.json'); // 'aaaa…'
 * ```
 */
export function digestHex(digest: unknown, where: string): string {
  if (typeof digest === 'string') {
    const match = sha256Pattern.exec(digest);
    if (match) return match[1];
    if (otherAlgorithmPattern.test(digest)) {
      throw new SandboxError('ERR_UNSUPPORTED', `${where}: digest algorithm of \`${digest}\` is not supported (only sha256)`);
    }
  }
  throw new SandboxError('ERR_IMAGE_INVALID', `${where}: malformed digest ${JSON.stringify(digest)}`);
}

/**
 * The `sha256:<hex>` digest of a buffer.
 *
 * @example
 * ```ts
 * sha256(Buffer.from('')); // 'sha256:e3b0c442…'
 * ```
 */
export function sha256(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Checks a {@link Sha256Stream} runs; throwing from one fails the stream with that error. */
export interface Sha256StreamChecks {
  /** After each chunk, with the byte count so far (this chunk included). */
  onChunk?(bytes: number, chunk: Buffer): void;
  /** Once at the end, with the digest and total byte count of everything that passed. */
  onEnd?(digest: string, bytes: number): void;
}

/**
 * A pass-through stream that hashes (sha256) and counts what flows through it, so a digest
 * is checked in the same pass that consumes the data.
 *
 * @example
 * ```ts
 * const hash = new Sha256Stream({ onEnd: (digest) => console.log(digest) });
 * await pipeline(createReadStream(file), hash, sink);
 * ```
 */
export class Sha256Stream extends Transform {
  /** Bytes seen so far. */
  bytes = 0;
  readonly #hash = createHash('sha256');
  readonly #checks: Sha256StreamChecks;

  constructor(checks: Sha256StreamChecks = {}) {
    super();
    this.#checks = checks;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    this.#hash.update(chunk);
    try {
      this.#checks.onChunk?.(this.bytes, chunk);
    } catch (error) {
      callback(error as Error);
      return;
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    try {
      this.#checks.onEnd?.(`sha256:${this.#hash.digest('hex')}`, this.bytes);
    } catch (error) {
      callback(error as Error);
      return;
    }
    callback();
  }
}
