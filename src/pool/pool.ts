// SPDX-License-Identifier: Apache-2.0
// SandboxPool: sandboxes started ahead of time, one per call, never reused, refilled in the background.
import ow, { type BasePredicate } from 'ow';
import { checkCreateOptions, Sandbox, startChecked, type CreateOptions, type ExecOptions } from '../box/sandbox.js';
import type { NormalizedOptions } from '../options.js';
import { SandboxError } from '../errors.js';
import type { RunResult } from '../result.js';
import type { OutputOf } from '../sandbox.js';
import { parseDuration } from '../units.js';
import { checkArgument } from '../check.js';

/**
 * Options of {@link createPool}: a {@link CreateOptions} for every sandbox, and the pool's sizing.
 *
 * @example
 * ```ts
 * const options: PoolOptions = { image: 'host', size: 4, maxSandboxes: 16, queueTimeout: '5s', limits: { memory: '128MiB' } };
 * ```
 */
export type PoolOptions = CreateOptions & {
  // limits.timeout bounds each call (its command, or everything `fn` does), not a sandbox's life.
  /** Sandboxes kept started and waiting for a call (default 2). */
  size?: number;
  /** Most sandboxes alive at once, ready and in use (default 4 × size). Calls past it wait in a queue. */
  maxSandboxes?: number;
  /** How long a call may wait for a sandbox before ERR_POOL_EXHAUSTED (ms or '5s'; default 30s). */
  queueTimeout?: number | string;
};

/**
 * What a pool holds right now.
 *
 * @example
 * ```ts
 * const { ready, inUse, waiting } = pool.stats();
 * ```
 */
export interface PoolStats {
  /** Started and waiting for a call. */
  ready: number;
  /** Being started. */
  starting: number;
  /** Handed to a call. */
  inUse: number;
  /** Calls waiting for a sandbox. */
  waiting: number;
  /** Sandboxes started so far, and starts that failed. */
  created: number;
  failed: number;
}

interface Waiter {
  resolve: (box: Sandbox) => void;
  reject: (error: unknown) => void;
  timer: NodeJS.Timeout | undefined;
}

// A refill is a full sandbox start (about 1 ms on the JS thread and 2 ms of CPU around it): run
// during a call, it competes with that call on the host's cores. So while other sandboxes are ready, the
// refill for a call waits until the call ends, or at most this long for a call that runs on.
const REFILL_DELAY_MS = 20;

const poolShape = {
  size: ow.optional.number.integer.inRange(0, 1024),
  maxSandboxes: ow.optional.number.integer.inRange(1, 65536),
  queueTimeout: ow.optional.any(ow.number.integer.greaterThanOrEqual(0), ow.string),
};

function check<T>(value: unknown, label: string, predicate: BasePredicate<T>): asserts value is T {
  checkArgument('pool option', value, label, predicate);
}

/**
 * A warm pool of sandboxes for function runners: each call gets a sandbox that was started
 * ahead of time and is used by that call only — a fresh writable layer, no process, file or
 * environment left by an earlier caller — and is removed afterwards while a replacement starts
 * in the background. Made by {@link createPool}.
 *
 * @example
 * ```ts
 * await using pool = await createPool({ image: 'host', size: 4, limits: { memory: '128MiB', timeout: '10s' } });
 * const { stdout } = await pool.run(['node', '-e', 'console.log(1 + 1)']);
 * const out = await pool.run(async (box) => {
 *   await box.writeFile('/tmp/main.js', 'console.log("hi")');
 *   return (await box.exec(['node', '/tmp/main.js'])).stdout;
 * });
 * ```
 */
export class SandboxPool {
  readonly #options: NormalizedOptions;
  readonly #callTimeoutMs: number;
  readonly #size: number;
  readonly #max: number;
  readonly #queueTimeoutMs: number;
  readonly #ready: Sandbox[] = [];
  readonly #waiters: Waiter[] = [];
  readonly #retiring = new Set<Promise<void>>();
  #starting = 0;
  #inUse = 0;
  #created = 0;
  #failed = 0;
  #lastError: unknown;
  #closed = false;
  #retryTimer: NodeJS.Timeout | undefined;
  #refillTimer: NodeJS.Timeout | undefined;

  /** @internal Use {@link createPool}. */
  constructor(options: NormalizedOptions, callTimeoutMs: number, size: number, max: number, queueTimeoutMs: number) {
    this.#options = options;
    this.#callTimeoutMs = callTimeoutMs;
    this.#size = size;
    this.#max = max;
    this.#queueTimeoutMs = queueTimeoutMs;
  }

