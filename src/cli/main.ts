// SPDX-License-Identifier: Apache-2.0
// The nsbox command line: dispatches to a subcommand, then exits with its code.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from './args.js';
import { networkCommand } from './network.js';
import { benchCommand } from './bench.js';
import { runCommand, type CliIo } from './run.js';
import { volumeCommand } from './volume.js';
import { loadCommand } from './load.js';
import { saveCommand } from './save.js';
import { commitCommand } from './commit.js';
import { imagesCommand } from './images.js';
import { inspectCommand } from './inspect.js';
import { pullCommand } from './pull.js';
import { pushCommand } from './push.js';
import { rmiCommand } from './rmi.js';

const USAGE = `Usage: nsbox COMMAND [OPTIONS]

Run workloads in fresh Linux namespaces under cgroup limits.

Commands:
  run       Run a command in a new sandbox
  volume    Manage named volumes
  load      Load images from an archive or OCI layout into the image store
  save      Save images of the image store as an OCI layout (tar or directory)
  commit    Make an image from the writable layer a finished run kept
  network   Manage bridged networks (ls, create, rm, prune)
  pull      Pull an image from a registry into the image store
  push      Push an image of the store to a registry
  images    List the images of the store
  inspect   Show what the store knows about images, as JSON
  rmi       Remove images from the store
  bench     Run the benchmark suite against peers (root)

Options:
  -h, --help     show this help
      --version  print the version

Run 'nsbox COMMAND --help' for a command's options.
`;

/** The version of the nsbox package this file belongs to (dist/ or src/cli/ when run from source). */
function version(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'nsbox' && pkg.version) return pkg.version;
    }
    const parent = dirname(dir);
    if (parent === dir) return 'unknown';
    dir = parent;
  }
}

/** Runs the command line `argv` (without node and the script) and resolves with the exit code. */
export async function main(argv: string[], io: CliIo): Promise<number> {
  const [first, ...rest] = argv;
  try {
    switch (first) {
      case 'run':
        return await runCommand(rest, io);
      case 'volume':
        return await volumeCommand(rest, io);
      case 'load':
        return await loadCommand(rest, io);
      case 'save':
        return await saveCommand(rest, io);
      case 'commit':
        return await commitCommand(rest, io);
      case 'network':
        return await networkCommand(rest, io);
      case 'pull':
        return await pullCommand(rest, io);
      case 'push':
        return await pushCommand(rest, io);
      case 'images':
        return await imagesCommand(rest, io);
      case 'inspect':
        return await inspectCommand(rest, io);
      case 'rmi':
        return await rmiCommand(rest, io);
      case 'bench':
        return await benchCommand(rest, io);
      case '-h':
      case '--help':
      case 'help':
        if (rest[0] === 'run') return await runCommand(['--help'], io);
        if (rest[0] === 'load') return await loadCommand(['--help'], io);
        if (rest[0] === 'save') return await saveCommand(['--help'], io);
        if (rest[0] === 'commit') return await commitCommand(['--help'], io);
        io.stdout.write(USAGE);
        return 0;
      case '--version':
        io.stdout.write(`nsbox ${version()}\n`);
        return 0;
      case undefined:
        io.stderr.write(USAGE);
        return 125;
      default:
        throw new UsageError(first.startsWith('-') ? `unknown flag '${first}'` : `unknown command '${first}'`);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr.write(`nsbox: ${error.message}\nSee 'nsbox --help'.\n`);
      return 125;
    }
    io.stderr.write(`nsbox: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    return 125;
  }
}

// Exit once the output is flushed: an open stdin pipe must not keep the CLI alive after the run.
const flush = (stream: NodeJS.WriteStream) => new Promise<void>((done) => stream.write('', () => done()));
void main(process.argv.slice(2), { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, cwd: process.cwd(), env: process.env }).then(async (code) => {
  await Promise.all([flush(process.stdout), flush(process.stderr)]);
  process.exit(code);
});
