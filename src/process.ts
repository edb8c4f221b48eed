// SPDX-License-Identifier: Apache-2.0
// SandboxProcess: one running sandbox — its stdio streams, kill, and the promise of its RunResult.
import { EventEmitter } from 'node:events';
import { Socket } from 'node:net';
import { constants } from 'node:os';
import { PassThrough, Readable, type Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { SandboxError } from './errors.js';
import { failureOf, RunError, signalName, type RunResult } from './result.js';
import { launch, type Launched } from './launch.js';
import type { NormalizedOptions } from './options.js';

const SIGKILL = constants.signals.SIGKILL;

/**
 * A running sandbox, as {@link spawn} returns it: stdio streams, `kill()`, and a promise of
 * its {@link RunResult} (`await` it directly, or use `.result`).
 *
 * @example
 * ```ts
 * const child = spawn({ image: 'host', command: ['sh', '-c', 'read x; echo got $x'] });
 * child.stdin.end('hello\n');
 * child.stdout.pipe(process.stdout);
 * const result = await child;
 * ```
 */
export class SandboxProcess<Output extends string | Buffer = string> extends EventEmitter implements PromiseLike<RunResult<Output>> {
  /** The sandbox id (also the default hostname's source and the cgroup's name). */
  readonly id: string;
  /** Writable stdin; ended by the caller. Null when `stdin` was given as an option (it is fed for you). */
  readonly stdin: Writable | null;
  /** The workload's stdout, as it comes (also collected into the result, up to limits.output). */
  readonly stdout: Readable;
  /** The workload's stderr, as it comes (also collected into the result, up to limits.output). */
  readonly stderr: Readable;
  /** The host pid of the sandbox's pid 1, once it runs (after the 'spawn' event). */
  pid: number | undefined;
  /** Resolves with the result, or rejects with a RunError (unless `reject: false`) or a setup error. */
  readonly result: Promise<RunResult<Output>>;

  #launched: Launched | undefined;
  #pendingSignal: number | undefined;
  #killReason: 'timeout' | 'cancel' | 'output' | undefined;

  /** @internal Use {@link spawn}, or {@link Sandbox.exec} (which passes its own `start`). */
  constructor(id: string, options: NormalizedOptions, streams: boolean, start: (stdio: [boolean, boolean, boolean]) => Promise<Launched> = (stdio) => launch(id, options, stdio)) {
    super();
    this.id = id;
    this.stdout = new PassThrough();
    this.stderr = new PassThrough();
    this.stdin = options.stdin === undefined && streams ? new PassThrough() : null;
    if (!streams) {
      // run(): nobody reads these, so they only drain.
      this.stdout.resume();
      this.stderr.resume();
    }
    this.result = this.#run(options, start);
    // The result is also reachable through `then`; an unobserved rejection is the caller's to handle.
    this.result.catch(() => {});
  }

  then<A = RunResult<Output>, B = never>(
    onFulfilled?: ((value: RunResult<Output>) => A | PromiseLike<A>) | null,
    onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    return this.result.then(onFulfilled, onRejected);
  }

  /**
   * Sends a signal to the sandbox's pid 1 (nsbox-init forwards it to the workload). SIGKILL
   * ends the whole sandbox at once. Returns false when it has already exited.
   */
  kill(signal: NodeJS.Signals | number = 'SIGTERM'): boolean {
    const number = typeof signal === 'number' ? signal : constants.signals[signal];
    if (number === undefined) throw new SandboxError('ERR_INVALID_OPTION', `Invalid signal \`${String(signal)}\``);
    if (!this.#launched) {
      this.#pendingSignal = number;
      return true;
    }
    return this.#launched.kill(number);
  }

  /**
   * Sets the terminal size of an exec started with `tty` (the command gets SIGWINCH). Returns
   * false when it has no terminal or has ended.
   *
   * @example
   * ```ts
   * const shell = box.exec(['sh'], { tty: { columns: 120, rows: 40 } });
   * process.stdout.on('resize', () => shell.resize(process.stdout.columns, process.stdout.rows));
   * ```
   */
  resize(columns: number, rows: number): boolean {
    if (!Number.isInteger(columns) || !Number.isInteger(rows) || columns < 1 || rows < 1 || columns > 65535 || rows > 65535)
      throw new SandboxError('ERR_INVALID_OPTION', `Invalid terminal size ${String(columns)}x${String(rows)}: expected integers from 1 to 65535`);
    return this.#launched?.resize?.(columns, rows) ?? false;
  }

  #killFor(reason: 'timeout' | 'cancel' | 'output'): void {
    this.#killReason ??= reason;
    this.kill(SIGKILL);
  }

  async #run(options: NormalizedOptions, startSandbox: (stdio: [boolean, boolean, boolean]) => Promise<Launched>): Promise<RunResult<Output>> {
    const start = performance.now();
    const { signal, limits } = options;
    if (signal?.aborted) throw new SandboxError('ERR_CANCELED', 'The sandbox was canceled before it started', { cause: signal.reason });
    // The caller's stack, formatted only if a setup error needs it: formatting it on every start
    // cost about 50 µs (more with source maps), on the start path.
    const site: { stack?: string } = {};
    Error.captureStackTrace(site);
    // Listen before launching: an abort while the sandbox starts kills it as soon as it runs.
    const onAbort = () => this.#killFor('cancel');
    signal?.addEventListener('abort', onAbort, { once: true });

    let launched: Launched;
    try {
      launched = await startSandbox([this.stdin !== null || options.stdin !== undefined, true, true]);
    } catch (error) {
      signal?.removeEventListener('abort', onAbort);
      // Point the stack at the caller, not at the worker thread (sharp's nativeError).
      const stack = site.stack;
      if (error instanceof SandboxError && stack) error.stack = `${error.name}: ${error.message}\n${stack.split('\n').slice(2).join('\n')}`;
      this.stdout.destroy();
      this.stderr.destroy();
      this.stdin?.destroy();
      throw error;
    }
    this.#launched = launched;
    this.pid = launched.pid;
    try {
      this.emit('spawn');
    } catch (error) {
      // A listener's exception is the caller's, as with any event: uncaught, not the run's, which must go on to clean up.
      process.nextTick(() => {
        throw error;
      });
    }
    if (this.#pendingSignal !== undefined) launched.kill(this.#pendingSignal);
    const timer = limits.timeoutMs > 0 ? setTimeout(() => this.#killFor('timeout'), limits.timeoutMs) : undefined;

    const chunks: { stdout: Buffer[]; stderr: Buffer[] } = { stdout: [], stderr: [] };
    let total = 0;
    let truncated = false;
    // Every byte counts toward limits.output, kept or not; the streams of spawn() carry
    // backpressure, so a caller that reads slowly slows the workload instead of the host's memory growing.
    const collect = (name: 'stdout' | 'stderr', source: Readable | null, sink: PassThrough) => {
      if (!source) {
        sink.end();
        return Promise.resolve();
      }
      source.on('data', (chunk: Buffer) => {
        if (truncated) return;
        const room = limits.outputBytes - total;
        if (chunk.length > room) {
          chunk = chunk.subarray(0, room);
          truncated = true;
          this.#killFor('output');
        }
        total += chunk.length;
        if (options.buffer) chunks[name].push(chunk);
        if (!sink.write(chunk)) {
          source.pause();
          sink.once('drain', () => source.resume());
        }
      });
      return finished(source).catch(() => {}).finally(() => sink.end());
    };
    const output = Promise.all([collect('stdout', launched.stdout, this.stdout as PassThrough), collect('stderr', launched.stderr, this.stderr as PassThrough)]);
    let stdinError: unknown;
    try {
      this.#feedStdin(options.stdin, launched.stdin);
    } catch (error) {
      // A stdin stream that cannot even be piped: the sandbox runs, so it ends and is cleaned up like any other.
      stdinError = error;
      launched.kill(SIGKILL);
    }

    const exit = await launched.exited;
    // Nobody inside reads any more: release the pipe even if the caller never ends stdin.
    (this.stdin as PassThrough | null)?.unpipe();
    // (On a terminal, stdin is also stdout, still being read.)
    if (launched.stdin !== launched.stdout) launched.stdin?.destroy();
    await output;
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
    const stats = await launched.cleanup();
    if (stdinError !== undefined) throw new SandboxError('ERR_INVALID_OPTION', 'Invalid sandbox option: stdin could not be piped to the sandbox', { cause: stdinError });

    const decode = (parts: Buffer[]) => (options.encoding === 'buffer' ? Buffer.concat(parts) : Buffer.concat(parts).toString('utf8')) as Output;
    const result: RunResult<Output> = {
      command: launched.argv,
      image: launched.image,
      exitCode: exit.exitCode,
      signal: signalName(exit.signal),
      stdout: decode(chunks.stdout),
      stderr: decode(chunks.stderr),
      failed: false,
      timedOut: this.#killReason === 'timeout',
      isCanceled: this.#killReason === 'cancel',
      oomKilled: stats.oomKilled,
      outputTruncated: truncated,
      durationMs: performance.now() - start,
      usage: { cpuTimeMs: stats.cpuTimeMs ?? exit.cpuUsec / 1000, memoryPeakBytes: stats.memoryPeakBytes, pidsPeak: stats.pidsPeak },
    };
    const failure = failureOf(result, limits);
    result.failed = failure !== null;
    if (!failure) return result;
    const error = new RunError<Output>(failure.code, failure.message, result);
    if (!options.reject) return error as unknown as RunResult<Output>;
    const stack = site.stack;
    if (stack) error.stack = `${error.name}: ${error.message}\n${stack.split('\n').slice(2).join('\n')}`;
    throw error;
  }

  #feedStdin(input: NormalizedOptions['stdin'], pipe: Socket | null): void {
    if (!pipe) return;
    // A workload that exits without reading its stdin is not an error of the host.
    pipe.on('error', () => {});
    if (this.stdin) {
      this.stdin.pipe(pipe);
    } else if (typeof input === 'string' || input instanceof Uint8Array) {
      pipe.end(input);
    } else if (input !== undefined) {
      // The caller's stream: when it fails, the workload's stdin ends; its error must not crash the host.
      input.on('error', () => pipe.destroy());
      input.pipe(pipe);
    }
  }
}
