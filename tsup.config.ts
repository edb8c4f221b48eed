// SPDX-License-Identifier: Apache-2.0
// Builds the library as ESM + CJS with declarations. ow is ESM-only, so it is
// bundled into both outputs rather than required at run time from CJS.
// The benchmark suite is a separate ESM entry (dist/bench.js) that `nsbox bench` loads on
// demand and runs again as its own worker processes; pull-unpack.js joins it once it exists.
import { existsSync } from 'node:fs';
import { defineConfig } from 'tsup';

export default defineConfig([
  {
    entry: { index: 'src/index.ts', cli: 'src/cli/main.ts' },
    format: ['esm', 'cjs'],
    dts: { entry: { index: 'src/index.ts' } },
    target: 'node20',
    platform: 'node',
    sourcemap: true,
    // Everything but the suite's own entries, which the second build writes at the same time.
    clean: ['!bench.js', '!bench.js.map', '!pull-unpack.js', '!pull-unpack.js.map'],
    noExternal: ['ow'],
    shims: true,
  },
  {
    entry: { bench: 'benchmarks/bench.ts', ...(existsSync('benchmarks/pull-unpack.ts') ? { 'pull-unpack': 'benchmarks/pull-unpack.ts' } : {}) },
    format: ['esm'],
    target: 'node20',
    platform: 'node',
    sourcemap: true,
    clean: false,
    // One file per entry: the suite starts dist/bench.js again as its workers.
    splitting: false,
    noExternal: ['ow'],
  },
]);
