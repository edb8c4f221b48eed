// SPDX-License-Identifier: Apache-2.0
// The input of a load, staged: an archive read once into temp blobs of the store, or an OCI layout directory copied from as needed.

import { readFile, stat } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { Readable } from 'node:stream';
import { Parser, type ReadEntry } from 'tar';
import { SandboxError } from '../errors.js';
import { digestHex, sha256 } from '../image/digest.js';
import { untar } from '../image/layer-unpack.js';
import { invalid, maxJsonBlobBytes, parseJson, type BlobRef } from '../image/manifest.js';
import { openBlob, readJsonBlob } from '../image/oci-layout.js';
import { BlobWriter, hasBlob } from './blob-writer.js';

// Files of the input read into memory; everything else is a blob, staged on disk.
const metadataFiles = new Set(['oci-layout', 'index.json', 'manifest.json', 'repositories']);
const blobPathPattern = /^blobs\/sha256\/([a-f0-9]{64})$/;
const maxLinkHops = 16;

/**
 * @internal The input as the store sees it while loading: small metadata files in memory,
 * blobs in temp files of the store (sealed: hashed, their digest known), archive symlinks and
 * hard links as aliases. Blobs are published only by {@link publish}; {@link discard} removes
 * the rest.
 */
export class Staging {
  readonly #root: string;
  readonly where: string;
  readonly #metadata = new Map<string, Buffer>();
  /** Archive path → staged blob. */
  readonly #files = new Map<string, { writer: BlobWriter; blob: BlobRef }>();
  /** Archive path → the path it links to. */
  readonly #links = new Map<string, string>();
  /** Digest → staged blob, for blobs found by digest. */
  readonly #byDigest = new Map<string, { writer: BlobWriter; blob: BlobRef }>();
  readonly #writers: BlobWriter[] = [];
  readonly #signal: AbortSignal | undefined;
  /** An OCI layout directory given as input: blobs are copied from it when needed. */
  #layoutDir: string | undefined;

  constructor(root: string, where: string, signal: AbortSignal | undefined) {
    this.#root = root;
    this.where = where;
    this.#signal = signal;
  }

  /** Whether the input has the metadata file `name` (oci-layout, index.json, manifest.json). */
  has(name: string): boolean {
    return this.#metadata.has(name);
  }

  /** A metadata file the input {@link has}, as text. */
  text(name: string): string {
    return (this.#metadata.get(name) as Buffer).toString('utf8');
  }

  /** An OCI layout directory: reads its metadata; blobs are copied (and verified) when an image needs them. */
  async readLayoutDir(dir: string): Promise<void> {
    this.#layoutDir = dir;
    for (const name of ['oci-layout', 'index.json']) {
      const path = join(dir, name);
      const size = await stat(path).then((s) => s.size, () => undefined);
      if (size === undefined) throw new SandboxError('ERR_IMAGE_INVALID', `${dir} is a directory but not an OCI image layout (it has no ${name})`);
      if (size > maxJsonBlobBytes) throw invalid(path, `larger than ${maxJsonBlobBytes} bytes`);
      this.#metadata.set(name, await readFile(path));
    }
  }

  /** Reads a tar (gzip-compressed or not) once, staging every regular file that is not metadata. */
  async readArchive(stream: Readable): Promise<void> {
    const parser = new Parser({
      brotli: false,
      zstd: false,
      onwarn: (code: string, message: string) => {
        if (code !== 'TAR_BAD_ARCHIVE' || message !== 'Unrecognized archive format') parser.abort(invalid(this.where, `broken tar (${code}: ${message})`));
      },
    });
    parser.on('ignoredEntry', (entry: ReadEntry) => parser.abort(this.#bad(entry.path, `has an unsupported type (${entry.type})`)));
    await untar([stream], parser, (entry) => this.#entry(entry));
  }

  async #entry(entry: ReadEntry): Promise<void> {
    const path = this.#inside(entry.path, entry.path);
    switch (entry.type) {
      case 'Directory':
        return;
      case 'File':
      case 'OldFile':
      case 'ContiguousFile':
        return metadataFiles.has(path) ? this.#readMetadata(path, entry) : this.#stageEntry(path, entry);
      case 'SymbolicLink': {
        const linkpath = entry.linkpath ?? '';
        // Relative to the link's directory, and it must stay inside the archive.
        const target = posix.normalize(posix.join(posix.dirname(path), linkpath));
        if (linkpath.startsWith('/') || target === '..' || target.startsWith('../')) throw this.#bad(entry.path, `links to \`${linkpath}\`, outside the archive`);
        this.#links.set(path, target);
        return;
      }
      case 'Link':
        this.#links.set(path, this.#inside(entry.linkpath ?? '', entry.path));
        return;
      default:
        throw this.#bad(entry.path, `has an unsupported type (${entry.type})`);
    }
  }

  // A path of the archive without `./` and trailing `/`. One that could leave it (a `..`
  // component, an absolute path) is refused, as is an empty one.
  #inside(path: string, entryPath: string): string {
    const parts = path.split('/').filter((part) => part !== '' && part !== '.');
    if (path.startsWith('/') || parts.includes('..') || parts.length === 0) throw this.#bad(entryPath, path === entryPath ? 'leaves the archive' : `names \`${path}\`, outside the archive`);
    return parts.join('/');
  }

  async #readMetadata(path: string, entry: ReadEntry): Promise<void> {
    if ((entry.size ?? 0) > maxJsonBlobBytes) throw this.#bad(entry.path, `is larger than ${maxJsonBlobBytes} bytes`);
    const chunks: Buffer[] = [];
    for await (const chunk of entry) chunks.push(chunk as Buffer);
    this.#metadata.set(path, Buffer.concat(chunks));
  }

  // `blobs/sha256/<hex>` must hash to its name (checked as it is written); other files hash to whatever they are.
  async #stageEntry(path: string, entry: ReadEntry): Promise<void> {
    const named = blobPathPattern.exec(path);
    const writer = await this.#writer(named ? { digest: `sha256:${named[1]}`, size: entry.size ?? 0 } : undefined);
    for await (const chunk of entry) await writer.write(chunk as Buffer);
    const blob = await writer.seal();
    this.#files.set(path, { writer, blob });
    this.#byDigest.set(blob.digest, { writer, blob });
  }

