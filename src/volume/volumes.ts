// SPDX-License-Identifier: Apache-2.0
// Named volumes: directories kept in the state dir that outlive sandboxes, mounted by name.
import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { SandboxError } from '../errors.js';
import { stateDir } from '../paths.js';

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;

/**
 * A named volume.
 *
 * @example
 * ```ts
 * const { name, path, createdAt } = createVolume('pgdata');
 * ```
 */
export interface VolumeInfo {
  /** The volume's name. */
  name: string;
  /** Its data directory on the host (what sandboxes see at their mount target). */
  path: string;
  /** When it was made. */
  createdAt: Date;
}

/** @internal `<state dir>/volumes` ($NSBOX_HOME/volumes, /var/lib/nsbox/volumes for root). */
export function volumesDir(): string {
  return join(stateDir(), 'volumes');
}

function checkName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || !NAME.test(name))
    throw new SandboxError('ERR_INVALID_OPTION', `Invalid volume name \`${String(name)}\`: use 1–128 letters, digits, '_', '.' or '-', starting with a letter or digit`);
}

// Mounted sandboxes per volume, in this process: remove refuses a volume in use (as Docker does).
const inUse = new Map<string, number>();

/** @internal Counts a sandbox's use of a volume until the returned function is called. */
export function useVolume(name: string): () => void {
  inUse.set(name, (inUse.get(name) ?? 0) + 1);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    const left = (inUse.get(name) ?? 1) - 1;
    if (left > 0) inUse.set(name, left);
    else inUse.delete(name);
  };
}

function info(name: string): VolumeInfo {
  const path = join(volumesDir(), name, '_data');
  return { name, path, createdAt: statSync(join(volumesDir(), name)).birthtime };
}

/**
 * Creates a named volume if it does not exist yet (a mount `{ type: 'volume', source: name }`
 * also does) and returns it. Its data stays until {@link removeVolume}.
 * @throws SandboxError ERR_INVALID_OPTION for a bad name.
 *
 * @example
 * ```ts
 * createVolume('cache');
 * await run({ image: 'host', command: ['sh', '-c', 'date >> /cache/log'], mounts: [{ type: 'volume', source: 'cache', target: '/cache' }] });
 * ```
 */
export function createVolume(name: string): VolumeInfo {
  checkName(name);
  mkdirSync(join(volumesDir(), name, '_data'), { recursive: true, mode: 0o755 });
  return info(name);
}

/**
 * The named volumes, sorted by name.
 *
 * @example
 * ```ts
 * for (const volume of listVolumes()) console.log(volume.name, volume.path);
 * ```
 */
export function listVolumes(): VolumeInfo[] {
  let names: string[];
  try {
    names = readdirSync(volumesDir());
  } catch {
    return [];
  }
  return names.filter((name) => NAME.test(name)).sort().map(info);
}

/**
 * Deletes a named volume and its data.
 * @throws SandboxError ERR_INVALID_OPTION for a bad name, ERR_NOT_FOUND when there is no such
 *   volume, ERR_IN_USE while a sandbox of this process mounts it.
 *
 * @example
 * ```ts
 * removeVolume('cache');
 * ```
 */
export function removeVolume(name: string): void {
  checkName(name);
  if (inUse.has(name)) throw new SandboxError('ERR_IN_USE', `Volume \`${name}\` is in use by ${inUse.get(name)} running sandbox(es)`);
  const dir = join(volumesDir(), name);
  try {
    statSync(dir);
  } catch {
    throw new SandboxError('ERR_NOT_FOUND', `No such volume: \`${name}\``);
  }
  rmSync(dir, { recursive: true, force: true });
}

/** @internal The host directory behind a volume mount, created when missing. */
export function volumeSource(name: unknown): string {
  checkName(name);
  return createVolume(name).path;
}
