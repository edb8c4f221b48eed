// SPDX-License-Identifier: Apache-2.0
// Loads images into the store from an OCI image layout (directory or tar) or a `docker save` archive, in one streaming pass.

import { open, readFile, stat } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { addAbortSignal, type Readable } from 'node:stream';
import { Parser, type ReadEntry } from 'tar';
import { SandboxError } from '../errors.js';
import { digestHex, sha256 } from '../image/digest.js';
import { untar } from '../image/layer-unpack.js';
import {
  formatPlatform, hostPlatform, indexTypes, invalid, isRecord, manifestTypes, matchesPlatform, maxJsonBlobBytes,
  parseConfigBlob, parseIndex, parseJson, parseManifest, parsePlatform, type BlobRef, type Descriptor, type Platform,
} from '../image/manifest.js';
import { openBlob, readJsonBlob } from '../image/oci-layout.js';
import { formatReference, parseReference } from '../registry/reference.js';
import { BlobWriter, hasBlob } from './blob-writer.js';
import { withLock } from './lock.js';
import { readReferences, writeReferences, type ImageRecord } from './references.js';

/**
 * Options of {@link ImageStore.load}.
 *
 * @example
 * ```ts
 * await store.load('./app.tar', { reference: 'localhost/app:1' });
 * ```
 */
export interface LoadOptions {
  /**
   * A name for the loaded image. `name:tag` names the one image of the input (an input with
   * several is refused), in addition to the names the input gives. A name without a tag
   * completes the names an OCI layout gives as a tag alone (`org.opencontainers.image.ref.name`
   * = `v1`, as `umoci` and `skopeo copy … oci:DIR:v1` write it) into `name:v1`, and names an
   * image without any name `name:latest`.
   */
  reference?: string;
  /** `os/arch[/variant]` to take from a multi-platform image; default linux and this host's architecture. */
  platform?: string;
  /** Aborts the load (ERR_CANCELED); nothing of it stays in the store. */
  signal?: AbortSignal;
}

/** @internal An image found in the input: its manifest, the blobs it needs, and its names. */
interface LoadedImage {
  record: ImageRecord;
  blobs: BlobRef[];
  names: string[];
}

const refNameAnnotation = 'org.opencontainers.image.ref.name';
const imageNameAnnotation = 'io.containerd.image.name';
const tagPattern = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
// Files of the input read into memory; everything else is a blob, staged on disk.
const metadataFiles = new Set(['oci-layout', 'index.json', 'manifest.json', 'repositories']);
const blobPathPattern = /^blobs\/sha256\/([a-f0-9]{64})$/;
const maxLinkHops = 16;
const ociManifestType = 'application/vnd.oci.image.manifest.v1+json';
const ociConfigType = 'application/vnd.oci.image.config.v1+json';

/**
 * @internal Loads the images of `input` (a directory holding an OCI image layout, a tar of one,
 * a `docker save` archive, gzip-compressed or not, as a path or a stream) into the store at `root`
 * and records their names. Returns the manifest records, one per image.
 *
 * A tar is read once, as it streams: each blob goes to a temp file of the store, hashed as it
 * is written; nothing becomes visible until the whole input has been read and every image in
 * it checked (manifests, configs, every blob present with its digest). Then the blobs are
 * published and the names recorded in one step under the store lock. On any failure every
 * temp file is removed.
 *
 * @throws SandboxError ERR_IMAGE_INVALID (not a layout or archive, bad JSON, a path that leaves
 *   the archive, a missing blob, an image without a name), ERR_DIGEST_MISMATCH, ERR_UNSUPPORTED
 *   (zstd layers, non-sha256 digests), ERR_IMAGE_NOT_FOUND (no image for the platform, no such
 *   directory or file), ERR_INVALID_OPTION (bad reference or platform), ERR_CANCELED.
 */
