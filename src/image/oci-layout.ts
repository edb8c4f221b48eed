// SPDX-License-Identifier: Apache-2.0
// Reads an OCI image layout directory: picks one image manifest, returns its config and layers, digest-checked.

import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { SandboxError } from '../errors.js';
import { digestHex, sha256, Sha256Stream } from './digest.js';
import { parseImageConfig, type ImageConfig } from './image-config.js';

/** How a layer blob is compressed. */
export type LayerCompression = 'gzip' | 'none';

/** A content-addressed blob in `blobs/sha256/`. */
export interface BlobRef {
  /** `sha256:<hex>` */
  digest: string;
  /** Size in bytes, as the referring descriptor declares it. */
  size: number;
}

/** One layer of an image, bottom to top, with what its uncompressed tar must hash to. */
export interface LayerRef extends BlobRef {
  compression: LayerCompression;
  /** `sha256:<hex>` of the uncompressed tar, from the config's `rootfs.diff_ids`. */
  diffId: string;
}

/** An image read from a layout: its manifest digest, runtime config and layers. */
export interface OciImage {
  /** Digest of the image manifest (not of an index that led to it). */
  digest: string;
  config: ImageConfig;
  /** Bottom layer first. */
  layers: LayerRef[];
}

interface Descriptor extends BlobRef {
  mediaType: string;
  annotations: Record<string, string>;
  platform?: { os: string; architecture: string; variant?: string };
}

const refNameAnnotation = 'org.opencontainers.image.ref.name';
const indexTypes = new Set([
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
]);
const manifestTypes = new Set([
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
]);
const configTypes = new Set([
  'application/vnd.oci.image.config.v1+json',
  'application/vnd.docker.container.image.v1+json',
]);
const layerTypes = new Map<string, LayerCompression>([
  ['application/vnd.oci.image.layer.v1.tar', 'none'],
  ['application/vnd.oci.image.layer.v1.tar+gzip', 'gzip'],
  ['application/vnd.oci.image.layer.nondistributable.v1.tar', 'none'],
  ['application/vnd.oci.image.layer.nondistributable.v1.tar+gzip', 'gzip'],
  ['application/vnd.docker.image.rootfs.diff.tar', 'none'],
  ['application/vnd.docker.image.rootfs.diff.tar.gzip', 'gzip'],
  ['application/vnd.docker.image.rootfs.foreign.diff.tar', 'none'],
  ['application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', 'gzip'],
]);
// Manifests and configs are small; a huge declared size is a broken or hostile image.
const maxJsonBlobBytes = 4 * 1024 * 1024;
// An index may point at an index; real images nest at most once.
const maxIndexDepth = 4;
// process.arch → GOARCH, the names image platforms use.
const goArch: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64', loong64: 'loong64' };

/**
 * Reads the image in an OCI image layout directory. With `tag`, picks the manifest whose
 * `org.opencontainers.image.ref.name` annotation equals it; without, the only one. An image
 * index (or Docker manifest list) on the way is resolved to the linux manifest for this host's
 * architecture. Manifest and config blobs are digest-checked; layer blobs are checked when
 * streamed through {@link openBlob}.
 *
 * @throws SandboxError ERR_IMAGE_NOT_FOUND (no layout, tag, platform or blob),
 *   ERR_IMAGE_INVALID (malformed JSON or structure), ERR_DIGEST_MISMATCH, ERR_UNSUPPORTED
 *   (zstd layers, unknown media types, non-sha256 digests).
 *
 * @example
 * ```ts
 * const image = await readOciImage('./busybox-oci', { tag: 'latest' });
 * console.log(image.digest, image.layers.length, image.config.cmd);
 * ```
 */
export async function readOciImage(layoutDir: string, options: { tag?: string } = {}): Promise<OciImage> {
  const layoutFile = await readJsonFile(join(layoutDir, 'oci-layout'), `No OCI image layout at ${layoutDir}`);
  if (!isRecord(layoutFile) || typeof layoutFile.imageLayoutVersion !== 'string') {
    throw new SandboxError('ERR_IMAGE_INVALID', `${join(layoutDir, 'oci-layout')}: no imageLayoutVersion`);
  }
  const indexPath = join(layoutDir, 'index.json');
  const index = await readJsonFile(indexPath, `OCI image layout ${layoutDir} has no index.json`);
  let descriptor = pickFromLayoutIndex(parseIndex(index, indexPath), options.tag, layoutDir);
  for (let depth = 0; indexTypes.has(descriptor.mediaType); depth++) {
    if (depth === maxIndexDepth) throw new SandboxError('ERR_IMAGE_INVALID', `Image index ${descriptor.digest}: nested too deeply`);
    const where = `Image index ${descriptor.digest}`;
    descriptor = pickForHost(parseIndex(await readJsonBlob(layoutDir, descriptor, 'image index'), where), where);
  }
  if (!manifestTypes.has(descriptor.mediaType)) {
    throw new SandboxError('ERR_UNSUPPORTED', `Manifest ${descriptor.digest}: media type \`${descriptor.mediaType}\` is not supported`);
  }
  return readManifest(layoutDir, descriptor.digest, await readJsonBlob(layoutDir, descriptor, 'manifest'));
}

