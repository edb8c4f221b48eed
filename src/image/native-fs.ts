// SPDX-License-Identifier: Apache-2.0
// mknod and xattr calls that Node lacks, taken from the addon and made to throw the way node:fs does.

import { getSystemErrorName } from 'node:util';
import { SandboxError } from '../errors.js';
import { native } from '../native/binding.js';

/**
 * mknod(2): creates a device node or fifo at `path` (never follows a symlink there).
 *
 * @param mode - file type bit (`S_IFCHR`, `S_IFBLK`, `S_IFIFO`) or'ed with the permission bits.
 *
 * @example
 * ```ts
 * mknod('/layer/etc/gone', fs.constants.S_IFCHR, 0, 0); // an overlay whiteout
 * ```
 */
export function mknod(path: string, mode: number, major: number, minor: number): void {
  check(native().mknod(path, mode, major, minor), 'mknod', path);
}

/**
 * lsetxattr(2) with a string value.
 *
 * @example
 * ```ts
 * setXattr('/layer/data', 'trusted.overlay.opaque', 'y');
 * ```
 */
export function setXattr(path: string, name: string, value: string): void {
  check(native().lsetxattr(path, name, Buffer.from(value)), 'lsetxattr', path);
}

/**
 * lsetxattr(2) with a binary value, reporting failure instead of throwing: null on success,
 * else the errno name (`ENOTSUP`, `EPERM`, …), so a caller can decide which failures matter.
 *
 * @example
 * ```ts
 * trySetXattr('/layer/bin/ping', 'security.capability', capabilityBytes); // null
 * ```
 */
export function trySetXattr(path: string, name: string, value: Buffer): string | null {
  const result = native().lsetxattr(path, name, value);
  return result === 0 ? null : getSystemErrorName(result);
}

/**
 * lgetxattr(2) as a string; null when `path` has no attribute `name`.
 *
 * @example
 * ```ts
 * getXattr('/layer/data', 'user.overlay.opaque'); // 'y', 'x' or null
 * ```
 */
export function getXattr(path: string, name: string): string | null {
  return native().lgetxattr(path, name)?.toString() ?? null;
}

/**
 * lgetxattr(2) as bytes (a value such as `security.capability` is binary); null when absent.
 *
 * @example
 * ```ts
 * getXattrBytes('/upper/bin/ping', 'security.capability'); // <Buffer 01 00 00 02 …>
 * ```
 */
export function getXattrBytes(path: string, name: string): Buffer | null {
  return native().lgetxattr(path, name);
}

/**
 * llistxattr(2): the names of the extended attributes of `path` (not following a symlink) that
 * this process may see (`trusted.*` only with CAP_SYS_ADMIN). A filesystem without xattrs has none.
 *
 * @example
 * ```ts
 * listXattrs('/upper/data'); // ['trusted.overlay.opaque']
 * ```
 */
export function listXattrs(path: string): string[] {
  const result = native().llistxattr(path);
  if (Array.isArray(result)) return result;
  if (getSystemErrorName(result) === 'ENOTSUP' || getSystemErrorName(result) === 'EOPNOTSUPP') return [];
  check(result, 'llistxattr', path);
  return [];
}

function check(result: number, syscall: string, path: string): void {
  if (result === 0) return;
  const code = getSystemErrorName(result);
  const error = Object.assign(new Error(`${syscall} '${path}': ${code}`), { errno: result, code, syscall, path });
  if (code === 'ENOTSUP' || code === 'EOPNOTSUPP') {
    throw new SandboxError('ERR_UNSUPPORTED', `The filesystem of ${path} does not support ${syscall} here (needed for overlay layers)`, { cause: error });
  }
  if (code === 'EPERM') throw new SandboxError('ERR_PERMISSION', `Not permitted to ${syscall} ${path}`, { cause: error });
  throw error;
}
