// SPDX-License-Identifier: Apache-2.0
// `nsbox inspect IMAGE...`: what the store knows about images, as a JSON array (like `docker inspect`).
import { isSandboxError } from '../errors.js';
import type { ImageInfo } from '../store/image-store.js';
import { ImageStore } from '../store/image-store.js';
import { runImageCommand, type ImageCommand } from './image-command.js';
import type { CliIo } from './run.js';

export const INSPECT_USAGE = `Usage: nsbox inspect IMAGE [IMAGE...]

Print what the image store knows about images (named by reference or by
manifest digest) as a JSON array: digest, references, os, architecture,
created, config (env, cmd, entrypoint, workingDir, user, exposedPorts,
labels), layers and size. Exits 1 when an image is missing (the others are
still printed).

Options:
  -h, --help   show this help
`;

const command: ImageCommand<Record<string, never>> = {
  name: 'inspect',
  usage: INSPECT_USAGE,
  flags: {},
  positionals: { min: 1, max: Infinity, what: 'at least one IMAGE' },
  async run(_values, references, io) {
    const store = await ImageStore.open();
    const found: ImageInfo[] = [];
    let missing = 0;
    for (const reference of references) {
      try {
        found.push(await store.inspect(reference));
      } catch (error) {
        if (!isSandboxError(error) || error.code !== 'ERR_IMAGE_NOT_FOUND') throw error;
        io.stderr.write(`nsbox: ${error.message}\n`);
        missing++;
      }
    }
    io.stdout.write(`${JSON.stringify(found, null, 2)}\n`);
    return missing > 0 ? 1 : 0;
  },
};

/** `nsbox inspect ARGV…`. */
export function inspectCommand(argv: string[], io: CliIo): Promise<number> {
  return runImageCommand(command, argv, io);
}
