// SPDX-License-Identifier: Apache-2.0
// `nsbox commit`: the upper directory a finished run kept (--upper-dir) becomes a new image of the image store.
import { resolve } from 'node:path';
import { isSandboxError } from '../errors.js';
import type { CommitConfig } from '../store/commit.js';
import { ImageStore } from '../store/image-store.js';
import { parseFlags, UsageError } from './args.js';
import type { CliIo } from './run.js';

export const COMMIT_USAGE = `Usage: nsbox commit [OPTIONS] --from IMAGE UPPERDIR NAME:TAG

Make a new image from the writable layer of a finished sandbox, like 'docker
commit': UPPERDIR is the directory the run kept its writable layer in ('nsbox
run --upper-dir UPPERDIR IMAGE ...'). Its changes, deletions included, become
a new layer on top of IMAGE's. Prints the new image's digest.

Options:
      --from IMAGE          the image the sandbox ran (required)
  -c, --change INSTRUCTION  change the config with a Dockerfile instruction:
                            CMD, ENTRYPOINT, ENV, WORKDIR, USER or LABEL
                            (repeatable), e.g. -c 'CMD ["sh", "-c", "ls"]'
  -m, --message TEXT        the comment of the new history entry
  -a, --author NAME         the image's author
  -h, --help                show this help
`;

const commitFlags = {
  from: { type: 'string' },
  change: { type: 'string', short: 'c', multiple: true },
  message: { type: 'string', short: 'm' },
  author: { type: 'string', short: 'a' },
  help: { type: 'boolean', short: 'h' },
} as const;

/**
 * `--change` instructions into config changes, as `docker commit --change` reads them: CMD and
 * ENTRYPOINT as a JSON array or else a shell command (`/bin/sh -c …`); ENV and LABEL as
 * `KEY=value` pairs separated by spaces (or `ENV KEY value`); WORKDIR and USER as they are.
 */
export function parseChanges(changes: readonly string[]): CommitConfig {
  const config: CommitConfig = {};
  for (const change of changes) {
    const match = /^\s*([A-Za-z]+)\s+([\s\S]*\S)\s*$/.exec(change);
    if (!match) throw new UsageError(`--change expects 'INSTRUCTION ARGUMENTS', got '${change}'`);
    const [, word, rest] = match as unknown as [string, string, string];
    switch (word.toUpperCase()) {
      case 'CMD':
        config.cmd = commandOf(rest, change);
        break;
      case 'ENTRYPOINT':
        config.entrypoint = commandOf(rest, change);
        break;
      case 'ENV':
        config.env = [...(config.env ?? []), ...pairsOf(rest, change, true).map(([k, v]) => `${k}=${v}`)];
        break;
      case 'LABEL':
        config.labels = { ...config.labels, ...Object.fromEntries(pairsOf(rest, change, false)) };
        break;
      case 'WORKDIR':
        if (!rest.startsWith('/')) throw new UsageError(`--change WORKDIR expects an absolute path, got '${rest}'`);
        config.workingDir = rest;
        break;
      case 'USER':
        config.user = rest;
        break;
      default:
        throw new UsageError(`--change supports CMD, ENTRYPOINT, ENV, WORKDIR, USER and LABEL, not '${word}'`);
    }
  }
  return config;
}

function commandOf(text: string, change: string): string[] {
  if (!text.startsWith('[')) return ['/bin/sh', '-c', text];
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new UsageError(`--change: '${change}' is not a JSON array of strings`);
  }
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) throw new UsageError(`--change: '${change}' is not a JSON array of strings`);
  return value as string[];
}

// `K=V K2=V2`, or (ENV only) the legacy `K V…`.
function pairsOf(text: string, change: string, legacyForm: boolean): Array<[string, string]> {
  const words = text.split(/\s+/);
  if (!words[0]!.includes('=')) {
    if (!legacyForm || words.length < 2) throw new UsageError(`--change: '${change}' expects KEY=VALUE`);
    return [[words[0]!, text.slice(words[0]!.length).trim()]];
  }
  return words.map((word) => {
    const eq = word.indexOf('=');
    if (eq <= 0) throw new UsageError(`--change: '${word}' in '${change}' is not KEY=VALUE`);
    return [word.slice(0, eq), word.slice(eq + 1)];
  });
}

/** `nsbox commit ARGV…`: resolves with the exit code. */
export async function commitCommand(argv: string[], io: CliIo): Promise<number> {
  let parsed: ReturnType<typeof parseFlags<typeof commitFlags>>;
  let config: CommitConfig;
  try {
    parsed = parseFlags(argv, commitFlags);
    config = parseChanges(parsed.values.change ?? []);
    if (!parsed.values.help) {
      if (parsed.values.from === undefined) throw new UsageError("'nsbox commit' needs --from IMAGE, the image the sandbox ran");
      if (parsed.positionals.length !== 2) throw new UsageError("'nsbox commit' needs UPPERDIR and NAME:TAG");
    }
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.stderr.write(`nsbox: ${error.message}\nSee 'nsbox commit --help'.\n`);
    return 125;
  }
  const { values: v, positionals } = parsed;
  if (v.help) {
    io.stdout.write(COMMIT_USAGE);
    return 0;
  }
  try {
    const store = await ImageStore.open();
    const image = await store.commit({
      from: v.from!,
      upperDir: resolve(io.cwd, positionals[0]!),
      reference: positionals[1]!,
      ...(Object.keys(config).length > 0 && { config }),
      ...(v.message !== undefined && { message: v.message }),
      ...(v.author !== undefined && { author: v.author }),
    });
    io.stdout.write(`${image.digest}\n`);
    return 0;
  } catch (error) {
    if (!isSandboxError(error)) throw error;
    io.stderr.write(`nsbox: ${error.message}\n`);
    return 1;
  }
}
