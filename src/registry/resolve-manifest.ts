// SPDX-License-Identifier: Apache-2.0
// Resolves a reference on a registry to one platform's image manifest, following an image index, digests checked.

import { SandboxError } from '../errors.js';
import {
  formatPlatform, indexTypes, isRecord, layerCompression, manifestTypes, matchesPlatform, parseIndex, parseJson, parseManifest,
  type ParsedManifest, type Platform,
} from '../image/manifest.js';
import type { FetchedManifest, RegistryClient } from './client.js';
import { formatReference, type ImageReference } from './reference.js';

/** @internal An image manifest fetched for one platform. */
export interface ResolvedManifest {
  /** Digest of the image manifest. */
  digest: string;
  /** Its bytes, as the registry sent them (their sha256 is `digest`). */
  bytes: Buffer;
  manifest: ParsedManifest;
  /** What the reference itself resolved to: the index's digest when there was one, else `digest`. */
  referenceDigest: string;
}

// An index may point at an index; real images nest at most once.
const maxIndexDepth = 4;

/**
 * @internal Fetches the manifest a reference names; when that is an image index (or Docker
 * manifest list), picks the entry for `platform` and fetches that. Layer media types are
 * checked before anything is downloaded.
 * @throws SandboxError ERR_IMAGE_NOT_FOUND (no such image, or none for the platform),
 *   ERR_UNSUPPORTED (schema 1 manifests, unknown media types),
 *   ERR_IMAGE_INVALID, ERR_DIGEST_MISMATCH, ERR_REGISTRY.
 */
export async function resolveManifest(client: RegistryClient, reference: ImageReference, platform: Platform): Promise<ResolvedManifest> {
  const name = formatReference(reference);
  let fetched = await client.manifest(reference.digest ?? (reference.tag as string));
  const referenceDigest = fetched.digest;
  let json = parseJson(fetched.bytes.toString('utf8'), `The manifest of ${name}`);
  for (let depth = 0; indexTypes.has(mediaTypeOf(fetched, json)); depth++) {
    const where = `Image index ${fetched.digest} of ${name}`;
    if (depth === maxIndexDepth) throw new SandboxError('ERR_IMAGE_INVALID', `${where}: nested too deeply`);
    const entries = parseIndex(json, where);
    const entry = entries.find((e) => matchesPlatform(e, platform) && (manifestTypes.has(e.mediaType) || indexTypes.has(e.mediaType)));
    if (!entry) {
      const offered = entries.flatMap((e) => (e.platform ? [formatPlatform(e.platform)] : [])).join(', ');
      throw new SandboxError('ERR_IMAGE_NOT_FOUND', `${name} has no image for ${formatPlatform(platform)} (it has: ${offered || 'none'})`);
    }
    fetched = await client.manifest(entry.digest);
    if (fetched.bytes.length !== entry.size) {
      throw new SandboxError('ERR_DIGEST_MISMATCH', `${where}: the manifest ${entry.digest} is ${fetched.bytes.length} bytes, the index says ${entry.size}`);
    }
    json = parseJson(fetched.bytes.toString('utf8'), `Manifest ${fetched.digest} of ${name}`);
  }
  const mediaType = mediaTypeOf(fetched, json);
  if (!manifestTypes.has(mediaType)) {
    const what = isRecord(json) && json.schemaVersion === 1 ? 'Docker schema 1 manifests' : `manifests of type \`${mediaType}\``;
    throw new SandboxError('ERR_UNSUPPORTED', `${name}: ${what} are not supported`);
  }
  const manifest = parseManifest(json, `Manifest ${fetched.digest} of ${name}`);
  for (const layer of manifest.layers) layerCompression(layer);
  return { digest: fetched.digest, bytes: fetched.bytes, manifest, referenceDigest };
}

// The registry's Content-Type, else the document's own `mediaType`, else its shape (OCI allows
// both to be absent).
function mediaTypeOf(fetched: FetchedManifest, json: unknown): string {
  if (indexTypes.has(fetched.contentType) || manifestTypes.has(fetched.contentType)) return fetched.contentType;
  if (!isRecord(json)) return fetched.contentType;
  if (typeof json.mediaType === 'string') return json.mediaType;
  if (Array.isArray(json.manifests)) return 'application/vnd.oci.image.index.v1+json';
  if (Array.isArray(json.layers) && json.schemaVersion === 2) return 'application/vnd.oci.image.manifest.v1+json';
  return fetched.contentType;
}
