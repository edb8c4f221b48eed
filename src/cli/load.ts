// SPDX-License-Identifier: Apache-2.0
// `nsbox load`: images from an archive (stdin or -i) or an OCI layout directory into the image store.
import { resolve } from 'node:path';
import { isSandboxError } from '../errors.js';
import { ImageStore } from '../store/image-store.js';
import { parseFlags, UsageError } from './args.js';
import type { CliIo } from './run.js';

export const LOAD_USAGE = `Usage: nsbox load [OPTIONS]

Load images into the image store from a tar of an OCI image layout ('nsbox
save', 'skopeo copy ... oci-archive:FILE') or a 'docker save' archive,
gzip-compressed or not, read from stdin unless -i names it; -i may also name an
OCI image layout directory. Prints 'Loaded image: NAME' for each name.

Options:
  -i, --input PATH          read this archive or layout directory, not stdin
  -t, --tag NAME[:TAG]      also name the image NAME:TAG (the archive must hold
                            one image); a NAME alone completes names an OCI
                            layout gives as a tag only (v1 becomes NAME:v1)
      --platform OS/ARCH    the platform to take from a multi-platform image
  -q, --quiet               print nothing
  -h, --help                show this help
`;

const loadFlags = {
  input: { type: 'string', short: 'i' },
  tag: { type: 'string', short: 't' },
  platform: { type: 'string' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** `nsbox load ARGV…`: resolves with the exit code. */
export async function loadCommand(argv: string[], io: CliIo): Promise<number> {
  let parsed: ReturnType<typeof parseFlags<typeof loadFlags>>;
  try {
    parsed = parseFlags(argv, loadFlags);
    if (parsed.positionals.length > 0) throw new UsageError(`'nsbox load' takes no arguments, got '${parsed.positionals[0]}' (use -i FILE)`);
    if (parsed.values.input === undefined && !parsed.values.help && io.stdin.isTTY) {
      throw new UsageError("'nsbox load' reads an archive from stdin, which is a terminal: use -i FILE or a pipe");
    }
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.stderr.write(`nsbox: ${error.message}\nSee 'nsbox load --help'.\n`);
    return 125;
  }
  const { values: v } = parsed;
  if (v.help) {
    io.stdout.write(LOAD_USAGE);
    return 0;
  }
  try {
    const store = await ImageStore.open();
    const input = v.input === undefined ? io.stdin : resolve(io.cwd, v.input);
    const images = await store.load(input, { ...(v.tag !== undefined && { reference: v.tag }), ...(v.platform !== undefined && { platform: v.platform }) });
    if (!v.quiet) {
      for (const image of images) {
        const names = image.references.filter((name) => !name.includes('@'));
        for (const name of names.length > 0 ? names : [image.digest]) io.stdout.write(`Loaded image: ${name}\n`);
      }
    }
    return 0;
  } catch (error) {
    if (!isSandboxError(error)) throw error;
    io.stderr.write(`nsbox: ${error.message}\n`);
    return 1;
  }
}

