// SPDX-License-Identifier: Apache-2.0
// Downloads one blob into a sink, retrying broken transfers and resuming them with a Range request where the registry allows.

import type { BlobRef } from '../image/manifest.js';
import type { RegistryClient } from './client.js';
import { networkError } from './http.js';
import { TransientError, withRetries } from './retry.js';

/** @internal Where a download writes: keeps what it got across tries (the store's BlobWriter). */
export interface BlobSink {
  readonly written: number;
  write(chunk: Uint8Array): Promise<void>;
  reset(): Promise<void>;
}

/**
 * @internal Streams `blob` into `sink`. A transfer that breaks is tried again from the byte it
 * reached (`Range: bytes=<written>-`); a registry that answers the range with the whole blob
 * (200) starts it over. The sink checks size and digest; this only stops at the declared size.
 * @throws SandboxError ERR_REGISTRY when the tries run out, or as the client or the sink throw.
 */
export async function downloadBlob(
  client: RegistryClient,
  blob: BlobRef,
  sink: BlobSink,
  options: { signal: AbortSignal | undefined; onBytes?: (bytes: number) => void },
): Promise<void> {
  await withRetries(`Downloading the blob ${blob.digest}`, options.signal, async () => {
    const offset = sink.written;
    const response = await client.blob(blob.digest, offset);
    if (response.status !== 200 && !resumesAt(response, offset)) {
      await response.body?.cancel();
      await sink.reset();
      throw new TransientError(`the registry answered ${response.status} to a request for bytes ${offset}-`);
    }
    if (response.status === 200 && offset > 0) await sink.reset();
    const chunks = (response.body ?? new ReadableStream<Uint8Array>())[Symbol.asyncIterator]();
    let done = false;
    try {
      while (!done) {
        let next: IteratorResult<Uint8Array>;
        try {
          next = await chunks.next();
        } catch (error) {
          throw networkError(error, options.signal);
        }
        done = next.done === true;
        if (!done) {
          await sink.write(next.value);
          options.onBytes?.(sink.written);
        }
      }
    } finally {
      if (!done) await chunks.return?.().catch(() => {});
    }
    if (sink.written !== blob.size) throw new TransientError(`the transfer ended after ${sink.written} of ${blob.size} bytes`);
  });
}

function resumesAt(response: Response, offset: number): boolean {
  return response.status === 206 && /^bytes (\d+)-/.exec(response.headers.get('content-range') ?? '')?.[1] === String(offset);
}