export async function loadImages(root: string, input: string | Readable, options: LoadOptions): Promise<ImageRecord[]> {
  const where = typeof input === 'string' ? input : 'the input stream';
  const platform = options.platform === undefined ? hostPlatform() : parsePlatform(options.platform);
  const naming = parseNaming(options.reference);
  const staging = new Staging(root, where, options.signal);
  try {
    if (typeof input === 'string' && (await isDirectory(input))) {
      await staging.readLayoutDir(input);
    } else {
      const stream = typeof input === 'string' ? await openInput(input) : input;
      await staging.readArchive(options.signal ? addAbortSignal(options.signal, stream) : stream);
    }
    options.signal?.throwIfAborted();
    const images = staging.has('manifest.json') ? await dockerImages(staging) : await ociImages(staging, platform);
    if (images.length === 0) throw new SandboxError('ERR_IMAGE_NOT_FOUND', `${where} holds no image for ${formatPlatform(platform)}`);
    nameImages(images, naming, where);
    await withLock(root, options.signal, async () => {
      for (const image of images) for (const blob of image.blobs) await staging.publish(blob);
      const references = await readReferences(root);
      for (const image of images) for (const name of image.names) references.set(name, image.record);
      await writeReferences(root, references);
    });
    return images.map((image) => image.record);
  } catch (error) {
    if (options.signal?.aborted) throw new SandboxError('ERR_CANCELED', `Loading ${where} was canceled`, { cause: options.signal.reason });
    throw error;
  } finally {
    await staging.discard();
  }
}

/** What `reference` says: a full name for the one image, or a repository for tags the input gives alone. */
type Naming = { kind: 'none' } | { kind: 'image'; name: string } | { kind: 'repository'; repository: string };

function parseNaming(reference: string | undefined): Naming {
  if (reference === undefined) return { kind: 'none' };
  const parsed = parseReference(reference);
  if (parsed.digest) throw new SandboxError('ERR_INVALID_OPTION', `Invalid image store argument: reference \`${reference}\` names a digest; a loaded image is named by name:tag`);
  const lastColon = reference.lastIndexOf(':');
  const hasTag = lastColon > reference.lastIndexOf('/');
  return hasTag ? { kind: 'image', name: formatReference(parsed) } : { kind: 'repository', repository: `${parsed.registry}/${parsed.repository}` };
}

/**
 * Turns each image's names as the input gave them (full references, or bare tags prefixed
 * `tag:`) into store keys, adds `name@<manifest digest>` for each, and applies `reference`.
 */
function nameImages(images: LoadedImage[], naming: Naming, where: string): void {
  if (naming.kind === 'image' && images.length !== 1) {
    throw new SandboxError('ERR_INVALID_OPTION', `Invalid image store argument: reference \`${naming.name}\` names one image, but ${where} holds ${images.length}`);
  }
  for (const image of images) {
    const full = new Set<string>();
    for (const name of image.names) {
      if (!name.startsWith('tag:')) full.add(name);
      else if (naming.kind === 'repository') full.add(`${naming.repository}:${name.slice(4)}`);
    }
    if (naming.kind === 'image') full.add(naming.name);
    if (naming.kind === 'repository' && full.size === 0) full.add(`${naming.repository}:latest`);
    if (full.size === 0) {
      const tags = image.names.map((name) => name.slice(4));
      const given = tags.length > 0 ? ` (only the tag \`${tags.join('`, `')}\`)` : '';
      throw new SandboxError('ERR_INVALID_OPTION', `The image ${image.record.digest} in ${where} has no name${given}: name it with \`reference\` (\`nsbox load -t NAME\`), e.g. \`example.com/app\` or \`example.com/app:1\``);
    }
    const withDigests = new Set(full);
    for (const name of full) withDigests.add(`${name.slice(0, name.lastIndexOf(':'))}@${image.record.digest}`);
    image.names = [...withDigests];
  }
}

/** The names an OCI index entry gives: a full reference, else `tag:<tag>` for a bare tag. */
function namesOfDescriptor(descriptor: Descriptor, where: string): string[] {
  const names: Array<string | undefined> = [];
  const full = descriptor.annotations[imageNameAnnotation];
  const refName = descriptor.annotations[refNameAnnotation];
  if (typeof full === 'string') names.push(canonicalName(full, where));
  if (typeof refName === 'string' && refName !== '') {
    // A bare tag (docker save writes one beside the full name in io.containerd.image.name).
    if (tagPattern.test(refName)) names.push(names.length === 0 ? `tag:${refName}` : undefined);
    else names.push(canonicalName(refName, where));
  }
  return names.filter((name) => name !== undefined);
}

