// SPDX-License-Identifier: Apache-2.0
// The entry points: run() and spawn().
import { newCgroupId } from './cgroup/cgroup.js';
import { normalizeOptions, type SandboxOptions } from './options.js';
import { SandboxProcess } from './process.js';
import type { RunResult } from './result.js';

/**
 * The type of `stdout`/`stderr`: Buffer with `encoding: 'buffer'`, else string.
 *
 * @example
 * ```ts
 * const { stdout } = await run({ image: 'host', command: ['cat', '/bin/sh'], encoding: 'buffer' }); // stdout: Buffer
 * ```
 */
export type OutputOf<O extends SandboxOptions> = O extends { encoding: 'buffer' } ? Buffer : string;

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
  return new SandboxProcess<OutputOf<O>>(newCgroupId(), normalizeOptions(options), true);
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
  return new SandboxProcess<OutputOf<O>>(newCgroupId(), normalizeOptions(options), false).result;
}
