// SPDX-License-Identifier: Apache-2.0
// The store's index of references: `references.json` maps `name:tag` and `name@digest` to an image manifest blob.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SandboxError } from '../errors.js';
import { digestHex } from '../image/digest.js';
import { isRecord } from '../image/manifest.js';
import { writeFileAtomic } from './atomic-file.js';

/** @internal The image manifest blob a reference names. */
export interface ImageRecord {
  /** `sha256:<hex>` of the image manifest (for one platform). */
  digest: string;
  /** Its size in bytes. */
  size: number;
}

/** @internal Canonical reference → image manifest. */
export type References = Map<string, ImageRecord>;

function indexPath(root: string): string {
  return join(root, 'references.json');
}

/**
 * @internal Reads the index; a store that has none has no references.
 * @throws SandboxError ERR_IMAGE_INVALID when the file is malformed.
 */
export async function readReferences(root: string): Promise<References> {
  const path = indexPath(root);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw error;
  }
  const malformed = (problem: string, cause?: unknown) => new SandboxError('ERR_IMAGE_INVALID', `The image store index ${path} is malformed: ${problem}`, { cause });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw malformed((error as Error).message, error);
  }
  if (!isRecord(json) || !isRecord(json.references)) throw malformed('no `references` object');
  const references: References = new Map();
  for (const [name, record] of Object.entries(json.references)) {
    if (!isRecord(record) || typeof record.digest !== 'string' || !Number.isSafeInteger(record.size)) throw malformed(`bad entry for \`${name}\``);
    digestHex(record.digest, path);
    references.set(name, { digest: record.digest, size: record.size as number });
  }
  return references;
}

/** @internal Replaces the index atomically. Call under the store lock, with what {@link readReferences} read under it. */
export async function writeReferences(root: string, references: References): Promise<void> {
  const sorted = Object.fromEntries([...references].sort(([a], [b]) => (a < b ? -1 : 1)));
  await writeFileAtomic(indexPath(root), `${JSON.stringify({ references: sorted }, null, 2)}\n`);
}
