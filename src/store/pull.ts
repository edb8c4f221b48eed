// SPDX-License-Identifier: Apache-2.0
// Pulls an image from a registry into the store: manifest, config, then layers in parallel, each blob verified before it is published.

import { SandboxError } from '../errors.js';
import { hostPlatform, parseConfigBlob, parsePlatform, type BlobRef } from '../image/manifest.js';
import { readJsonBlob } from '../image/oci-layout.js';
import type { RegistryCredentials } from '../registry/auth.js';
import { RegistryClient } from '../registry/client.js';
import { downloadBlob } from '../registry/download.js';
import { formatReference, parseReference } from '../registry/reference.js';
import { resolveManifest } from '../registry/resolve-manifest.js';
import { BlobWriter, hasBlob } from './blob-writer.js';
import { addLease, removeLease } from './leases.js';
import { withLock } from './lock.js';
import { readReferences, writeReferences, type ImageRecord } from './references.js';

/**
 * Options of {@link ImageStore.pull}.
 *
 * @example
 * ```ts
 * await store.pull('127.0.0.1:5000/busybox:1', { platform: 'linux/arm64', signal: AbortSignal.timeout(60_000) });
 * ```
 */
export interface PullOptions {
  /** Aborts the pull (ERR_CANCELED); nothing partial stays in the store. */
  signal?: AbortSignal;
  /** Called as layer bytes arrive, and once for each layer the store already has. */
  onProgress?: (progress: PullProgress) => void;
  /** `os/arch[/variant]` to pick from a multi-platform image; default linux and this host's architecture. */
  platform?: string;
  /** Sent when the registry asks; default: what `docker login` saved in `$DOCKER_CONFIG/config.json` (~/.docker). */
  credentials?: RegistryCredentials;
  /** Allow plain http to a registry that is not on loopback (http is always used for localhost and 127.0.0.1). */
  insecure?: boolean;
}

/**
 * Progress of one layer of a pull.
 *
 * @example
 * ```ts
 * const onProgress = ({ digest, bytes, total }: PullProgress) => console.log(digest.slice(7, 19), `${bytes}/${total}`);
 * ```
 */
export interface PullProgress {
  /** The layer blob's digest. */
  digest: string;
  /** Bytes received so far (the whole size when the store already had the layer). */
  bytes: number;
  /** The layer blob's size. */
  total: number;
}

// Parallel layer transfers per pull, as Docker does by default.
const parallelLayers = 3;

/**
 * @internal Pulls `input` into the store at `root` and records its references: the reference
 * itself (`name:tag` or `name@digest`) and `name@<digest it resolved to>`. Returns the manifest
 * record. Blobs the store has are not downloaded again. The blobs are leased while the pull runs,
 * so a concurrent garbage collection keeps them.
 * @throws SandboxError naming the reference: ERR_IMAGE_NOT_FOUND, ERR_REGISTRY, ERR_DIGEST_MISMATCH,
 *   ERR_UNSUPPORTED, ERR_IMAGE_INVALID, ERR_INVALID_OPTION (bad reference or platform), ERR_CANCELED.
 */
export async function pullImage(root: string, input: string, options: PullOptions): Promise<ImageRecord> {
  const reference = parseReference(input);
  const name = formatReference(reference);
  const platform = options.platform === undefined ? hostPlatform() : parsePlatform(options.platform);
  // Ends the other transfers when one fails, as well as when the caller aborts.
  const failed = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, failed.signal]) : failed.signal;
  const client = new RegistryClient(reference, { credentials: options.credentials, insecure: options.insecure, signal });
  try {
    const resolved = await resolveManifest(client, reference, platform);
    const { config, layers } = resolved.manifest;
    const record: ImageRecord = { digest: resolved.digest, size: resolved.bytes.length };
    const lease = await withLock(root, signal, () => addLease(root, [record.digest, config.digest, ...layers.map((l) => l.digest)]));
    try {
      await storeBlob(root, record, (writer) => writer.write(resolved.bytes));
      await storeBlob(root, config, (writer) => downloadBlob(client, config, writer, { signal }));
      // A config that does not fit the manifest fails the pull before the layers are fetched.
      parseConfigBlob(await readJsonBlob(root, config, 'config'), resolved.manifest);
      await inParallel(layers, parallelLayers, failed, async (layer) => {
        const progress = (bytes: number) => options.onProgress?.({ digest: layer.digest, bytes, total: layer.size });
        if (!(await storeBlob(root, layer, (writer) => downloadBlob(client, layer, writer, { signal, onBytes: progress })))) progress(layer.size);
      });
      const names = [name, `${reference.registry}/${reference.repository}@${resolved.referenceDigest}`];
      await withLock(root, signal, async () => {
        const references = await readReferences(root);
        for (const key of names) references.set(key, record);
        await writeReferences(root, references);
      });
    } finally {
      await removeLease(lease);
    }
    return record;
  } catch (error) {
    if (options.signal?.aborted) throw new SandboxError('ERR_CANCELED', `Pulling ${name} was canceled`, { cause: options.signal.reason });
    if (error instanceof SandboxError) throw new SandboxError(error.code, `Pulling ${name}: ${error.message}`, { cause: error });
    throw new SandboxError('ERR_REGISTRY', `Pulling ${name} failed: ${(error as Error).message}`, { cause: error });
  }
}

/** Writes `blob` with `fill` unless the store has it; returns whether it wrote. */
async function storeBlob(root: string, blob: BlobRef, fill: (writer: BlobWriter) => Promise<void>): Promise<boolean> {
  if (await hasBlob(root, blob)) return false;
  const writer = await BlobWriter.create(root, blob);
  try {
    await fill(writer);
    await writer.commit();
  } finally {
    await writer.discard();
  }
  return true;
}

/**
 * @internal Runs `task` for each item, at most `limit` at once. The first failure aborts `failed` (which
 * the tasks' transfers listen to), waits for the others to stop, and is thrown.
 */
export async function inParallel<T>(items: T[], limit: number, failed: AbortController, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let firstError: unknown;
  const worker = async () => {
    while (next < items.length && !failed.signal.aborted) {
      const item = items[next++];
      try {
        await task(item);
      } catch (error) {
        if (!failed.signal.aborted) {
          firstError = error;
          failed.abort(error);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed.signal.aborted) throw firstError ?? failed.signal.reason;
}
