// SPDX-License-Identifier: Apache-2.0
// The entry points: run() and spawn().
import { newCgroupId } from './cgroup/cgroup.js';
import { isSandboxError, SandboxError } from './errors.js';
import { normalizeOptions, type NormalizedOptions, type SandboxOptions } from './options.js';
import { SandboxProcess } from './process.js';
import type { RunResult } from './result.js';

const MAX_ARRAY = 2 ** 20;

/**
 * The caller's plain objects and arrays, copied with each property read once: a getter or Proxy
 * that answers differently on a second read, or an array changed after the call, cannot slip a
 * value past validation. Streams, signals, Buffers and other class instances are kept as they are.
 */
function snapshot(value: unknown, seen = new Map<object, unknown>()): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (seen.has(value)) return seen.get(value);
  const isArray = Array.isArray(value);
  const proto = Object.getPrototypeOf(value);
  if (!isArray && proto !== Object.prototype && proto !== null) return value;
  const copy: Record<PropertyKey, unknown> = isArray ? [] : Object.create(proto);
  seen.set(value, copy);
  const length = isArray ? (value as unknown[]).length : 0;
  // A sparse array (or a Proxy's `length`) would otherwise be walked for minutes.
  if (length > MAX_ARRAY) throw new SandboxError('ERR_INVALID_OPTION', `Invalid sandbox option: an array of ${length} items (at most ${MAX_ARRAY})`);
  const keys = isArray ? Array.from({ length }, (_, i) => String(i)) : Reflect.ownKeys(value);
  for (const key of keys) {
    if (!isArray && !Object.prototype.propertyIsEnumerable.call(value, key)) continue;
    // defineProperty, not assignment: an own `__proto__` key (from JSON.parse) stays a key, as ow expects.
    Object.defineProperty(copy, key, { value: snapshot((value as Record<PropertyKey, unknown>)[key], seen), enumerable: true, writable: true, configurable: true });
  }
  return copy;
}

const abortedGetter = Object.getOwnPropertyDescriptor(AbortSignal.prototype, 'aborted')!.get!;

function messageOf(error: unknown): string {
  try {
    return error instanceof Error ? error.message : String(error);
  } catch {
    return 'an unreadable value was thrown';
  }
}

// What the option shape cannot see, checked before anything starts: options that throw while
// being read, an AbortSignal look-alike, a stdin object that is no stream, a layer stack's config
// fields of the wrong type, a failStage hook that is no number. All of them ERR_INVALID_OPTION,
// like every other bad option. (These belong in options.ts's shape; kept here to stay out of
// that file while it changes.)
/** @internal */
export function checkedOptions(options: SandboxOptions): NormalizedOptions {
  const invalid = (message: string, cause?: unknown) => new SandboxError('ERR_INVALID_OPTION', `Invalid sandbox option: ${message}`, { cause });
  let copy: SandboxOptions;
  try {
    copy = snapshot(options) as SandboxOptions;
  } catch (error) {
    if (isSandboxError(error)) throw error;
    throw invalid(`reading the options threw: ${messageOf(error)}`, error);
  }
  try {
    const normalized = normalizeOptions(copy);
    const { signal, stdin, image, failStage } = normalized;
    // The tests' fault-injection hook is reachable through Symbol.for; the addon needs a number.
    if (!Number.isInteger(failStage)) throw invalid('the failStage test hook must be a stage number');
    if (signal !== undefined) {
      try {
        abortedGetter.call(signal);
      } catch (error) {
        throw invalid('signal must be an AbortSignal', error);
      }
    }
    if (stdin !== undefined && typeof stdin !== 'string' && !(stdin instanceof Uint8Array) && (typeof stdin.pipe !== 'function' || typeof stdin.on !== 'function'))
      throw invalid('stdin must be a string, a Buffer or a readable stream');
    if (typeof image === 'object' && image.config !== undefined) {
      const config = image.config as Record<string, unknown>;
      const strings = (v: unknown) => Array.isArray(v) && v.every((s) => typeof s === 'string' && !s.includes('\0'));
      for (const key of ['env', 'entrypoint', 'cmd', 'exposedPorts'])
        if (config[key] !== undefined && !strings(config[key])) throw invalid(`image.config.${key} must be an array of strings`);
      for (const key of ['workingDir', 'user'])
        if (config[key] !== undefined && (typeof config[key] !== 'string' || (config[key] as string).includes('\0'))) throw invalid(`image.config.${key} must be a string`);
      const labels = config.labels;
      if (labels !== undefined && (typeof labels !== 'object' || labels === null || Object.values(labels).some((v) => typeof v !== 'string')))
        throw invalid('image.config.labels must be an object of strings');
    }
    return normalized;
  } catch (error) {
    if (isSandboxError(error)) throw error;
    throw invalid(messageOf(error), error);
  }
}

/**
 * The type of `stdout`/`stderr`: Buffer with `encoding: 'buffer'`, else string.
 *
 * @example
 * ```ts
 * const { stdout } = await run({ image: 'host', command: ['cat', '/bin/sh'], encoding: 'buffer' }); // stdout: Buffer
 * ```
 */
export type OutputOf<O extends { encoding?: 'utf8' | 'buffer' }> = O extends { encoding: 'buffer' } ? Buffer : string;

/**
 * Starts a sandbox and returns at once. Options are checked first: a bad option throws
 * ERR_INVALID_OPTION synchronously, before anything is touched.
 *
 * @example
 * ```ts
 * import { spawn } from 'nsbox';
 * const child = spawn({ image: 'host', command: ['sh', '-c', 'while read l; do echo "> $l"; done'] });
 * child.stdout.on('data', (chunk) => process.stdout.write(chunk));
 * child.stdin!.end('one\ntwo\n');
 * const { exitCode } = await child;
 * ```
 */
export function spawn<O extends SandboxOptions>(options: O): SandboxProcess<OutputOf<O>> {
  return new SandboxProcess<OutputOf<O>>(newCgroupId(), checkedOptions(options), true);
}

/**
 * Runs a command in a fresh sandbox and resolves with its result; rejects with a RunError on
 * a non-zero exit, a signal, a timeout, an abort, an OOM kill or too much output (unless
 * `reject: false`), and with a SetupError when the sandbox cannot start.
 *
 * @example
 * ```ts
 * import { run } from 'nsbox';
 * const { stdout } = await run({ image: 'host', command: ['node', '-e', 'console.log(6 * 7)'], limits: { memory: '256MiB', timeout: '5s' } });
 * console.log(stdout); // 42
 * ```
 */
export async function run<O extends SandboxOptions>(options: O): Promise<RunResult<OutputOf<O>>> {
  return new SandboxProcess<OutputOf<O>>(newCgroupId(), checkedOptions(options), false).result;
}
