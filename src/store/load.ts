// SPDX-License-Identifier: Apache-2.0
// Loads images into the store from an OCI image layout (directory or tar) or a `docker save` archive, in one streaming pass.

import { open, readFile, stat } from 'node:fs/promises';
import { addAbortSignal, type Readable } from 'node:stream';
import { SandboxError } from '../errors.js';
import {
  formatPlatform, hostPlatform, indexTypes, invalid, isRecord, manifestTypes, matchesPlatform, maxJsonBlobBytes,
  parseConfigBlob, parseIndex, parseJson, parseManifest, parsePlatform, type BlobRef, type Descriptor, type Platform,
} from '../image/manifest.js';
import { formatReference, parseReference } from '../registry/reference.js';
import { Staging } from './load-staging.js';
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
 *   the archive, a missing blob), ERR_DIGEST_MISMATCH, ERR_UNSUPPORTED (zstd layers, non-sha256
 *   digests), ERR_IMAGE_NOT_FOUND (no image for the platform, no such directory or file),
 *   ERR_INVALID_OPTION (bad reference or platform, an image without a name), ERR_CANCELED.
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
