// SPDX-License-Identifier: Apache-2.0
// Every error nsbox throws: one class, a stable `code`, and a brand that works across realms.

/**
 * The stable codes of {@link SandboxError}.
 *
 * @example
 * ```ts
 * const retryable = (code: ErrorCode) => code === 'ERR_TIMEOUT' || code === 'ERR_OOM';
 * ```
 */
export type ErrorCode =
  | 'ERR_INVALID_OPTION'
  | 'ERR_UNSUPPORTED'
  | 'ERR_PERMISSION'
  | 'ERR_IMAGE_NOT_FOUND'
  | 'ERR_IMAGE_INVALID'
  | 'ERR_REGISTRY'
  | 'ERR_DIGEST_MISMATCH'
  | 'ERR_SETUP'
  | 'ERR_EXEC'
  | 'ERR_TIMEOUT'
  | 'ERR_CANCELED'
  | 'ERR_NON_ZERO_EXIT'
  | 'ERR_OOM'
  | 'ERR_OUTPUT_LIMIT'
  | 'ERR_NATIVE_LOAD'
  | 'ERR_CGROUP'
  | 'ERR_SANDBOX_STOPPED'
  | 'ERR_SANDBOX_PAUSED'
  | 'ERR_FILE'
  | 'ERR_NOT_FOUND'
  | 'ERR_IN_USE'
  | 'ERR_POOL_CLOSED'
  | 'ERR_POOL_EXHAUSTED'
  | 'ERR_NETWORK'
  | 'ERR_NETWORK_NOT_FOUND'
  | 'ERR_PORT_IN_USE';

const brand = Symbol.for('nsbox.SandboxError');

/**
 * The base class of every error nsbox throws. `code` is stable and safe to switch on.
 *
 * @example
 * ```ts
 * import { run, isSandboxError } from 'nsbox';
 * try {
 *   await run({ image: 'host', command: ['/no/such/binary'] });
 * } catch (error) {
 *   if (isSandboxError(error) && error.code === 'ERR_EXEC') console.log('command not found in the image');
 * }
 * ```
 */
export class SandboxError extends Error {
  /** A stable, documented error code. */
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    Object.defineProperty(this, brand, { value: true });
  }
}
Object.defineProperty(SandboxError.prototype, 'name', { value: 'SandboxError', enumerable: false, configurable: true, writable: true });

/**
 * True for any error nsbox made, also one from another copy of the module.
 *
 * @example
 * ```ts
 * if (isSandboxError(err)) console.error(err.code);
 * ```
 */
export function isSandboxError(value: unknown): value is SandboxError {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[brand] === true;
}

/**
 * A sandbox could not be set up (ERR_SETUP), or its command could not be executed (ERR_EXEC).
 * Carries the failing stage and system call, like Node's SystemError.
 *
 * @example
 * ```ts
 * try {
 *   await run({ image: 'host', command: ['nope'] });
 * } catch (error) {
 *   if (error instanceof SetupError) console.log(error.stage, error.syscall, error.errnoCode); // exec execve ENOENT
 * }
 * ```
 */
export class SetupError extends SandboxError {
  /** The setup stage that failed ('overlay-mount', 'pivot-root', 'exec', …). */
  readonly stage: string;
  /** The failing system call. */
  readonly syscall: string;
  /** The errno number. */
  readonly errno: number;
  /** The errno name ('ENOENT'). */
  readonly errnoCode: string;
  /** The path involved, or ''. */
  readonly path: string;

  constructor(code: 'ERR_SETUP' | 'ERR_EXEC', message: string, fields: { stage: string; syscall: string; errno: number; errnoCode: string; path: string }) {
    super(code, message);
    this.stage = fields.stage;
    this.syscall = fields.syscall;
    this.errno = fields.errno;
    this.errnoCode = fields.errnoCode;
    this.path = fields.path;
  }
}
Object.defineProperty(SetupError.prototype, 'name', { value: 'SetupError', enumerable: false, configurable: true, writable: true });
