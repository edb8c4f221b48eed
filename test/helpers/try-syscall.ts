// SPDX-License-Identifier: Apache-2.0
// Builds test/fixtures/try-syscall.c (static) once per content hash, for seccomp tests to bind into sandboxes.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { BindMount } from '../../src/index.js';

const SOURCE = fileURLToPath(new URL('../fixtures/try-syscall.c', import.meta.url));

let built: Promise<string> | undefined;

/** The directory holding the `try-syscall` binary (shared, read-only for tests). */
export function trySyscallDir(): Promise<string> {
  built ??= (async () => {
    const hash = createHash('sha256').update(readFileSync(SOURCE)).digest('hex').slice(0, 16);
    const root = process.env.NSBOX_TEST_FIXTURES_DIR ?? join(tmpdir(), 'nsbox-test-fixtures');
    const dir = join(root, `try-syscall-${hash}-uid${process.getuid?.() ?? 0}`);
    if (existsSync(join(dir, 'try-syscall'))) return dir;
    mkdirSync(root, { recursive: true, mode: 0o755 });
    const scratch = mkdtempSync(join(root, '.tmp-try-syscall-'));
    chmodSync(scratch, 0o755); // readable by sandboxes running as another user
    try {
      await promisify(execFile)('gcc', ['-static', '-O2', '-Wall', '-o', join(scratch, 'try-syscall'), SOURCE]);
      try {
        renameSync(scratch, dir);
      } catch (error) {
        // Another test process renamed its copy first: use that one.
        if (!['ENOTEMPTY', 'EEXIST'].includes((error as NodeJS.ErrnoException).code ?? '')) throw error;
      }
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
    return dir;
  })();
  return built;
}

/** A read-only bind mount that puts `try-syscall` at /opt/try/try-syscall. */
export async function trySyscallMount(): Promise<BindMount> {
  return { type: 'bind', source: await trySyscallDir(), target: '/opt/try', readonly: true };
}
