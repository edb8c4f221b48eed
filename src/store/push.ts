// SPDX-License-Identifier: Apache-2.0
// Pushes an image of the store to a registry: blobs the registry lacks (mounted from a sibling repository when it can), then the manifest.

import { open, readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { SandboxError } from '../errors.js';
import { sha256 } from '../image/digest.js';
import { isRecord, maxJsonBlobBytes, parseManifest, type Descriptor } from '../image/manifest.js';
import { openBlob } from '../image/oci-layout.js';
import type { RegistryCredentials } from '../registry/auth.js';
import { RegistryClient } from '../registry/client.js';
import { readBody, registryMessage } from '../registry/http.js';
import { formatReference, parseReference, type ImageReference } from '../registry/reference.js';
import { TransientError, withRetries } from '../registry/retry.js';
import { blobPath } from './blob-writer.js';
import { addLease, removeLease } from './leases.js';
import { withLock } from './lock.js';
import { inParallel, type PullProgress } from './pull.js';
import { readReferences, writeReferences, type ImageRecord } from './references.js';

/**
 * Options of {@link ImageStore.push}.
 *
 * @example
 * ```ts
 * await store.push('127.0.0.1:5000/busybox:1', { as: '127.0.0.1:5000/tools/busybox:stable', signal: AbortSignal.timeout(60_000) });
 * ```
 */
export interface PushOptions {
  /**
   * Push under this reference instead (`docker tag` + `docker push`); the store records it as a
   * reference of the image once the push succeeded. Needed when the image is named by digest only.
   */
  as?: string;
  /** Aborts the push (ERR_CANCELED). Blobs already sent stay on the registry; the manifest is not sent. */
  signal?: AbortSignal;
  /** Called as blob bytes are sent, and once for each blob the registry already has. */
  onProgress?: (progress: PushProgress) => void;
  /** Sent when the registry asks; default: what `docker login` saved in `$DOCKER_CONFIG/config.json` (~/.docker). */
  credentials?: RegistryCredentials;
  /** Allow plain http to a registry that is not on loopback (http is always used for localhost and 127.0.0.1). */
  insecure?: boolean;
  /**
   * Blobs larger than this many bytes are sent in chunks of this size (one PATCH each, each chunk
   * read into memory), smaller ones in one streamed PUT; default: every blob in one PUT.
   */
  chunkSize?: number;
}

/**
 * Progress of one blob (layer or config) of a push: a pull's, and what is happening to the blob.
 *
 * @example
 * ```ts
 * const onProgress = ({ digest, bytes, total, state }: PushProgress) => console.log(digest.slice(7, 19), state, `${bytes}/${total}`);
 * ```
 */
export interface PushProgress extends PullProgress {
  /** `sending` while bytes go out, `sent` at the end, or (once, with `bytes` = `total`) `mounted` / `exists` when nothing was sent. */
  state: 'sending' | 'sent' | 'mounted' | 'exists';
}

/**
 * What {@link ImageStore.push} did.
 *
 * @example
 * ```ts
 * const { reference, digest, uploaded } = await store.push('127.0.0.1:5000/busybox:1');
 * console.log(`${reference}@${digest}: ${uploaded.length} blobs sent`);
 * ```
 */
export interface PushResult {
  /** The canonical reference pushed to (`registry/repository:tag` or `…@digest`). */
  reference: string;
  /** The manifest's digest, as the registry confirmed it. */
  digest: string;
  /** Digests of the blobs sent. */
  uploaded: string[];
  /** Digests of the blobs the registry mounted from another repository of it instead. */
  mounted: string[];
  /** Digests of the blobs the registry already had in the repository. */
  skipped: string[];
}

const ociManifestType = 'application/vnd.oci.image.manifest.v1+json';
// Parallel blob transfers per push, as Docker does by default.
const parallelBlobs = 3;

/**
 * @internal Pushes the image whose manifest is `record` to `destination` (a reference the caller
 * checked). `knownAs` are the store's references to the image: a blob may be mounted from one
 * of them on the same registry instead of sent. Blobs are leased while the push reads them.
 * @throws SandboxError naming the destination: ERR_REGISTRY, ERR_IMAGE_NOT_FOUND (a blob missing
 *   from the store), ERR_DIGEST_MISMATCH, ERR_IMAGE_INVALID, ERR_CANCELED.
 */
export async function pushImage(root: string, record: ImageRecord, destination: string, knownAs: string[], options: PushOptions): Promise<PushResult> {
  const target = parseReference(destination);
  const name = formatReference(target);
  const failed = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, failed.signal]) : failed.signal;
  const client = new RegistryClient(target, { credentials: options.credentials, insecure: options.insecure, signal, push: true });
  try {
    if (target.digest !== undefined && target.digest !== record.digest) {
      throw new SandboxError('ERR_INVALID_OPTION', `the image's manifest is ${record.digest}, not ${target.digest}`);
    }
    const manifestBytes = await readManifestBlob(root, record);
    const manifestJson = JSON.parse(manifestBytes.toString('utf8')) as unknown;
    const manifest = parseManifest(manifestJson, `Manifest ${record.digest}`);
    const mediaType = isRecord(manifestJson) && typeof manifestJson.mediaType === 'string' ? manifestJson.mediaType : ociManifestType;
    const mountFrom = siblingRepository(target, knownAs);
    const result: PushResult = { reference: name, digest: record.digest, uploaded: [], mounted: [], skipped: [] };
    const lease = await withLock(root, signal, () => addLease(root, [record.digest, manifest.config.digest, ...manifest.layers.map((l) => l.digest)]));
    try {
      // Layers first, config last: a registry never holds a config whose layers are missing.
      await inParallel(manifest.layers, parallelBlobs, failed, async (blob) => {
        result[await pushBlob(root, client, blob, mountFrom, options, signal)].push(blob.digest);
      });
      result[await pushBlob(root, client, manifest.config, mountFrom, options, signal)].push(manifest.config.digest);
      result.digest = await putManifest(client, target.digest ?? (target.tag as string), manifestBytes, mediaType, record.digest, signal);
    } finally {
      await removeLease(lease);
    }
    const names = [name, `${target.registry}/${target.repository}@${record.digest}`];
    await withLock(root, signal, async () => {
      const references = await readReferences(root);
      for (const key of names) references.set(key, record);
      await writeReferences(root, references);
    });
    return result;
  } catch (error) {
    if (options.signal?.aborted) throw new SandboxError('ERR_CANCELED', `Pushing ${name} was canceled`, { cause: options.signal.reason });
    if (error instanceof SandboxError) throw new SandboxError(error.code, `Pushing ${name}: ${error.message}`, { cause: error });
    throw new SandboxError('ERR_REGISTRY', `Pushing ${name} failed: ${(error as Error).message}`, { cause: error });
  }
}

