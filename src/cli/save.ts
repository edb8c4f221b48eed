// SPDX-License-Identifier: Apache-2.0
// `nsbox save`: images of the image store as an OCI image layout, a tar on stdout or -o, or a directory.
import { resolve } from 'node:path';
import type { Writable } from 'node:stream';
import { isSandboxError } from '../errors.js';
import { ImageStore } from '../store/image-store.js';
import { parseFlags, UsageError } from './args.js';
import type { CliIo } from './run.js';

export const SAVE_USAGE = `Usage: nsbox save [OPTIONS] IMAGE...

Save images of the image store as an OCI image layout: a tar on stdout or in
-o FILE, or a directory with --format oci-dir. IMAGE is a name as the store
knows it (see 'nsbox images') or a manifest digest. 'nsbox load', 'docker
load', skopeo (oci-archive:FILE) and umoci read the result.

Options:
  -o, --output PATH         write this file (or directory) instead of stdout
      --format FORMAT       oci-archive (default) or oci-dir (needs -o)
  -h, --help                show this help
`;

const saveFlags = {
  output: { type: 'string', short: 'o' },
  format: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** `nsbox save ARGV…`: resolves with the exit code. */
export async function saveCommand(argv: string[], io: CliIo): Promise<number> {
  let parsed: ReturnType<typeof parseFlags<typeof saveFlags>>;
  try {
    parsed = parseFlags(argv, saveFlags);
    const { values: v, positionals } = parsed;
    if (!v.help) {
      if (positionals.length === 0) throw new UsageError("'nsbox save' needs at least one IMAGE");
      if (v.format !== undefined && v.format !== 'oci-archive' && v.format !== 'oci-dir') throw new UsageError(`--format expects 'oci-archive' or 'oci-dir', got '${v.format}'`);
      if (v.format === 'oci-dir' && v.output === undefined) throw new UsageError('--format oci-dir needs -o DIRECTORY');
      if (v.output === undefined && (io.stdout as Writable & { isTTY?: boolean }).isTTY) {
        throw new UsageError("'nsbox save' writes an archive, and stdout is a terminal: use -o FILE or redirect stdout");
      }
    }
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.stderr.write(`nsbox: ${error.message}\nSee 'nsbox save --help'.\n`);
    return 125;
  }
  const { values: v, positionals } = parsed;
  if (v.help) {
    io.stdout.write(SAVE_USAGE);
    return 0;
  }
  try {
    const store = await ImageStore.open();
    const format = v.format as 'oci-archive' | 'oci-dir' | undefined;
    await store.save(positionals, v.output === undefined ? io.stdout : resolve(io.cwd, v.output), { ...(format && { format }) });
    return 0;
  } catch (error) {
    if (!isSandboxError(error)) throw error;
    io.stderr.write(`nsbox: ${error.message}\n`);
    return 1;
  }
}
