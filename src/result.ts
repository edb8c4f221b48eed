// SPDX-License-Identifier: Apache-2.0
// RunResult and RunError: one shape for every outcome, and every message built here.
import { constants } from 'node:os';
import { SandboxError, SetupError, type ErrorCode } from './errors.js';
import type { NativeSetupFailure } from './native/native.js';
import { stageName } from './native/stages.js';

/**
 * What the sandbox's processes used, from its cgroup.
 *
 * @example
 * ```ts
 * const { usage } = await run({ image: 'host', command: ['node', '-e', 'new Array(1e6).fill(1)'] });
 * console.log(`${usage.cpuTimeMs} ms CPU, ${usage.memoryPeakBytes} bytes at peak`);
 * ```
 */
export interface ResourceUsage {
  /** CPU time of every process of the sandbox, in milliseconds. */
  cpuTimeMs: number;
  /** Peak memory of the sandbox (cgroup), or null without a memory cgroup. */
  memoryPeakBytes: number | null;
  /** Peak number of processes and threads, or null when the kernel does not count it. */
  pidsPeak: number | null;
}

/**
 * The outcome of a sandbox run. Keys always come in this order.
 *
 * @example
 * ```ts
 * const result = await run({ image: 'host', command: ['echo', 'hi'] });
 * result.stdout; // 'hi\n'
 * ```
 */
export interface RunResult<Output extends string | Buffer = string> {
  /** The argv that ran. */
  command: string[];
  /** The image it ran from. */
  image: string;
  /** Exit code, or null when a signal ended the workload. */
  exitCode: number | null;
  /** The signal that ended the workload, or null. */
  signal: NodeJS.Signals | null;
  /** What the workload wrote to stdout (up to limits.output; empty with `buffer: false`). */
  stdout: Output;
  /** What the workload wrote to stderr (up to limits.output; empty with `buffer: false`). */
  stderr: Output;
  /** True when the run did not end with exit code 0 on its own. */
  failed: boolean;
  /** The wall-clock limit killed the sandbox. */
  timedOut: boolean;
  /** The AbortSignal killed the sandbox. */
  isCanceled: boolean;
  /** The kernel's OOM killer killed a process of the sandbox (memory limit). */
  oomKilled: boolean;
  /** Output passed limits.output: it was cut there and the sandbox killed. */
  outputTruncated: boolean;
  /** From spawn to exit, in milliseconds. */
  durationMs: number;
  /** What the sandbox used, from its cgroup. */
  usage: ResourceUsage;
}

const brand = Symbol.for('nsbox.RunError');

/**
 * A run that failed (non-zero exit, signal, timeout, abort, OOM, output limit), with every
 * field of {@link RunResult}. With `reject: false` it is returned instead of thrown.
 *
 * @example
 * ```ts
 * try {
 *   await run({ image: 'host', command: ['sleep', '9'], limits: { timeout: '1s' } });
 * } catch (error) {
 *   if (error instanceof RunError && error.timedOut) console.log('took too long');
 * }
 * ```
 */
export class RunError<Output extends string | Buffer = string> extends SandboxError {
  /** The message without the output. */
  readonly shortMessage: string;
  /** The argv that ran. */
  declare command: string[];
  /** The image it ran from. */
  declare image: string;
  /** Exit code, or null when a signal ended the workload. */
  declare exitCode: number | null;
  /** The signal that ended the workload, or null. */
  declare signal: NodeJS.Signals | null;
  /** What the workload wrote to stdout (up to limits.output). */
  declare stdout: Output;
  /** What the workload wrote to stderr (up to limits.output). */
  declare stderr: Output;
  /** Always true for an error. */
  declare failed: boolean;
  /** The wall-clock limit killed the sandbox. */
  declare timedOut: boolean;
  /** The AbortSignal killed the sandbox. */
  declare isCanceled: boolean;
  /** The kernel's OOM killer killed a process of the sandbox. */
  declare oomKilled: boolean;
  /** Output passed limits.output. */
  declare outputTruncated: boolean;
  /** From spawn to exit, in milliseconds. */
  declare durationMs: number;
  /** What the sandbox used. */
  declare usage: ResourceUsage;

  constructor(code: ErrorCode, shortMessage: string, result: RunResult<Output>) {
    const output = [result.stderr, result.stdout].map((o) => o.toString().trim()).filter(Boolean).join('\n');
    super(code, output ? `${shortMessage}\n\n${output}` : shortMessage);
    this.shortMessage = shortMessage;
    Object.assign(this, result);
    Object.defineProperty(this, brand, { value: true });
  }
}
Object.defineProperty(RunError.prototype, 'name', { value: 'RunError', enumerable: false, configurable: true, writable: true });

const signalNames = new Map(Object.entries(constants.signals).map(([name, n]) => [n, name as NodeJS.Signals]));
const errnoNames = new Map(Object.entries(constants.errno).map(([name, n]) => [n, name]));

/** @internal */
export function signalName(signal: number): NodeJS.Signals | null {
  return signal ? signalNames.get(signal) ?? null : null;
}

/** @internal The error for a failed spawn, from the child's record. */
export function setupError(failure: NativeSetupFailure): SetupError {
  const stage = stageName(failure.stage);
  const errnoCode = errnoNames.get(failure.errno) ?? `errno ${failure.errno}`;
  const path = failure.path ? ` \`${failure.path}\`` : '';
  if (stage === 'exec') {
    const what = failure.errno === constants.errno.ENOENT ? 'not found in the sandbox' : 'could not be executed';
    return new SetupError('ERR_EXEC', `Command${path} ${what}: ${failure.syscall}: ${errnoCode}`, { stage, syscall: failure.syscall, errno: failure.errno, errnoCode, path: failure.path });
  }
  return new SetupError('ERR_SETUP', `Sandbox setup failed at ${stage}: ${failure.syscall}${path}: ${errnoCode}`, {
    stage, syscall: failure.syscall, errno: failure.errno, errnoCode, path: failure.path,
  });
}

/** @internal Why a run failed, in one line; null when it did not. */
export function failureOf(result: RunResult<string | Buffer>, limits: { timeoutMs: number; outputBytes: number }): { code: ErrorCode; message: string } | null {
  const command = result.command.join(' ');
  if (result.isCanceled) return { code: 'ERR_CANCELED', message: `Command was canceled: ${command}` };
  if (result.timedOut) return { code: 'ERR_TIMEOUT', message: `Command timed out after ${limits.timeoutMs} milliseconds: ${command}` };
  if (result.outputTruncated) return { code: 'ERR_OUTPUT_LIMIT', message: `Command output passed the limit of ${limits.outputBytes} bytes: ${command}` };
  if (result.oomKilled) return { code: 'ERR_OOM', message: `Command was killed by the OOM killer (memory limit): ${command}` };
  if (result.signal) return { code: 'ERR_NON_ZERO_EXIT', message: `Command was killed with ${result.signal}: ${command}` };
  if (result.exitCode !== 0) return { code: 'ERR_NON_ZERO_EXIT', message: `Command failed with exit code ${result.exitCode ?? 'unknown'}: ${command}` };
  return null;
}
