// SPDX-License-Identifier: Apache-2.0
// Builds the library as ESM + CJS with declarations. ow is ESM-only, so it is
// bundled into both outputs rather than required at run time from CJS.
import { defineConfig } from 'tsup';

export default defineConfig({
  entry: { index: 'src/index.ts', cli: 'src/cli/main.ts' },
  format: ['esm', 'cjs'],
  dts: { entry: { index: 'src/index.ts' } },
  target: 'node20',
  platform: 'node',
  sourcemap: true,
  clean: true,
  noExternal: ['ow'],
  shims: true,
});
