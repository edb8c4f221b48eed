// SPDX-License-Identifier: Apache-2.0
// Writes one blob into the store: a temp file beside its place, hashed as it grows, renamed there only when its digest matches.

import { createHash, type Hash } from 'node:crypto';
import { open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { SandboxError } from '../errors.js';
import { digestHex } from '../image/digest.js';
import type { BlobRef } from '../image/manifest.js';
import { tempName } from '../image/temp-name.js';

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
 *
 * A blob whose digest is not known before its bytes (a layer of a `docker save` archive, a layer
 * commit makes) is created without a {@link BlobRef}: its digest is what its bytes hash to.
 * {@link seal} and {@link publish} split {@link commit} for a caller that checks a whole set of
 * blobs before publishing any (load: nothing of a bad archive may become visible).
 */
export class BlobWriter {
  readonly #root: string;
  readonly #blob: BlobRef | undefined;
  readonly #temp: string;
  readonly #handle: FileHandle;
  #hash: Hash = createHash('sha256');
  #written = 0;
  #sealed: BlobRef | undefined;

  private constructor(root: string, blob: BlobRef | undefined, temp: string, handle: FileHandle) {
    this.#root = root;
    this.#blob = blob;
    this.#temp = temp;
    this.#handle = handle;
  }

  /** Starts writing `blob` (or, without it, a blob whose digest its bytes decide) into the store at `root`. */
  static async create(root: string, blob?: BlobRef): Promise<BlobWriter> {
    if (blob) digestHex(blob.digest, 'blob');
    const temp = join(blobsDir(root), tempName());
    return new BlobWriter(root, blob, temp, await open(temp, 'wx', 0o644));
  }

  /** Bytes written so far. */
  get written(): number {
    return this.#written;
  }

  /** The temp file: readable once {@link seal}ed, until {@link publish} or {@link discard}. */
  get tempPath(): string {
    return this.#temp;
  }

  /**
   * Appends `chunk`.
   * @throws SandboxError ERR_DIGEST_MISMATCH when the blob grows past its declared size.
   */
  async write(chunk: Uint8Array): Promise<void> {
    if (this.#blob && this.#written + chunk.length > this.#blob.size) throw this.#mismatch(`more than ${this.#blob.size} bytes`);
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
   * Ends writing: checks size and digest against the declared blob, syncs and closes the temp
   * file. Returns the blob's digest and size.
   * @throws SandboxError ERR_DIGEST_MISMATCH (and removes the temp file) when size or digest differ.
   */
  async seal(): Promise<BlobRef> {
    if (this.#sealed) return this.#sealed;
    const digest = `sha256:${this.#hash.digest('hex')}`;
    if (this.#blob && (this.#written !== this.#blob.size || digest !== this.#blob.digest)) {
      await this.discard();
      throw this.#mismatch(`${this.#written} bytes with digest ${digest}`);
    }
    await this.#handle.sync();
    await this.#handle.close();
    this.#sealed = { digest, size: this.#written };
    return this.#sealed;
  }

  /** Renames the {@link seal}ed blob into place under its digest. */
  async publish(): Promise<void> {
    if (!this.#sealed) throw new Error('BlobWriter.publish() before seal()');
    // Another pull may have published the same blob meanwhile: same bytes, so replacing it is harmless.
    await rename(this.#temp, blobPath(this.#root, this.#sealed.digest));
  }

  /**
   * Publishes the blob under its digest: {@link seal}, then {@link publish}.
   * @throws SandboxError ERR_DIGEST_MISMATCH (and removes the temp file) when size or digest differ.
   */
  async commit(): Promise<BlobRef> {
    const blob = await this.seal();
    await this.publish();
    return blob;
  }

  /** Removes the temp file; safe to call more than once, also after {@link publish}. */
  async discard(): Promise<void> {
    await this.#handle.close().catch(() => {});
    await rm(this.#temp, { force: true });
  }

  #mismatch(got: string): SandboxError {
    const blob = this.#blob as BlobRef;
    return new SandboxError('ERR_DIGEST_MISMATCH', `Blob ${blob.digest} (${blob.size} bytes) does not match its digest: received ${got}`);
  }
}