async function readManifestBlob(root: string, record: ImageRecord): Promise<Buffer> {
  if (record.size > maxJsonBlobBytes) throw new SandboxError('ERR_IMAGE_INVALID', `Manifest ${record.digest} is too large (${record.size} bytes)`);
  const path = blobPath(root, record.digest);
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new SandboxError('ERR_IMAGE_NOT_FOUND', `The manifest blob ${record.digest} is missing: ${path}`, { cause: error });
    throw error;
  }
  if (bytes.length !== record.size || sha256(bytes) !== record.digest) {
    throw new SandboxError('ERR_DIGEST_MISMATCH', `The manifest blob ${record.digest} (${record.size} bytes) does not match its digest: ${path}`);
  }
  return bytes;
}

/** Another repository of the target's registry that the store knows holds the image: blobs can be mounted from it. */
function siblingRepository(target: ImageReference, knownAs: string[]): string | undefined {
  for (const known of knownAs) {
    const reference = parseReference(known);
    if (reference.registry === target.registry && reference.repository !== target.repository) return reference.repository;
  }
  return undefined;
}

/**
 * Makes sure the registry's repository has `blob`: HEAD; else a cross-repository mount when
 * there is a sibling; else an upload (POST, then one PUT with the bytes, or PATCHes of
 * `chunkSize` and a closing PUT). A broken upload starts over with a new session.
 */
