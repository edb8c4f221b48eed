// SPDX-License-Identifier: Apache-2.0
// HTTP plumbing of the registry client: which scheme a host gets, fetch with classified failures, bounded bodies.

import { SandboxError } from '../errors.js';
import { TransientError } from './retry.js';

const loopbackHosts = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * @internal `http:` for a loopback host (any port) or when the caller said `insecure`,
 * `https:` otherwise: credentials and images never travel in clear text by accident.
 */
export function schemeFor(host: string, insecure: boolean): 'http:' | 'https:' {
  return insecure || loopbackHosts.has(hostName(host)) ? 'http:' : 'https:';
}

/** @internal Whether a URL may be used under the rule of {@link schemeFor}. */
export function isAllowedUrl(url: URL, insecure: boolean): boolean {
  return url.protocol === 'https:' || (url.protocol === 'http:' && schemeFor(url.host, insecure) === 'http:');
}

/**
 * @internal fetch, with a failure to connect or a dropped connection thrown as a
 * {@link TransientError}, and 5xx, 408 and 429 answers too (their bodies discarded).
 * An abort propagates as it is.
 */
export async function fetchClassified(url: URL, init: RequestInit): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(url, init);
  } catch (error) {
    throw networkError(error, init.signal);
  }
  if (response.status >= 500 || response.status === 408 || response.status === 429) {
    await response.body?.cancel();
    throw new TransientError(`${url.host} answered ${response.status} ${response.statusText}`);
  }
  return response;
}

/**
 * @internal An error from fetch or from reading a response body, as a {@link TransientError}
 * unless it is the abort of `signal`.
 */
export function networkError(error: unknown, signal: AbortSignal | null | undefined): unknown {
  if (signal?.aborted) return error;
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  const detail = cause?.code ?? cause?.message ?? (error as Error).message;
  return new TransientError(`connection failed (${detail})`, { cause: error });
}

/**
 * @internal Reads a whole response body of at most `maxBytes` (a larger one is ERR_REGISTRY:
 * manifests and tokens are small, a huge one is a broken or hostile server).
 */
export async function readBody(response: Response, maxBytes: number, what: string): Promise<Buffer> {
  const declared = Number(response.headers.get('content-length') ?? 0);
  if (declared > maxBytes) {
    await response.body?.cancel();
    throw new SandboxError('ERR_REGISTRY', `${what} is ${declared} bytes, more than the ${maxBytes} accepted`);
  }
  const chunks: Buffer[] = [];
  let bytes = 0;
  try {
    for await (const chunk of response.body ?? []) {
      bytes += chunk.length;
      if (bytes > maxBytes) throw new SandboxError('ERR_REGISTRY', `${what} is more than the ${maxBytes} bytes accepted`);
      chunks.push(Buffer.from(chunk));
    }
  } catch (error) {
    await response.body?.cancel().catch(() => {});
    if (error instanceof SandboxError) throw error;
    throw networkError(error, undefined);
  }
  return Buffer.concat(chunks);
}

/** @internal The first message of an OCI distribution error body (`{"errors":[{"code","message"}]}`), or ''. */
export function registryMessage(body: Buffer): string {
  try {
    const first = JSON.parse(body.toString('utf8'))?.errors?.[0];
    if (typeof first?.code !== 'string') return '';
    return typeof first.message === 'string' && first.message !== '' ? `${first.code}: ${first.message}` : first.code;
  } catch {
    return '';
  }
}

function hostName(host: string): string {
  return host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0];
}