/**
 * Opens a blob of the layout as a stream that fails with ERR_DIGEST_MISMATCH when its
 * content does not match `blob` (checked as it streams: size on every chunk, digest at the end).
 *
 * @throws SandboxError ERR_IMAGE_NOT_FOUND when the blob file is missing (emitted as a stream error).
 *
 * @example
 * ```ts
 * await pipeline(openBlob(layoutDir, layer, 'layer'), createGunzip(), tarParser);
 * ```
 */
export function openBlob(layoutDir: string, blob: BlobRef, what: string): Readable {
  const path = blobPath(layoutDir, blob.digest);
  const check = new Sha256Stream({
    onChunk: (bytes) => {
      if (bytes > blob.size) throw mismatch(blob, what, path);
    },
    onEnd: (digest, bytes) => {
      if (digest !== blob.digest || bytes !== blob.size) throw mismatch(blob, what, path);
    },
  });
  const file = createReadStream(path);
  file.on('error', (error) => check.destroy(isNotFound(error) ? missingBlob(blob, what, path) : error));
  check.on('close', () => file.destroy());
  return file.pipe(check);
}

/**
 * Reads a whole blob and throws ERR_DIGEST_MISMATCH (or ERR_IMAGE_NOT_FOUND) if it is not
 * intact. Used to name a corrupt blob as the cause when corruption first broke gunzip or tar.
 *
 * @example
 * ```ts
 * await assertBlobIntact(layoutDir, layer, 'layer');
 * ```
 */
export async function assertBlobIntact(layoutDir: string, blob: BlobRef, what: string): Promise<void> {
  await pipeline(openBlob(layoutDir, blob, what), new Writable({ write: (_chunk, _encoding, callback) => callback() }));
}

function blobPath(layoutDir: string, digest: string): string {
  return join(layoutDir, 'blobs', 'sha256', digestHex(digest, 'blob'));
}

async function readManifest(layoutDir: string, digest: string, manifest: unknown): Promise<OciImage> {
  const where = `Manifest ${digest}`;
  if (!isRecord(manifest) || !Array.isArray(manifest.layers)) throw invalid(where, 'no `layers` array');
  const configDescriptor = parseDescriptor(manifest.config, `${where} config`);
  if (!configTypes.has(configDescriptor.mediaType)) {
    throw new SandboxError('ERR_UNSUPPORTED', `${where}: config media type \`${configDescriptor.mediaType}\` is not supported`);
  }
  const layers = manifest.layers.map((layer, i) => parseDescriptor(layer, `${where} layer ${i}`));
  const configBlob = await readJsonBlob(layoutDir, configDescriptor, 'config');
  if (!isRecord(configBlob)) throw invalid(`Image config ${configDescriptor.digest}`, 'not an object');
  const diffIds = parseDiffIds(configBlob.rootfs, configDescriptor.digest, layers.length);
  return {
    digest,
    config: parseImageConfig(configBlob.config, configDescriptor.digest),
    layers: layers.map((layer, i) => ({ digest: layer.digest, size: layer.size, compression: layerCompression(layer), diffId: diffIds[i] })),
  };
}

function parseDiffIds(rootfs: unknown, configDigest: string, layerCount: number): string[] {
  const where = `Image config ${configDigest}`;
  if (!isRecord(rootfs) || !Array.isArray(rootfs.diff_ids)) throw invalid(where, 'no `rootfs.diff_ids` array');
  if (rootfs.diff_ids.length !== layerCount) {
    throw invalid(where, `${rootfs.diff_ids.length} diff_ids for ${layerCount} layers`);
  }
  return rootfs.diff_ids.map((diffId: unknown) => `sha256:${digestHex(diffId, `${where} diff_id`)}`);
}

function layerCompression(layer: Descriptor): LayerCompression {
  const compression = layerTypes.get(layer.mediaType);
  if (compression) return compression;
  if (layer.mediaType.endsWith('zstd')) {
    throw new SandboxError('ERR_UNSUPPORTED', `Layer ${layer.digest} is zstd-compressed (\`${layer.mediaType}\`); zstd layers are not supported (Node 20 has no zstd decompressor)`);
  }
  throw new SandboxError('ERR_UNSUPPORTED', `Layer ${layer.digest}: media type \`${layer.mediaType}\` is not supported`);
}