// The store key of a name the input gives; a `name@digest` names nothing new (the digest form is added anyway).
function canonicalName(text: string, where: string): string | undefined {
  let parsed;
  try {
    parsed = parseReference(text);
  } catch (error) {
    throw new SandboxError('ERR_IMAGE_INVALID', `${where}: the image name \`${text}\` is not a valid reference`, { cause: error });
  }
  return parsed.digest ? undefined : formatReference(parsed);
}

/** The images of an OCI image layout: each entry of index.json, resolved through nested indexes to `platform`. */
async function ociImages(staging: Staging, platform: Platform): Promise<LoadedImage[]> {
  const { where } = staging;
  if (!staging.has('oci-layout') || !staging.has('index.json')) {
    throw new SandboxError('ERR_IMAGE_INVALID', `${where} is neither an OCI image layout nor a docker save archive (it has no ${staging.has('oci-layout') ? 'index.json' : 'oci-layout'} and no manifest.json)`);
  }
  const layout = parseJson(staging.text('oci-layout'), `${where}: oci-layout`);
  if (!isRecord(layout) || typeof layout.imageLayoutVersion !== 'string') throw invalid(`${where}: oci-layout`, 'no imageLayoutVersion');
  const byManifest = new Map<string, LoadedImage>();
  for (const entry of parseIndex(parseJson(staging.text('index.json'), `${where}: index.json`), `${where}: index.json`)) {
    if (!matchesPlatform(entry, platform)) continue;
    let descriptor: Descriptor | undefined = entry;
    const blobs: BlobRef[] = [];
    for (let depth = 0; descriptor && indexTypes.has(descriptor.mediaType); depth++) {
      if (depth === 4) throw invalid(`Image index ${descriptor.digest}`, 'nested too deeply');
      blobs.push(descriptor);
      const children = parseIndex(await staging.readJson(descriptor, 'image index'), `Image index ${descriptor.digest}`);
      descriptor = children.find((child) => matchesPlatform(child, platform));
    }
    // An index without this platform: the input has this image only for others.
    if (!descriptor) continue;
    if (!manifestTypes.has(descriptor.mediaType)) {
      throw new SandboxError('ERR_UNSUPPORTED', `${where}: manifest ${descriptor.digest} has the media type \`${descriptor.mediaType}\`, which is not supported`);
    }
    const manifest = parseManifest(await staging.readJson(descriptor, 'manifest'), `Manifest ${descriptor.digest}`);
    const configBlob = await staging.readJson(manifest.config, 'config');
    const { layers } = parseConfigBlob(configBlob, manifest);
    // An entry without a platform (a plain tagged manifest) is for the platform its config names.
    if (isRecord(configBlob) && typeof configBlob.os === 'string' && typeof configBlob.architecture === 'string') {
      const variant = typeof configBlob.variant === 'string' ? { variant: configBlob.variant } : {};
      if (!matchesPlatform({ ...descriptor, platform: { os: configBlob.os, architecture: configBlob.architecture, ...variant } }, platform)) continue;
    }
    for (const layer of layers) await staging.require(layer, 'layer');
    const record = { digest: descriptor.digest, size: descriptor.size };
    const image = byManifest.get(record.digest) ?? { record, blobs: [descriptor, manifest.config, ...layers], names: [] };
    image.names.push(...namesOfDescriptor(entry, where));
    byManifest.set(record.digest, image);
  }
  return [...byManifest.values()];
}

/**
 * The images of a `docker save` archive (manifest.json: Config, RepoTags, Layers). The store
 * keeps them as OCI images: an OCI manifest is written for each, its layers as the archive
 * has them (uncompressed tars, whose digest is their diffID, which is checked here).
 */
