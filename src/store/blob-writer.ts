// SPDX-License-Identifier: Apache-2.0
// Writes one blob into the store: a temp file beside its place, hashed as it grows, renamed there only when its digest matches.

import { createHash, type Hash } from 'node:crypto';
import { open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { SandboxError } from '../errors.js';
import { digestHex } from '../image/digest.js';
import { tempName } from '../image/temp-name.js';
import type { BlobRef } from '../image/manifest.js';

/** @internal `<root>/blobs/sha256`. */
export function blobsDir(root: string): string {
  return join(root, 'blobs', 'sha256');
}

/** @internal Where the store keeps a blob. */
export function blobPath(root: string, digest: string): string {
  return join(blobsDir(root), digestHex(digest, 'blob'));
}

/** @internal Whether the store has `blob` (a file of its size; content is checked whenever it is read). */
export async function hasBlob(root: string, blob: BlobRef): Promise<boolean> {
  try {
    return (await stat(blobPath(root, blob.digest))).size === blob.size;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

/**
 * @internal A blob being written. Bytes go to `blobs/sha256/.tmp-<owner>-<random>` ({@link tempName}) and into a sha256
 * as they are written; {@link commit} renames the file to `blobs/sha256/<hex>` only when size
 * and digest match, so a reader never sees a partial or wrong blob. Written bytes stay across
 * a broken transfer, so it can resume where it stopped ({@link written}), or start over
 * ({@link reset}).
 */
export class BlobWriter {
  readonly #blob: BlobRef;
  readonly #final: string;
  readonly #temp: string;
  readonly #handle: FileHandle;
  #hash: Hash = createHash('sha256');
  #written = 0;

  private constructor(blob: BlobRef, final: string, temp: string, handle: FileHandle) {
    this.#blob = blob;
    this.#final = final;
    this.#temp = temp;
    this.#handle = handle;
  }

  /** Starts writing `blob` into the store at `root`. */
  static async create(root: string, blob: BlobRef): Promise<BlobWriter> {
    const final = blobPath(root, blob.digest);
    const temp = join(blobsDir(root), tempName());
    return new BlobWriter(blob, final, temp, await open(temp, 'wx', 0o644));
  }

  /** Bytes written so far. */
  get written(): number {
    return this.#written;
  }

  /**
   * Appends `chunk`.
   * @throws SandboxError ERR_DIGEST_MISMATCH when the blob grows past its declared size.
   */
  async write(chunk: Uint8Array): Promise<void> {
    if (this.#written + chunk.length > this.#blob.size) throw this.#mismatch(`more than ${this.#blob.size} bytes`);
    for (let offset = 0; offset < chunk.length; ) {
      const { bytesWritten } = await this.#handle.write(chunk, offset, chunk.length - offset, this.#written + offset);
      offset += bytesWritten;
    }
    this.#hash.update(chunk);
    this.#written += chunk.length;
  }

  /** Drops what was written, to start over. */
  async reset(): Promise<void> {
    await this.#handle.truncate(0);
    this.#hash = createHash('sha256');
    this.#written = 0;
  }

  /**
   * Publishes the blob under its digest.
   * @throws SandboxError ERR_DIGEST_MISMATCH (and removes the temp file) when size or digest differ.
   */
  async commit(): Promise<void> {
    const digest = `sha256:${this.#hash.digest('hex')}`;
    if (this.#written !== this.#blob.size || digest !== this.#blob.digest) {
      await this.discard();
      throw this.#mismatch(`${this.#written} bytes with digest ${digest}`);
    }
    await this.#handle.sync();
    await this.#handle.close();
    // Another pull may have published the same blob meanwhile: same bytes, so replacing it is harmless.
    await rename(this.#temp, this.#final);
  }

  /** Removes the temp file; safe to call more than once. */
  async discard(): Promise<void> {
    await this.#handle.close().catch(() => {});
    await rm(this.#temp, { force: true });
  }

  #mismatch(got: string): SandboxError {
    return new SandboxError('ERR_DIGEST_MISMATCH', `Blob ${this.#blob.digest} (${this.#blob.size} bytes) does not match its digest: received ${got}`);
  }
}
