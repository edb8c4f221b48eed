// SPDX-License-Identifier: Apache-2.0
// Loads the addon and locates nsbox-init and nsbox-netconf; a missing build is a clear ERR_NATIVE_LOAD.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SandboxError } from '../errors.js';
import type { NativeAddon } from './native.js';

const require = createRequire(import.meta.url);

// src/native/ when run from source, dist/ when bundled: walk up to the package root.
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) return process.cwd();
    dir = parent;
  }
  return dir;
}

const root = packageRoot();
const candidates = [join(root, 'addon', 'build', 'Release'), join(root, 'build', 'Release')];

function load(): Loaded {
  const tried: string[] = [];
  for (const dir of candidates) {
    const file = join(dir, 'nsbox.node');
    tried.push(file);
    if (!existsSync(file)) continue;
    const initPath = resolve(dir, 'nsbox-init');
    const netconfPath = resolve(dir, 'nsbox-netconf');
    for (const helper of [initPath, netconfPath]) {
      if (!existsSync(helper)) throw new SandboxError('ERR_NATIVE_LOAD', `${helper} is missing next to ${file}; rebuild with \`npm run build:addon\``);
    }
    try {
      return { addon: require(file) as NativeAddon, initPath, netconfPath };
    } catch (error) {
      throw new SandboxError('ERR_NATIVE_LOAD', `Could not load the nsbox addon from ${file}: ${(error as Error).message}`, { cause: error });
    }
  }
  throw new SandboxError(
    'ERR_NATIVE_LOAD',
    `The nsbox addon is not built. Tried:\n  ${tried.join('\n  ')}\nRun \`npm run build:addon\` (needs cmake, g++ and libc6-dev for the static nsbox-init).`,
  );
}

interface Loaded {
  addon: NativeAddon;
  initPath: string;
  netconfPath: string;
}

let loaded: Loaded | undefined;

/** @internal The raw addon, loaded on first use. */
export function native(): NativeAddon {
  loaded ??= load();
  return loaded.addon;
}

/** @internal Absolute path of the nsbox-init binary built with the addon. */
export function initPath(): string {
  loaded ??= load();
  return loaded.initPath;
}

/** @internal Absolute path of nsbox-netconf (runs nft in a starting rootless sandbox's namespaces). */
export function netconfPath(): string {
  loaded ??= load();
  return loaded.netconfPath;
}
