// SPDX-License-Identifier: Apache-2.0
// Scenario 6, pull + unpack: benchmarks/pull-unpack.ts (written alongside the images work) exports
// benchPullUnpack(); when that file is not there, the scenario is reported as not available.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export type PullUnpackReport = { available: true; result: unknown } | { available: false; reason: string };

/** The module next to this suite: pull-unpack.ts from source, pull-unpack.js in dist/. */
export function pullUnpackModule(suiteUrl: string): string | undefined {
  for (const name of ['pull-unpack.ts', 'pull-unpack.js']) {
    const file = fileURLToPath(new URL(name, suiteUrl));
    if (existsSync(file)) return file;
  }
  return undefined;
}

export async function measurePullUnpack(suiteUrl: string, quick: boolean): Promise<PullUnpackReport> {
  const file = pullUnpackModule(suiteUrl);
  if (!file) return { available: false, reason: 'not available: benchmarks/pull-unpack.ts does not exist yet' };
  const module = (await import(file)) as { benchPullUnpack?: (options: { quick: boolean }) => Promise<unknown>; formatPullUnpack?: (report: never) => string };
  if (typeof module.benchPullUnpack !== 'function') return { available: false, reason: `not available: ${file} does not export benchPullUnpack()` };
  process.stderr.write('pull + unpack\n');
  const result = await module.benchPullUnpack({ quick });
  // Its own table, when the module can write one.
  const markdown = typeof module.formatPullUnpack === 'function' ? module.formatPullUnpack(result as never) : undefined;
  return { available: true, result: markdown ? { ...(result as object), markdown } : result };
}
