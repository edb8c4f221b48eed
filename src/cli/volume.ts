// SPDX-License-Identifier: Apache-2.0
// `nsbox volume ls|create|rm`: the named volumes in the state dir.
import { isSandboxError } from '../errors.js';
import { createVolume, listVolumes, removeVolume } from '../volume/volumes.js';
import { parseHead, UsageError } from './args.js';
import type { CliIo } from './run.js';

export const VOLUME_USAGE = `Usage: nsbox volume COMMAND

Manage named volumes (mounted with 'nsbox run -v NAME:/path').

Commands:
  ls [-q]          list volumes (-q: names only)
  create NAME      create a volume
  rm NAME...       remove volumes and their data
`;

/** `nsbox volume …`: resolves with the exit code. */
export async function volumeCommand(argv: string[], io: CliIo): Promise<number> {
  const [sub, ...args] = argv;
  try {
    switch (sub) {
      case 'ls':
      case 'list': {
        const { values, rest } = parseHead(args, { quiet: { type: 'boolean', short: 'q' } } as const);
        if (rest.length > 0) throw new UsageError(`'nsbox volume ls' takes no arguments, got '${rest[0]}'`);
        const volumes = listVolumes();
        if (values.quiet) io.stdout.write(volumes.map((v) => `${v.name}\n`).join(''));
        else io.stdout.write(['VOLUME NAME', ...volumes.map((v) => v.name)].join('\n') + '\n');
        return 0;
      }
      case 'create':
        if (args.length !== 1) throw new UsageError("'nsbox volume create' needs one NAME");
        io.stdout.write(`${createVolume(args[0]!).name}\n`);
        return 0;
      case 'rm':
      case 'remove': {
        if (args.length === 0) throw new UsageError("'nsbox volume rm' needs at least one NAME");
        let failed = false;
        for (const name of args) {
          try {
            removeVolume(name);
            io.stdout.write(`${name}\n`);
          } catch (error) {
            if (!isSandboxError(error)) throw error;
            io.stderr.write(`nsbox: ${error.message}\n`);
            failed = true;
          }
        }
        return failed ? 1 : 0;
      }
      case undefined:
      case '-h':
      case '--help':
        (sub === undefined ? io.stderr : io.stdout).write(VOLUME_USAGE);
        return sub === undefined ? 125 : 0;
      default:
        throw new UsageError(`unknown volume command '${sub}'`);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr.write(`nsbox: ${error.message}\nSee 'nsbox volume --help'.\n`);
      return 125;
    }
    if (isSandboxError(error)) {
      io.stderr.write(`nsbox: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
}
