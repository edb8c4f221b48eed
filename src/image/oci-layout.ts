// SPDX-License-Identifier: Apache-2.0
// Reads an OCI image layout directory: picks one image manifest, returns its config and layers, digest-checked.

import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { SandboxError } from '../errors.js';
import { digestHex, sha256, Sha256Stream } from './digest.js';
import type { ImageConfig } from './image-config.js';
import {
  formatPlatform, hostPlatform, indexTypes, invalid, isRecord, manifestTypes, matchesPlatform, maxJsonBlobBytes,
  parseConfigBlob, parseIndex, parseJson, parseManifest, type BlobRef, type Descriptor, type LayerRef,
} from './manifest.js';

export type { BlobRef, LayerCompression, LayerRef } from './manifest.js';

/** An image read from a layout: its manifest digest, runtime config and layers. */
export interface OciImage {
  /** Digest of the image manifest (not of an index that led to it). */
  digest: string;
  config: ImageConfig;
  /** Bottom layer first. */
  layers: LayerRef[];
}

const refNameAnnotation = 'org.opencontainers.image.ref.name';
// An index may point at an index; real images nest at most once.
const maxIndexDepth = 4;

/**
 * Reads the image in an OCI image layout directory. With `tag`, picks the manifest whose
 * `org.opencontainers.image.ref.name` annotation equals it; without, the only one. An image
 * index (or Docker manifest list) on the way is resolved to the linux manifest for this host's
 * architecture. Manifest and config blobs are digest-checked; layer blobs are checked when
 * streamed through {@link openBlob}.
 *
 * @throws SandboxError ERR_IMAGE_NOT_FOUND (no layout, tag, platform or blob),
 *   ERR_IMAGE_INVALID (malformed JSON or structure), ERR_DIGEST_MISMATCH, ERR_UNSUPPORTED
 *   (unknown media types, non-sha256 digests).
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
  const parsed = parseManifest(manifest, `Manifest ${digest}`);
  const { config, layers } = parseConfigBlob(await readJsonBlob(layoutDir, parsed.config, 'config'), parsed);
  return { digest, config, layers };
}

function pickFromLayoutIndex(manifests: Descriptor[], tag: string | undefined, layoutDir: string): Descriptor {
  const tagged = tag === undefined ? manifests : manifests.filter((m) => m.annotations[refNameAnnotation] === tag);
  if (tagged.length === 0) {
    const tags = manifests.map((m) => m.annotations[refNameAnnotation]).filter((t) => t !== undefined);
    const known = tags.length > 0 ? ` (tags: ${tags.join(', ')})` : '';
    throw new SandboxError('ERR_IMAGE_NOT_FOUND', tag === undefined ? `OCI image layout ${layoutDir} lists no images` : `No image tagged \`${tag}\` in ${layoutDir}${known}`);
  }
  const forHost = tagged.filter((m) => matchesPlatform(m, hostPlatform()));
  if (tag === undefined && forHost.length > 1) {
    throw new SandboxError('ERR_IMAGE_NOT_FOUND', `OCI image layout ${layoutDir} lists ${forHost.length} images; pass a tag to pick one`);
  }
  if (forHost.length === 0) throw noImageForHost(`OCI image layout ${layoutDir}`);
  return forHost[0];
}

function pickForHost(manifests: Descriptor[], where: string): Descriptor {
  const match = manifests.find((m) => matchesPlatform(m, hostPlatform()));
  if (!match) throw noImageForHost(where);
  return match;
}

function noImageForHost(where: string): SandboxError {
  return new SandboxError('ERR_IMAGE_NOT_FOUND', `${where}: no image for ${formatPlatform(hostPlatform())}`);
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

/**
 * Reads and parses a JSON blob (manifest, index, config) of a layout, or of any directory with
 * its `blobs/sha256/<hex>` form such as the image store, checking its size and digest.
 *
 * @param what - the kind of blob, for messages ('manifest', 'config').
 * @throws SandboxError ERR_IMAGE_NOT_FOUND (missing), ERR_DIGEST_MISMATCH, ERR_IMAGE_INVALID
 *   (malformed JSON, or a declared size over 4 MiB).
 *
 * @example
 * ```ts
 * const manifest = await readJsonBlob(storeRoot, { digest: 'sha256:…', size: 503 }, 'manifest');
 * ```
 */
export async function readJsonBlob(layoutDir: string, blob: BlobRef, what: string): Promise<unknown> {
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

function mismatch(blob: BlobRef, what: string, path: string): SandboxError {
  return new SandboxError('ERR_DIGEST_MISMATCH', `The ${what} blob ${blob.digest} (${blob.size} bytes) does not match its digest: ${path}`);
}

function missingBlob(blob: BlobRef, what: string, path: string, cause?: unknown): SandboxError {
  return new SandboxError('ERR_IMAGE_NOT_FOUND', `The ${what} blob ${blob.digest} is missing: ${path}`, { cause });
}

function isNotFound(error: unknown): boolean {
  return (error as NodeJS.ErrnoException)?.code === 'ENOENT';
}