  /**
   * Runs a command in a pooled sandbox (as {@link Sandbox.exec} does, resolving with its
   * {@link RunResult}), or calls `fn` with a pooled sandbox for several steps. Either way the
   * sandbox is removed afterwards.
   * @throws SandboxError ERR_POOL_CLOSED after {@link close}, ERR_POOL_EXHAUSTED when no
   *   sandbox came within `queueTimeout`, the start error when sandboxes cannot start,
   *   ERR_TIMEOUT when a call of `fn` passes limits.timeout, and whatever the command or `fn` throws.
   *
   * @example
   * ```ts
   * const result = await pool.run(['sh', '-c', 'echo $((6 * 7))'], { timeout: '2s' });
   * const files = await pool.run((box) => box.exec(['ls', '/']));
   * ```
   */
  run<O extends ExecOptions = ExecOptions>(command: string[], options?: O): Promise<RunResult<OutputOf<O>>>;
  run<T>(fn: (box: Sandbox) => Promise<T>): Promise<T>;
  async run(commandOrFn: string[] | ((box: Sandbox) => Promise<unknown>), options?: ExecOptions): Promise<unknown> {
    if (typeof commandOrFn !== 'function') check(commandOrFn, 'command', ow.array.nonEmpty.ofType(ow.string));
    const box = await this.#acquire();
    // The call's deadline (limits.timeout): a command gets it as its exec timeout; a call of
    // `fn` fails with ERR_TIMEOUT when it passes, and its sandbox is removed, so whatever `fn`
    // still runs there ends (what `fn` does after that no longer reaches the caller).
    let timer: NodeJS.Timeout | undefined;
    try {
      if (typeof commandOrFn !== 'function') return await box.exec(commandOrFn, { ...(this.#callTimeoutMs > 0 && { timeout: this.#callTimeoutMs }), ...options });
      const call = commandOrFn(box);
      if (this.#callTimeoutMs <= 0) return await call;
      call.catch(() => undefined);
      const deadline = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => {
          void box.remove();
          reject(new SandboxError('ERR_TIMEOUT', `Pool call timed out after ${this.#callTimeoutMs} milliseconds (limits.timeout); its sandbox was removed`));
        }, this.#callTimeoutMs);
      });
      return await Promise.race([call, deadline]);
    } finally {
      clearTimeout(timer);
      // The removal and the refill start after the caller has its result (their synchronous
      // parts would otherwise run inside this call's time).
      setImmediate(() => this.#release(box));
    }
  }

  /**
   * The pool's counts now.
   *
   * @example
   * ```ts
   * console.log(pool.stats()); // { ready: 4, starting: 0, inUse: 1, waiting: 0, created: 9, failed: 0 }
   * ```
   */
  stats(): PoolStats {
    return { ready: this.#ready.length, starting: this.#starting, inUse: this.#inUse, waiting: this.#waiters.length, created: this.#created, failed: this.#failed };
  }

  /**
   * Stops handing out sandboxes: waiting calls fail with ERR_POOL_CLOSED, ready sandboxes are
   * removed, and it resolves once the calls in progress have finished and their sandboxes are gone.
   *
   * @example
   * ```ts
   * await pool.close();
   * ```
   */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#refillTimer);
    for (const waiter of this.#waiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.reject(new SandboxError('ERR_POOL_CLOSED', 'The sandbox pool was closed'));
    }
    for (const box of this.#ready.splice(0)) this.#retire(box);
    while (this.#retiring.size > 0 || this.#starting > 0 || this.#inUse > 0) {
      await Promise.race([...this.#retiring, new Promise((resolve) => setTimeout(resolve, 10))]);
      for (const box of this.#ready.splice(0)) this.#retire(box);
    }
  }

  /**
   * `await using`: closes the pool.
   *
   * @example
   * ```ts
   * { await using pool = await createPool({ image: 'host' }); await pool.run(['true']); }
   * ```
   */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** @internal Starts sandboxes until `size` are ready or starting (within `maxSandboxes`). */
  fill(): void {
    clearTimeout(this.#refillTimer);
    this.#refillTimer = undefined;
    while (!this.#closed && this.#ready.length + this.#starting < this.#size + this.#waiters.length && this.#alive() < this.#max) this.#startOne();
  }

  /** @internal Resolves once `size` sandboxes are ready, or rejects with why they cannot start. */
  async warm(): Promise<void> {
    // Waits on the starts fill() began, as waiters that fill() does not count: through #acquire,
    // each would have started one more sandbox (twice `size` in all).
    const boxes = await Promise.allSettled(Array.from({ length: this.#size }, () => new Promise<Sandbox>((resolve, reject) => this.#waiters.push({ resolve, reject, timer: undefined }))));
    for (const settled of boxes) {
      if (settled.status !== 'fulfilled') continue;
      this.#inUse--;
      this.#handOut(settled.value);
    }
    const failure = boxes.find((settled) => settled.status === 'rejected');
    if (failure) throw (failure as PromiseRejectedResult).reason;
  }

  #alive(): number {
    return this.#ready.length + this.#starting + this.#inUse;
  }

  #startOne(): void {
    this.#starting++;
    Sandbox[startChecked](this.#options).then(
      (box) => {
        this.#starting--;
        this.#created++;
        this.#lastError = undefined;
        if (this.#closed) this.#retire(box);
        else this.#handOut(box);
      },
      (error: unknown) => {
        this.#starting--;
        this.#failed++;
        this.#lastError = error;
        // A start that fails fails the oldest waiter (it would otherwise wait for its timeout),
        // and the pool tries again after a pause rather than in a tight loop.
        const waiter = this.#waiters.shift();
        if (waiter) {
          clearTimeout(waiter.timer);
          waiter.reject(error);
        }
        clearTimeout(this.#retryTimer);
        if (!this.#closed) this.#retryTimer = setTimeout(() => this.fill(), 200).unref();
      },
    );
  }

  #handOut(box: Sandbox): void {
    const waiter = this.#waiters.shift();
    if (!waiter) {
      this.#ready.push(box);
      return;
    }
    clearTimeout(waiter.timer);
    this.#inUse++;
    waiter.resolve(box);
  }

  #acquire(): Promise<Sandbox> {
    if (this.#closed) return Promise.reject(new SandboxError('ERR_POOL_CLOSED', 'The sandbox pool is closed'));
    // A ready sandbox that stopped meanwhile (lifetime limit, killed from outside) is skipped.
    let box: Sandbox | undefined;
    while ((box = this.#ready.shift()) && box.state !== 'running') this.#retire(box);
    if (box) {
      this.#inUse++;
      // The last ready one is gone: the next call would wait for a whole start, so refill now.
      if (this.#ready.length === 0) this.fill();
      else this.#refillTimer ??= setTimeout(() => this.fill(), REFILL_DELAY_MS);
      return Promise.resolve(box);
    }
    return new Promise<Sandbox>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          const at = this.#waiters.indexOf(waiter);
          if (at < 0) return; // served or failed meanwhile
          this.#waiters.splice(at, 1);
          const why = this.#lastError instanceof Error ? ` (last start failed: ${this.#lastError.message})` : '';
          reject(new SandboxError('ERR_POOL_EXHAUSTED', `No sandbox became free within ${this.#queueTimeoutMs} ms (${this.#inUse} in use, at most ${this.#max})${why}`));
        }, this.#queueTimeoutMs),
      };
      this.#waiters.push(waiter);
      this.fill();
    });
  }

  #release(box: Sandbox): void {
    this.#inUse--;
    this.#retire(box);
    this.fill();
  }

  #retire(box: Sandbox): void {
    const removal = box.remove().catch(() => {}).finally(() => {
      this.#retiring.delete(removal);
      this.fill();
    });
    this.#retiring.add(removal);
  }
}

/**
 * Creates a {@link SandboxPool} and resolves once `size` sandboxes are ready (or rejects
 * with the error that keeps them from starting, e.g. an image that does not exist).
 * @throws SandboxError ERR_INVALID_OPTION for bad options, and whatever {@link Sandbox.create} throws.
 *
 * @example
 * ```ts
 * import { createPool } from 'nsbox';
 * const pool = await createPool({ image: 'host', size: 2, limits: { memory: '64MiB', pids: 32 } });
 * try {
 *   console.log((await pool.run(['uname', '-r'])).stdout);
 * } finally {
 *   await pool.close();
 * }
 * ```
 */
export async function createPool(options: PoolOptions): Promise<SandboxPool> {
  check(options, 'options', ow.object);
  const { size, maxSandboxes, queueTimeout, ...createOptions } = options;
  check({ size, maxSandboxes, queueTimeout }, 'options', ow.object.partialShape(poolShape));
  const ready = size ?? 2;
  const max = maxSandboxes ?? Math.max(4 * ready, 1);
  if (max < ready) throw new SandboxError('ERR_INVALID_OPTION', `Invalid pool option: maxSandboxes (${max}) is less than size (${ready})`);
  const queueTimeoutMs = queueTimeout === undefined ? 30_000 : parseDuration(queueTimeout);
  if (queueTimeoutMs === undefined) throw new SandboxError('ERR_INVALID_OPTION', `Invalid pool option: queueTimeout must be milliseconds or a duration like 5s, got \`${String(queueTimeout)}\``);
  // A pooled sandbox waits for its call without a deadline; limits.timeout applies to each call.
  const { limits, ...rest } = createOptions;
  const { timeout: callTimeout, ...sandboxLimits } = typeof limits === 'object' && limits !== null ? limits : {};
  const callTimeoutMs = callTimeout === undefined ? 0 : parseDuration(callTimeout);
  if (callTimeoutMs === undefined) throw new SandboxError('ERR_INVALID_OPTION', `Invalid pool option: limits.timeout must be milliseconds or a duration like 2s, got \`${String(callTimeout)}\``);
  // Checked once here, for every sandbox the pool will start.
  const normalized = checkCreateOptions({ ...rest, ...(limits !== undefined && { limits: typeof limits === 'object' && limits !== null ? sandboxLimits : limits }) } as CreateOptions);
  const pool = new SandboxPool(normalized, callTimeoutMs, ready, max, queueTimeoutMs);
  pool.fill();
  try {
    await pool.warm();
  } catch (error) {
    await pool.close();
    throw error;
  }
  return pool;
}
