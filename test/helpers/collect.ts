// SPDX-License-Identifier: Apache-2.0
// Runs a program to completion and collects its output; never throws on a non-zero exit.
import { spawn } from 'node:child_process';

/** What a finished program left: its exit code (null when killed) and its output as text. */
export interface Collected {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `file` with `args`, collecting stdout and stderr. `input`, when given, writes to its stdin
 * (closed afterwards, or at once without it). Killed with SIGKILL after `timeoutMs` (default: none).
 *
 * @example
 * const { code, stdout } = await collect('sh', ['-c', 'echo hi']);
 */
export function collect(
  file: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number; input?: (write: (text: string) => void) => Promise<void> } = {},
): Promise<Collected> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: options.env ?? process.env, cwd: options.cwd, stdio: ['pipe', 'pipe', 'pipe'], timeout: options.timeoutMs, killSignal: 'SIGKILL' });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    if (options.input) void options.input((text) => child.stdin.write(text)).then(() => child.stdin.end());
    else child.stdin.end();
  });
}