async function pushBlob(
  root: string,
  client: RegistryClient,
  blob: Descriptor,
  mountFrom: string | undefined,
  options: PushOptions,
  signal: AbortSignal,
): Promise<'uploaded' | 'mounted' | 'skipped'> {
  const progress = (bytes: number, state: PushProgress['state'] = 'sending') => options.onProgress?.({ digest: blob.digest, bytes, total: blob.size, state });
  if (await withRetries(`Checking for the blob ${blob.digest}`, signal, () => client.hasBlob(blob.digest))) {
    progress(blob.size, 'exists');
    return 'skipped';
  }
  return withRetries(`Uploading the blob ${blob.digest}`, signal, async () => {
    const query = mountFrom ? `?mount=${encodeURIComponent(blob.digest)}&from=${encodeURIComponent(mountFrom)}` : '';
    const start = await client.request('POST', `blobs/uploads/${query}`, { headers: { 'content-length': '0' } });
    if (mountFrom && start.status === 201) {
      await start.body?.cancel();
      progress(blob.size, 'mounted');
      return 'mounted';
    }
    let location = await uploadLocation(client, start, 202, blob);
    if (options.chunkSize !== undefined && blob.size > options.chunkSize) {
      location = await patchChunks(root, client, blob, location, options.chunkSize, progress);
      location.searchParams.append('digest', blob.digest);
      await expectStatus(await client.request('PUT', location, { headers: { 'content-length': '0' } }), 201, blob);
    } else {
      location.searchParams.append('digest', blob.digest);
      // A blob of the store that fails its digest check (or vanished) is the error, not the transfer it broke.
      let sourceError: unknown;
      const body = () => {
        let sent = 0;
        const source = openBlob(root, blob, 'blob').on('error', (error) => (sourceError = error));
        return Readable.toWeb(source.on('data', (chunk: Buffer) => progress((sent += chunk.length)))) as ReadableStream<Uint8Array>;
      };
      const headers = { 'content-type': 'application/octet-stream', 'content-length': String(blob.size) };
      let response: Response;
      try {
        response = await client.request('PUT', location, { headers, body });
      } catch (error) {
        if (sourceError instanceof SandboxError) throw sourceError;
        throw error;
      }
      await expectStatus(response, 201, blob);
    }
    progress(blob.size, 'sent');
    return 'uploaded';
  });
}

/** Sends the blob in PATCHes of `chunkSize` bytes, each read from the store into memory; returns the session's last location. */
async function patchChunks(
  root: string,
  client: RegistryClient,
  blob: Descriptor,
  first: URL,
  chunkSize: number,
  progress: (bytes: number) => void,
): Promise<URL> {
  // Each chunk is reported once the registry took it.
  let location = first;
  const file = await open(blobPath(root, blob.digest), 'r');
  try {
    for (let offset = 0; offset < blob.size; ) {
      const chunk = Buffer.alloc(Math.min(chunkSize, blob.size - offset));
      const { bytesRead } = await file.read(chunk, 0, chunk.length, offset);
      if (bytesRead !== chunk.length) throw new SandboxError('ERR_DIGEST_MISMATCH', `The blob ${blob.digest} in the store is shorter than its ${blob.size} bytes`);
      const headers = {
        'content-type': 'application/octet-stream',
        'content-length': String(chunk.length),
        'content-range': `${offset}-${offset + chunk.length - 1}`,
      };
      location = await uploadLocation(client, await client.request('PATCH', location, { headers, body: () => chunk }), 202, blob);
      offset += chunk.length;
      progress(offset);
    }
  } finally {
    await file.close();
  }
  return location;
}

/** The upload session's next URL from an answer that must have `status`. */
async function uploadLocation(client: RegistryClient, response: Response, status: number, blob: Descriptor): Promise<URL> {
  await expectStatus(response, status, blob);
  const location = response.headers.get('location');
  if (!location) throw new SandboxError('ERR_REGISTRY', `The registry started no upload session for the blob ${blob.digest} (no Location)`);
  return new URL(location, client.base);
}

async function expectStatus(response: Response, status: number, blob: Descriptor): Promise<void> {
  const body = await readBody(response, maxJsonBlobBytes, 'An answer').catch(() => Buffer.alloc(0));
  if (response.status === status) return;
  // A session the registry lost (restarted, expired) is worth a fresh start.
  if (response.status === 404 || response.status === 416) throw new TransientError(`the upload of ${blob.digest} was lost (${response.status})`);
  throw new SandboxError('ERR_REGISTRY', `The registry answered ${response.status} ${registryMessage(body) || response.statusText} to the upload of the blob ${blob.digest}`);
}

/** PUTs the manifest bytes as they are in the store, by tag or digest; returns the digest the registry confirmed. */
async function putManifest(client: RegistryClient, tagOrDigest: string, bytes: Buffer, mediaType: string, digest: string, signal: AbortSignal): Promise<string> {
  return withRetries(`Uploading the manifest ${digest}`, signal, async () => {
    const headers = { 'content-type': mediaType, 'content-length': String(bytes.length) };
    const response = await client.request('PUT', `manifests/${tagOrDigest}`, { headers, body: () => bytes });
    const body = await readBody(response, maxJsonBlobBytes, 'An answer').catch(() => Buffer.alloc(0));
    if (response.status !== 201) {
      throw new SandboxError('ERR_REGISTRY', `The registry answered ${response.status} ${registryMessage(body) || response.statusText} to the manifest ${digest}`);
    }
    const confirmed = response.headers.get('docker-content-digest');
    if (confirmed && confirmed !== digest) throw new SandboxError('ERR_DIGEST_MISMATCH', `The registry stored the manifest ${digest} as ${confirmed}`);
    return digest;
  });
}
