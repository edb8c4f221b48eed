// SPDX-License-Identifier: Apache-2.0
// Retries registry requests and transfers that failed for a passing reason (dropped connection, 5xx, 429).

import { setTimeout as sleep } from 'node:timers/promises';
import { SandboxError } from '../errors.js';

/** @internal A failure worth another try; after the last try it becomes ERR_REGISTRY. */
export class TransientError extends Error {}

/** How often one request or transfer is tried in all. */
const maxAttempts = 4;

/**
 * @internal Runs `attempt` until it succeeds, fails for a reason that is not a
 * {@link TransientError}, or has failed {@link maxAttempts} times (then ERR_REGISTRY, saying
 * `what` failed and why). Waits 0.1 s, 0.4 s, 1.6 s between tries; `signal` ends the wait.
 */
export async function withRetries<T>(what: string, signal: AbortSignal | undefined, attempt: () => Promise<T>): Promise<T> {
  for (let tries = 1; ; tries++) {
    try {
      return await attempt();
    } catch (error) {
      signal?.throwIfAborted();
      if (!(error instanceof TransientError)) throw error;
      if (tries === maxAttempts) {
        throw new SandboxError('ERR_REGISTRY', `${what} failed ${maxAttempts} times; last: ${error.message}`, { cause: error });
      }
      await sleep(100 * 4 ** (tries - 1), undefined, { signal });
    }
  }
}
