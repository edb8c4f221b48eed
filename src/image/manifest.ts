// SPDX-License-Identifier: Apache-2.0
// Parses OCI/Docker image indexes, manifests and configs (from a layout or a registry) and picks a platform.

import { SandboxError } from '../errors.js';
import { digestHex } from './digest.js';
import { parseImageConfig, type ImageConfig } from './image-config.js';

/** How a layer blob is compressed. */
export type LayerCompression = 'gzip' | 'zstd' | 'none';

/** A content-addressed blob. */
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

/**
 * An operating system and CPU architecture in the names images use (GOOS/GOARCH).
 *
 * @example
 * ```ts
 * const arm: Platform = { os: 'linux', architecture: 'arm64' };
 * ```
 */
export interface Platform {
  os: string;
  architecture: string;
  /** `v8` for arm64, `v7` for arm, …; optional. */
  variant?: string;
}

/** @internal An OCI content descriptor. */
export interface Descriptor extends BlobRef {
  mediaType: string;
  annotations: Record<string, string>;
  platform?: Platform;
}

/** @internal The parts of an image manifest, before its config is read. */
export interface ParsedManifest {
  config: Descriptor;
  layers: Descriptor[];
}

/** @internal Media types of an image index (OCI) or manifest list (Docker). */
export const indexTypes = new Set([
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
]);
/** @internal Media types of an image manifest (OCI, Docker schema 2). */
export const manifestTypes = new Set([
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
  ['application/vnd.oci.image.layer.v1.tar+zstd', 'zstd'],
  ['application/vnd.oci.image.layer.nondistributable.v1.tar+zstd', 'zstd'],
  ['application/vnd.docker.image.rootfs.diff.tar', 'none'],
  ['application/vnd.docker.image.rootfs.diff.tar.gzip', 'gzip'],
  ['application/vnd.docker.image.rootfs.foreign.diff.tar', 'none'],
  ['application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', 'gzip'],
]);
/** @internal Manifests, indexes and configs are small; a huge declared size is a broken or hostile image. */
export const maxJsonBlobBytes = 4 * 1024 * 1024;
// process.arch → GOARCH, the names image platforms use.
const goArch: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64', loong64: 'loong64' };

/** @internal linux and this host's architecture. */
export function hostPlatform(): Platform {
  return { os: 'linux', architecture: goArch[process.arch] ?? process.arch };
}

/**
 * @internal Parses `os/arch[/variant]` ('linux/arm64', 'linux/arm/v7').
 * @throws SandboxError ERR_INVALID_OPTION for anything else.
 */
export function parsePlatform(text: string): Platform {
  const [os, architecture, variant, ...rest] = text.split('/');
  if (!os || !architecture || variant === '' || rest.length > 0) {
    throw new SandboxError('ERR_INVALID_OPTION', `Platform \`${text}\` is not of the form os/architecture[/variant] (e.g. linux/arm64)`);
  }
  return variant === undefined ? { os, architecture } : { os, architecture, variant };
}

/** @internal 'linux/arm64', 'linux/arm/v7'. */
export function formatPlatform(platform: Platform): string {
  return [platform.os, platform.architecture, platform.variant].filter((part) => part !== undefined).join('/');
}

/**
 * @internal Whether an index entry is for `want`. An entry without a platform matches anything.
 * arm64 without a variant is arm64/v8; without a wanted variant, any variant of another
 * architecture matches.
 */
export function matchesPlatform({ platform }: Descriptor, want: Platform): boolean {
  if (!platform) return true;
  if (platform.os !== want.os || platform.architecture !== want.architecture) return false;
  if (want.architecture === 'arm64') return (platform.variant ?? 'v8') === (want.variant ?? 'v8');
  return want.variant === undefined || platform.variant === want.variant;
}

/** @internal The entries of an image index. */
export function parseIndex(index: unknown, where: string): Descriptor[] {
  if (!isRecord(index) || !Array.isArray(index.manifests)) throw invalid(where, 'no `manifests` array');
  return index.manifests.map((manifest, i) => parseDescriptor(manifest, `${where} manifests[${i}]`));
}

/** @internal The config and layer descriptors of an image manifest. */
export function parseManifest(manifest: unknown, where: string): ParsedManifest {
  if (!isRecord(manifest) || !Array.isArray(manifest.layers)) throw invalid(where, 'no `layers` array');
  const config = parseDescriptor(manifest.config, `${where} config`);
  if (!configTypes.has(config.mediaType)) {
    throw new SandboxError('ERR_UNSUPPORTED', `${where}: config media type \`${config.mediaType}\` is not supported`);
  }
  return { config, layers: manifest.layers.map((layer, i) => parseDescriptor(layer, `${where} layer ${i}`)) };
}

/**
 * @internal Reads an image config blob: its runtime config, and the layers of `manifest` with
 * their diffIDs and compression.
 */
export function parseConfigBlob(configBlob: unknown, manifest: ParsedManifest): { config: ImageConfig; layers: LayerRef[] } {
  const { digest } = manifest.config;
  if (!isRecord(configBlob)) throw invalid(`Image config ${digest}`, 'not an object');
  const diffIds = parseDiffIds(configBlob.rootfs, digest, manifest.layers.length);
  return {
    config: parseImageConfig(configBlob.config, digest),
    layers: manifest.layers.map((layer, i) => ({ digest: layer.digest, size: layer.size, compression: layerCompression(layer), diffId: diffIds[i] })),
  };
}

/**
 * @internal How a layer is compressed, from its media type.
 * @throws SandboxError ERR_UNSUPPORTED for unknown media types.
 */
export function layerCompression(layer: Descriptor): LayerCompression {
  const compression = layerTypes.get(layer.mediaType);
  if (compression) return compression;
  throw new SandboxError('ERR_UNSUPPORTED', `Layer ${layer.digest}: media type \`${layer.mediaType}\` is not supported`);
}

/** @internal JSON.parse with ERR_IMAGE_INVALID naming `where`. */
export function parseJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new SandboxError('ERR_IMAGE_INVALID', `${where}: malformed JSON (${(error as Error).message})`, { cause: error });
  }
}

/** @internal ERR_IMAGE_INVALID: `<where>: <problem>`. */
export function invalid(where: string, problem: string): SandboxError {
  return new SandboxError('ERR_IMAGE_INVALID', `${where}: ${problem}`);
}

/** @internal A plain object (not null, not an array). */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseDiffIds(rootfs: unknown, configDigest: string, layerCount: number): string[] {
  const where = `Image config ${configDigest}`;
  if (!isRecord(rootfs) || !Array.isArray(rootfs.diff_ids)) throw invalid(where, 'no `rootfs.diff_ids` array');
  if (rootfs.diff_ids.length !== layerCount) {
    throw invalid(where, `${rootfs.diff_ids.length} diff_ids for ${layerCount} layers`);
  }
  return rootfs.diff_ids.map((diffId: unknown) => `sha256:${digestHex(diffId, `${where} diff_id`)}`);
}

// A descriptor, checked: media type, sha256 digest, size, annotations, platform.
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
    ...(platform && { platform: platform as unknown as Platform }),
  };
}
