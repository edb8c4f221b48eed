// SPDX-License-Identifier: Apache-2.0
// The runtime defaults of an image (its config blob's `config` object), normalised for the sandbox.

import { SandboxError } from '../errors.js';

/**
 * What an image says about how to run it: the `config` object of an OCI or Docker image
 * config, with absent or `null` fields normalised to empty values.
 *
 * @example
 * ```ts
 * const { config } = await resolveOciImage('./busybox-oci', { cacheRoot, rootless: false });
 * const argv = [...config.entrypoint, ...config.cmd];
 * ```
 */
export interface ImageConfig {
  /** Environment as `KEY=value` strings, in image order. */
  env: string[];
  /** The program and its first arguments; the command (or Cmd) is appended. */
  entrypoint: string[];
  /** Default arguments, replaced by a command given to run/spawn. */
  cmd: string[];
  /** Working directory inside the root; '' when the image sets none. */
  workingDir: string;
  /** `user`, `uid`, `user:group` or `uid:gid`; '' when the image sets none. */
  user: string;
  /** Port specs such as `8080/tcp`, in image order. */
  exposedPorts: string[];
  /** Free-form metadata. */
  labels: Record<string, string>;
}

/**
 * Normalises the `config` object of an image config blob.
 *
 * @param raw - the `config` member of the parsed blob (may be absent).
 * @param blob - the blob's digest, for error messages.
 * @throws SandboxError ERR_IMAGE_INVALID when a field has the wrong type.
 *
 * @example
 * ```ts
 * parseImageConfig({ Env: ['A=1'], Cmd: null }, 'sha256:…').cmd; // []
 * ```
 */
export function parseImageConfig(raw: unknown, blob: string): ImageConfig {
  if (raw === undefined || raw === null) raw = {};
  if (!isRecord(raw)) throw invalid(blob, 'config', raw);
  const field = <T>(name: string, check: (value: unknown) => value is T, empty: T): T => {
    const value = raw[name];
    if (value === undefined || value === null) return empty;
    if (!check(value)) throw invalid(blob, `config.${name}`, value);
    return value;
  };
  const ports = field('ExposedPorts', isRecord, {});
  return {
    env: field('Env', isStringArray, []),
    entrypoint: field('Entrypoint', isStringArray, []),
    cmd: field('Cmd', isStringArray, []),
    workingDir: field('WorkingDir', isString, ''),
    user: field('User', isString, ''),
    exposedPorts: Object.keys(ports),
    labels: field('Labels', isStringRecord, {}),
  };
}

function invalid(blob: string, name: string, value: unknown): SandboxError {
  return new SandboxError('ERR_IMAGE_INVALID', `Image config ${blob}: \`${name}\` has the wrong type (${JSON.stringify(value)})`);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isString(value: unknown): value is string {
  return typeof value === 'string';
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every(isString);
}

function isStringRecord(value: unknown): value is Record<string, string> {
  return isRecord(value) && Object.values(value).every(isString);
}
