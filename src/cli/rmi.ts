// SPDX-License-Identifier: Apache-2.0
// `nsbox rmi IMAGE...`: removes images from the store, then the blobs and layers nothing needs any more.
import { isSandboxError } from '../errors.js';
import { ImageStore } from '../store/image-store.js';
import { runImageCommand, type ImageCommand } from './image-command.js';
import type { CliIo } from './run.js';

export const RMI_USAGE = `Usage: nsbox rmi [OPTIONS] IMAGE [IMAGE...]

Remove images from the image store: a reference (name:tag, name@digest), or
a manifest digest for every reference to that image. Then blobs and unpacked
layers that no image needs are deleted. Remove an image only when no sandbox
runs from it. Exits 1 when an image is missing (the others are still removed).

Options:
      --no-prune   keep the blobs and layers (only the references go)
  -h, --help       show this help
`;

const command: ImageCommand<{ 'no-prune': { type: 'boolean' } }> = {
  name: 'rmi',
  usage: RMI_USAGE,
  flags: { 'no-prune': { type: 'boolean' } },
  positionals: { min: 1, max: Infinity, what: 'at least one IMAGE' },
  async run(values, references, io) {
    const store = await ImageStore.open();
    let missing = 0;
    for (const reference of references) {
      try {
        for (const removed of await store.remove(reference)) io.stdout.write(`Untagged: ${removed}\n`);
      } catch (error) {
        if (!isSandboxError(error) || error.code !== 'ERR_IMAGE_NOT_FOUND') throw error;
        io.stderr.write(`nsbox: ${error.message}\n`);
        missing++;
      }
    }
    if (!values['no-prune']) {
      const { blobs, layers } = await store.gc();
      io.stdout.write(`Deleted: ${blobs} blobs, ${layers} unpacked layers\n`);
    }
    return missing > 0 ? 1 : 0;
  },
};

/** `nsbox rmi ARGV…`. */
export function rmiCommand(argv: string[], io: CliIo): Promise<number> {
  return runImageCommand(command, argv, io);
}
