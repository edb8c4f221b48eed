// SPDX-License-Identifier: Apache-2.0
// Turns the `image` option into what a plan needs: lower layer dirs, extra mounts, and the config.
import { existsSync, lstatSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { SandboxError } from '../errors.js';
import type { NativeMountOp } from '../native/native.js';
import type { ImageInput } from '../options.js';
import { stateDir } from '../paths.js';
import { hostImage } from './host-image.js';
import type { ImageConfig } from './image-config.js';
import { resolveOciImage } from './layer-store.js';
import { ImageStore } from '../store/image-store.js';
import { isSandboxError } from '../errors.js';

/** @internal When an image reference is pulled: only when missing from the store (default), every time, or never. */
export type PullPolicy = 'missing' | 'always' | 'never';

/** @internal */
export interface ResolvedImage {
  /** For results and messages. */
  name: string;
  /** Lower layers, bottom first. */
  layers: string[];
  /** Mounts the image itself needs (the host's /usr for 'host'). */
  ops: NativeMountOp[];
  config: ImageConfig;
}

const emptyConfig: ImageConfig = { env: [], entrypoint: [], cmd: [], workingDir: '', user: '', exposedPorts: [], labels: {} };

// 'host', an absolute path, or else an image reference ('busybox', 'localhost:5000/app:1').
function isReference(input: string): boolean {
  return input !== 'host' && !input.startsWith('/');
}

async function fromStore(reference: string, rootless: boolean, pull: PullPolicy): Promise<ResolvedImage> {
  const store = await ImageStore.open();
  if (pull === 'always') await store.pull(reference);
  const resolve = async (): Promise<ResolvedImage> => {
    const image = await store.resolve(reference, { rootless });
    return { name: `${reference}@${image.digest}`, layers: image.layers, ops: [], config: image.config };
  };
  try {
    return await resolve();
  } catch (error) {
    if (pull !== 'missing' || !isSandboxError(error) || error.code !== 'ERR_IMAGE_NOT_FOUND') throw error;
  }
  await store.pull(reference);
  return resolve();
}

/** @internal */
export async function resolveImage(input: ImageInput, rootless: boolean, pull: PullPolicy = 'missing'): Promise<ResolvedImage> {
  if (typeof input === 'string' && isReference(input)) return fromStore(input, rootless, pull);
  if (input === 'host') {
    const { base, ops } = hostImage();
    return { name: 'host', layers: [base], ops, config: { ...emptyConfig, env: ['HOME=/root'] } };
  }
  if (typeof input === 'object') {
    for (const layer of input.layers) {
      if (!existsSync(layer) || !statSync(layer).isDirectory())
        throw new SandboxError('ERR_IMAGE_NOT_FOUND', `Image layer \`${layer}\` is not an existing directory`);
    }
    return { name: input.name ?? input.layers.at(-1)!, layers: input.layers, ops: [], config: { ...emptyConfig, ...input.config } };
  }
  if (!existsSync(input) || !statSync(input).isDirectory())
    throw new SandboxError('ERR_IMAGE_NOT_FOUND', `Image \`${input}\` is not an existing directory (an unpacked root filesystem or an OCI image layout)`);
  if (!existsSync(join(input, 'oci-layout'))) {
    if (/[:,\\]/.test(input))
      throw new SandboxError('ERR_INVALID_OPTION', `Image directory \`${input}\` contains \`:\`, \`,\` or \`\\\`, which overlayfs options cannot carry`);
    return { name: input, layers: [input], ops: [], config: emptyConfig };
  }
  const image = await resolveOciImage(input, { cacheRoot: join(stateDir(), 'layers-cache'), rootless });
  return { name: `${input}@${image.digest}`, layers: image.layers, ops: [], config: image.config };
}

/**
 * @internal The top-most regular `relative` file in a layer stack (e.g. 'etc/passwd'), read
 * without following any symlink of the image: a hostile image must not make the host read
 * its own files.
 */
export function readImageFile(layers: string[], relative: string): string | undefined {
  const parts = relative.split('/');
  for (const layer of [...layers].reverse()) {
    let path = layer;
    let ok = true;
    for (const [i, part] of parts.entries()) {
      path = join(path, part);
      if (!existsSync(path)) {
        ok = false;
        break;
      }
      const stat = lstatSync(path);
      const last = i === parts.length - 1;
      if (last ? !stat.isFile() : !stat.isDirectory()) return undefined; // a link or a whiteout hides lower layers
    }
    if (ok) return readFileSync(path, 'utf8');
  }
  return undefined;
}
