// SPDX-License-Identifier: Apache-2.0
// Writes a small file so readers see the old content or the new, never a part: a temp file beside it, synced, then renamed.

import { mkdir, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { tempName } from '../image/temp-name.js';

/** @internal Replaces (or creates) `path` with `content` atomically; creates the directory if missing. */
export async function writeFileAtomic(path: string, content: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temp = join(dirname(path), tempName(`${basename(path)}-`));
  try {
    const handle = await open(temp, 'wx', 0o644);
    try {
      await handle.writeFile(content);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}