function pickFromLayoutIndex(manifests: Descriptor[], tag: string | undefined, layoutDir: string): Descriptor {
  const tagged = tag === undefined ? manifests : manifests.filter((m) => m.annotations[refNameAnnotation] === tag);
  if (tagged.length === 0) {
    const tags = manifests.map((m) => m.annotations[refNameAnnotation]).filter((t) => t !== undefined);
    const known = tags.length > 0 ? ` (tags: ${tags.join(', ')})` : '';
    throw new SandboxError('ERR_IMAGE_NOT_FOUND', tag === undefined ? `OCI image layout ${layoutDir} lists no images` : `No image tagged \`${tag}\` in ${layoutDir}${known}`);
  }
  const forHost = tagged.filter(matchesHost);
  if (tag === undefined && forHost.length > 1) {
    throw new SandboxError('ERR_IMAGE_NOT_FOUND', `OCI image layout ${layoutDir} lists ${forHost.length} images; pass a tag to pick one`);
  }
  if (forHost.length === 0) throw noImageForHost(`OCI image layout ${layoutDir}`);
  return forHost[0];
}

function pickForHost(manifests: Descriptor[], where: string): Descriptor {
  const match = manifests.find(matchesHost);
  if (!match) throw noImageForHost(where);
  return match;
}

function noImageForHost(where: string): SandboxError {
  return new SandboxError('ERR_IMAGE_NOT_FOUND', `${where}: no image for linux/${hostArch()}`);
}

function matchesHost({ platform }: Descriptor): boolean {
  if (!platform) return true;
  if (platform.os !== 'linux' || platform.architecture !== hostArch()) return false;
  return platform.architecture !== 'arm64' || platform.variant === undefined || platform.variant === 'v8';
}

function hostArch(): string {
  return goArch[process.arch] ?? process.arch;
}

function parseIndex(index: unknown, where: string): Descriptor[] {
  if (!isRecord(index) || !Array.isArray(index.manifests)) throw invalid(where, 'no `manifests` array');
  return index.manifests.map((manifest, i) => parseDescriptor(manifest, `${where} manifests[${i}]`));
}

function parseDescriptor(value: unknown, where: string): Descriptor {
  if (!isRecord(value)) throw invalid(where, 'not a descriptor');
  const { mediaType, digest, size, annotations = {}, platform } = value;
  if (typeof mediaType !== 'string') throw invalid(where, 'no mediaType');
  if (!Number.isSafeInteger(size) || (size as number) < 0) throw invalid(where, `bad size ${JSON.stringify(size)}`);
  if (!isRecord(annotations)) throw invalid(where, 'bad annotations');
  if (platform !== undefined && (!isRecord(platform) || typeof platform.os !== 'string' || typeof platform.architecture !== 'string')) {
    throw invalid(where, 'bad platform');
  }
  return {
    mediaType,
    digest: `sha256:${digestHex(digest, where)}`,
    size: size as number,
    annotations: annotations as Record<string, string>,
    ...(platform && { platform: platform as NonNullable<Descriptor['platform']> }),
  };
}

async function readJsonFile(path: string, missing: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if (isNotFound(error)) throw new SandboxError('ERR_IMAGE_NOT_FOUND', `${missing} (${path})`, { cause: error });
    throw error;
  }
  return parseJson(text, path);
}

async function readJsonBlob(layoutDir: string, blob: Descriptor, what: string): Promise<unknown> {
  const path = blobPath(layoutDir, blob.digest);
  if (blob.size > maxJsonBlobBytes) throw invalid(`${what} ${blob.digest}`, `declared size ${blob.size} is too large`);
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    if (isNotFound(error)) throw missingBlob(blob, what, path, error);
    throw error;
  }
  if (bytes.length !== blob.size || sha256(bytes) !== blob.digest) throw mismatch(blob, what, path);
  return parseJson(bytes.toString('utf8'), `${what} ${blob.digest}`);
}

function parseJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new SandboxError('ERR_IMAGE_INVALID', `${where}: malformed JSON (${(error as Error).message})`, { cause: error });
  }
}

function mismatch(blob: BlobRef, what: string, path: string): SandboxError {
  return new SandboxError('ERR_DIGEST_MISMATCH', `The ${what} blob ${blob.digest} (${blob.size} bytes) does not match its digest: ${path}`);
}

function missingBlob(blob: BlobRef, what: string, path: string, cause?: unknown): SandboxError {
  return new SandboxError('ERR_IMAGE_NOT_FOUND', `The ${what} blob ${blob.digest} is missing: ${path}`, { cause });
}

function invalid(where: string, problem: string): SandboxError {
  return new SandboxError('ERR_IMAGE_INVALID', `${where}: ${problem}`);
}

function isNotFound(error: unknown): boolean {
  return (error as NodeJS.ErrnoException)?.code === 'ENOENT';
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
