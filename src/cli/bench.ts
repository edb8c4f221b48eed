// SPDX-License-Identifier: Apache-2.0
// `nsbox bench`: the benchmark suite (benchmarks/bench.ts), built by tsup into dist/bench.js and
// loaded only when this command runs, so that the CLI's other commands never load it.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { CliIo } from './run.js';

interface BenchModule {
  benchMain(argv: string[], io: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream; defaultOut: string }): Promise<{ code: number }>;
}

/** dist/bench.js next to the bundled CLI; benchmarks/bench.ts when the CLI runs from source. */
function suiteFile(): string {
  const bundled = fileURLToPath(new URL('./bench.js', import.meta.url));
  return existsSync(bundled) ? bundled : fileURLToPath(new URL('../../benchmarks/bench.ts', import.meta.url));
}

export async function benchCommand(argv: string[], io: CliIo): Promise<number> {
  const suite = (await import(pathToFileURL(suiteFile()).href)) as BenchModule;
  const { code } = await suite.benchMain(argv, { stdout: io.stdout, stderr: io.stderr, defaultOut: join(io.cwd, 'nsbox-bench') });
  return code;
}
