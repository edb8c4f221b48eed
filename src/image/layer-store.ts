// SPDX-License-Identifier: Apache-2.0
// The layer cache: each layer unpacked once into <cacheRoot>/layers/<diffID hex>/, published by an atomic rename.

import { lstat, mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { digestHex } from './digest.js';
import type { ImageConfig } from './image-config.js';
import { unpackLayer } from './layer-unpack.js';
import { tempPrefix } from './temp-name.js';
import { assertBlobIntact, openBlob, readOciImage, type LayerRef } from './oci-layout.js';

/** Where and how {@link unpackLayers} keeps unpacked layers. */
export interface LayerCacheOptions {
  /**
   * Cache directory, created if missing. Layers go to `<cacheRoot>/layers/<diffID hex>/`, or to
   * `<cacheRoot>/layers-rootless/<diffID hex>/` when `rootless`: the two forms of a layer share a
   * diffID but not their whiteouts, so one cache root can serve both.
   */
  cacheRoot: string;
  /**
   * Unpack for an overlay mounted with `userxattr` (in a user namespace): whiteouts as
   * `user.overlay.*` xattrs, no chown, no device nodes.
   */
  rootless: boolean;
  /** Largest uncompressed layer accepted, in bytes; default 8 GiB. */
  maxLayerBytes?: number;
}

/** Options of {@link resolveOciImage}. */
export interface ResolveOciImageOptions extends LayerCacheOptions {
  /** Picks the manifest annotated `org.opencontainers.image.ref.name` = tag; without, the layout must hold one image. */
  tag?: string;
}

/**
 * An image ready to be mounted: overlay lower directories plus what the image says about running it.
 *
 * @example
 * ```ts
 * const { layers, config }: ResolvedImage = await store.resolve('127.0.0.1:5000/busybox:1', { rootless: false });
 * await run({ image: { layers, config }, command: ['sh', '-c', 'echo hi'] });
 * ```
 */
export interface ResolvedImage {
  /** Absolute layer directories, bottom layer first (reverse them for overlayfs' `lowerdir=`). */
  layers: string[];
  config: ImageConfig;
  /** Digest of the image manifest. */
  digest: string;
}

/**
 * Reads an image from an OCI image layout and makes sure each of its layers is unpacked in
 * the cache. A layer already there is reused; a missing one is unpacked into a `.tmp-<owner>-<random>`
 * directory beside its final place and renamed there only when complete and verified,
 * so no partial layer is ever visible. When a concurrent unpack of the same layer (in this or
 * another process) wins the rename, the loser's copy is deleted.
 *
 * @throws SandboxError ERR_IMAGE_NOT_FOUND, ERR_IMAGE_INVALID, ERR_DIGEST_MISMATCH, ERR_UNSUPPORTED
 *   (see {@link readOciImage} and {@link unpackLayer}).
 *
 * @example
 * ```ts
 * const image = await resolveOciImage('./busybox-oci', { tag: 'latest', cacheRoot: '/var/cache/nsbox', rootless: false });
 * const lowerdir = image.layers.toReversed().join(':');
 * ```
 */
export async function resolveOciImage(layoutDir: string, options: ResolveOciImageOptions): Promise<ResolvedImage> {
  const image = await readOciImage(layoutDir, { tag: options.tag });
  return { layers: await unpackLayers(layoutDir, image.layers, options), config: image.config, digest: image.digest };
}

/**
 * Makes sure each layer, a blob of `layoutDir` (an OCI layout, or any directory with its
 * `blobs/sha256/<hex>` form), is unpacked in the cache, as {@link resolveOciImage} describes.
 * Returns the layer directories in the order given.
 *
 * @throws SandboxError ERR_IMAGE_NOT_FOUND, ERR_IMAGE_INVALID, ERR_DIGEST_MISMATCH (see {@link unpackLayer}).
 *
 * @example
 * ```ts
 * const { layers } = await readOciManifest(storeRoot, manifest);
 * const dirs = await unpackLayers(storeRoot, layers, { cacheRoot: storeRoot, rootless: false });
 * ```
 */
export async function unpackLayers(layoutDir: string, layers: LayerRef[], options: LayerCacheOptions): Promise<string[]> {
  const layersDir = layerCacheDir(options.cacheRoot, options.rootless);
  await mkdir(layersDir, { recursive: true });
  return Promise.all(layers.map((layer) => ensureLayer(layoutDir, layer, layersDir, options)));
}

/**
 * The directory of a cache root that holds the unpacked layers of one form (rootful or rootless).
 *
 * @example
 * ```ts
 * layerCacheDir('/var/lib/nsbox/store', true); // '/var/lib/nsbox/store/layers-rootless'
 * ```
 */
export function layerCacheDir(cacheRoot: string, rootless: boolean): string {
  return join(resolve(cacheRoot), rootless ? 'layers-rootless' : 'layers');
}

async function ensureLayer(layoutDir: string, layer: LayerRef, layersDir: string, options: LayerCacheOptions): Promise<string> {
  const final = join(layersDir, digestHex(layer.diffId, `Layer ${layer.digest} diff_id`));
  if (await isDirectory(final)) return final;
  const temp = await mkdtemp(join(layersDir, tempPrefix()));
  try {
    await unpackLayer(openBlob(layoutDir, layer, 'layer'), layer, temp, { rootless: options.rootless, maxBytes: options.maxLayerBytes });
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    // Corruption often breaks gunzip or tar before the digest check at the end: name the real cause.
    await assertBlobIntact(layoutDir, layer, 'layer');
    throw error;
  }
  try {
    await rename(temp, final);
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    const code = (error as NodeJS.ErrnoException).code;
    if ((code !== 'ENOTEMPTY' && code !== 'EEXIST') || !(await isDirectory(final))) throw error;
  }
  return final;
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await lstat(path)).isDirectory();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}