async function dockerImages(staging: Staging): Promise<LoadedImage[]> {
  const { where } = staging;
  const manifestFile = `${where}: manifest.json`;
  const items = parseJson(staging.text('manifest.json'), manifestFile);
  if (!Array.isArray(items)) throw invalid(manifestFile, 'not an array');
  const images: LoadedImage[] = [];
  for (const [i, item] of items.entries()) {
    const at = `${manifestFile} [${i}]`;
    if (!isRecord(item) || typeof item.Config !== 'string' || !Array.isArray(item.Layers) || !item.Layers.every((l) => typeof l === 'string')) {
      throw invalid(at, 'needs Config (a path) and Layers (an array of paths)');
    }
    const repoTags = item.RepoTags ?? [];
    if (!Array.isArray(repoTags) || !repoTags.every((t) => typeof t === 'string')) throw invalid(at, 'RepoTags is not an array of names');
    const config = await staging.file(item.Config, at);
    if (config.size > maxJsonBlobBytes) throw invalid(at, `the config ${item.Config} is larger than ${maxJsonBlobBytes} bytes`);
    const configJson = parseJson((await readFile(staging.pathOf(config))).toString('utf8'), `${where}: ${item.Config}`);
    const layers: Array<BlobRef & { mediaType: string }> = [];
    for (const path of item.Layers as string[]) {
      const layer = await staging.file(path, at);
      layers.push({ ...layer, mediaType: await layerMediaType(staging.pathOf(layer), `${where}: ${path}`) });
    }
    const configRef = { mediaType: ociConfigType, digest: config.digest, size: config.size };
    const manifest = { schemaVersion: 2, mediaType: ociManifestType, config: configRef, layers };
    const parsed = parseManifest(manifest, `${where}: image ${i}`);
    const { layers: checked } = parseConfigBlob(configJson, parsed);
    for (const [n, layer] of checked.entries()) {
      // An uncompressed layer's digest is its diffID: a mismatch is a layer that is not what the config says.
      if (layer.compression === 'none' && layer.digest !== layer.diffId) {
        throw new SandboxError('ERR_DIGEST_MISMATCH', `${where}: layer ${n} (${(item.Layers as string[])[n]}) is ${layer.digest}, but the image config says its diff_id is ${layer.diffId}`);
      }
    }
    const bytes = Buffer.from(JSON.stringify(manifest));
    const record = await staging.stageBytes(bytes);
    images.push({ record, blobs: [record, config, ...layers], names: repoTags.map((tag) => canonicalName(tag as string, `${where}: RepoTags`)).filter((name) => name !== undefined) });
  }
  return images;
}

// gzip or plain tar by the first bytes, as `docker load` tells them apart.
async function layerMediaType(path: string, where: string): Promise<string> {
  const handle = await open(path, 'r');
  const head = Buffer.alloc(4);
  try {
    await handle.read(head, 0, 4, 0);
  } finally {
    await handle.close();
  }
  if (head[0] === 0x1f && head[1] === 0x8b) return 'application/vnd.oci.image.layer.v1.tar+gzip';
  if (head.readUInt32BE(0) === 0x28b52ffd) throw new SandboxError('ERR_UNSUPPORTED', `${where}: the layer is zstd-compressed; zstd layers are not supported (Node 20 has no zstd decompressor)`);
  return 'application/vnd.oci.image.layer.v1.tar';
}

/**
 * The input as the store sees it while loading: small metadata files in memory, blobs in temp
 * files of the store (sealed: hashed, their digest known), archive symlinks and hard links as
 * aliases. Blobs are published only by {@link publish}; {@link discard} removes the rest.
 */
class Staging {
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

  has(name: string): boolean {
    return this.#metadata.has(name);
  }

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

async function openInput(path: string): Promise<Readable> {
  // Opened here so that a missing file is a clear error rather than a stream error.
  const handle = await open(path, 'r').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') throw new SandboxError('ERR_IMAGE_NOT_FOUND', `No image archive or layout at ${path}`, { cause: error });
    throw error;
  });
  return handle.createReadStream();
}

async function isDirectory(path: string): Promise<boolean> {
  return stat(path).then((s) => s.isDirectory(), () => false);
}

async function isFile(path: string): Promise<boolean> {
  return stat(path).then((s) => s.isFile(), () => false);
}