  async #writer(blob?: BlobRef): Promise<BlobWriter> {
    const writer = await BlobWriter.create(this.#root, blob);
    this.#writers.push(writer);
    return writer;
  }

  /** The staged file at an archive path (following its links), as docker's manifest.json names it. */
  async file(path: string, where: string): Promise<BlobRef> {
    let current = this.#inside(path, path);
    for (let hops = 0; this.#links.has(current); hops++) {
      if (hops === maxLinkHops) throw invalid(where, `\`${path}\` is a chain of more than ${maxLinkHops} links`);
      current = this.#links.get(current) as string;
    }
    const staged = this.#files.get(current);
    if (!staged) throw invalid(where, `\`${path}\` is not in the archive`);
    return staged.blob;
  }

  /** The temp file of a staged blob. */
  pathOf(blob: BlobRef): string {
    return (this.#byDigest.get(blob.digest) as { writer: BlobWriter }).writer.tempPath;
  }

  /** Stages bytes made here (a manifest written for a docker image). */
  async stageBytes(bytes: Buffer): Promise<BlobRef> {
    const blob = { digest: sha256(bytes), size: bytes.length };
    const writer = await this.#writer(blob);
    await writer.write(bytes);
    await writer.seal();
    this.#byDigest.set(blob.digest, { writer, blob });
    return blob;
  }

  /**
   * Makes sure the input (or else the store) has `blob`: staged from a layout directory on
   * first use. Returns the staged copy, or undefined when the store already has it.
   * @throws SandboxError ERR_IMAGE_INVALID when neither has it, ERR_DIGEST_MISMATCH.
   */
  async require(blob: BlobRef, what: string): Promise<{ writer: BlobWriter; blob: BlobRef } | undefined> {
    this.#signal?.throwIfAborted();
    digestHex(blob.digest, `${this.where}: ${what}`);
    let staged = this.#byDigest.get(blob.digest);
    if (!staged && this.#layoutDir !== undefined && (await isFile(join(this.#layoutDir, 'blobs', 'sha256', digestHex(blob.digest, what))))) {
      const writer = await this.#writer(blob);
      for await (const chunk of openBlob(this.#layoutDir, blob, what)) await writer.write(chunk as Buffer);
      staged = { writer, blob: await writer.seal() };
      this.#byDigest.set(blob.digest, staged);
    }
    if (staged) {
      if (staged.blob.size !== blob.size) {
        throw new SandboxError('ERR_DIGEST_MISMATCH', `${this.where}: the ${what} blob ${blob.digest} has ${staged.blob.size} bytes, but its descriptor says ${blob.size}`);
      }
      return staged;
    }
    if (await hasBlob(this.#root, blob)) return undefined;
    throw new SandboxError('ERR_IMAGE_INVALID', `${this.where} lacks the ${what} blob ${blob.digest}`);
  }

  /** Reads a JSON blob (index, manifest, config) of the input, or of the store when the input lacks it. */
  async readJson(blob: BlobRef, what: string): Promise<unknown> {
    if (blob.size > maxJsonBlobBytes) throw invalid(`${this.where}: ${what} ${blob.digest}`, `declared size ${blob.size} is too large`);
    const staged = await this.require(blob, what);
    if (!staged) return readJsonBlob(this.#root, blob, what);
    return parseJson((await readFile(staged.writer.tempPath)).toString('utf8'), `${this.where}: ${what} ${blob.digest}`);
  }

  /** Publishes a blob an image needs (call under the store lock); one the store has stays as it is. */
  async publish(blob: BlobRef): Promise<void> {
    const staged = this.#byDigest.get(blob.digest);
    if (!staged || (await hasBlob(this.#root, blob))) return;
    await staged.writer.publish();
    this.#byDigest.delete(blob.digest);
  }

  /** Removes every temp file not published. */
  async discard(): Promise<void> {
    await Promise.all(this.#writers.map((writer) => writer.discard()));
  }

  #bad(path: string, problem: string): SandboxError {
    return new SandboxError('ERR_IMAGE_INVALID', `${this.where}: entry \`${path}\` ${problem}`);
  }
}



async function isFile(path: string): Promise<boolean> {
  return stat(path).then((s) => s.isFile(), () => false);
}
