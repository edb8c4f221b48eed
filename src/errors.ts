// SPDX-License-Identifier: Apache-2.0
// Every error nsbox throws: one class, a stable `code`, and a brand that works across realms.

/** The stable codes of {@link SandboxError}. */
export type ErrorCode =
  | 'ERR_INVALID_OPTION'
  | 'ERR_UNSUPPORTED'
  | 'ERR_PERMISSION'
  | 'ERR_IMAGE_NOT_FOUND'
  | 'ERR_IMAGE_INVALID'
  | 'ERR_DIGEST_MISMATCH'
  | 'ERR_SETUP'
  | 'ERR_EXEC'
  | 'ERR_TIMEOUT'
  | 'ERR_CANCELED'
  | 'ERR_NON_ZERO_EXIT'
  | 'ERR_NATIVE_LOAD'
  | 'ERR_CGROUP';

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
