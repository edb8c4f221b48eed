// SPDX-License-Identifier: Apache-2.0
// Where nsbox keeps state (image data) and run-time scratch space, for root and for other users.
import { mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** @internal True when the host process runs as uid 0. */
export const isRoot = () => process.geteuid?.() === 0;

/**
 * @internal Persistent state: `$NSBOX_HOME`, else /var/lib/nsbox for root, else
 * `$XDG_DATA_HOME/nsbox` (~/.local/share/nsbox).
 */
export function stateDir(): string {
  if (process.env.NSBOX_HOME) return process.env.NSBOX_HOME;
  if (isRoot()) return '/var/lib/nsbox';
  return join(process.env.XDG_DATA_HOME || join(homedir(), '.local', 'share'), 'nsbox');
}

/** @internal Run-time directory: /run/nsbox for root, else `$XDG_RUNTIME_DIR/nsbox` or /tmp/nsbox-<uid>. */
export function runDir(): string {
  if (process.env.NSBOX_RUN_DIR) return process.env.NSBOX_RUN_DIR;
  if (isRoot()) return '/run/nsbox';
  return process.env.XDG_RUNTIME_DIR ? join(process.env.XDG_RUNTIME_DIR, 'nsbox') : `/tmp/nsbox-${process.geteuid?.()}`;
}

let scratch: string | undefined;

/**
 * @internal The one empty directory every sandbox mounts its private scratch tmpfs on. Each
 * sandbox mounts it in its own mount namespace, so all of them can share it and nothing
 * is left on the host when one dies.
 */
export function scratchDir(): string {
  if (!scratch) {
    const dir = join(runDir(), 'scratch');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    scratch = dir;
  }
  return scratch;
}
