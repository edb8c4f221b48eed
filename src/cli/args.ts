// SPDX-License-Identifier: Apache-2.0
// Command-line parsing helpers: the usage error, the flags/command split, and the values of repeatable flags.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { posix, resolve } from 'node:path';
import type { BindMount, TmpfsMount, VolumeMount } from '../options.js';
import { parseSize } from '../units.js';

/** A mistake on the command line: printed as `nsbox: <message>` with a pointer to --help, exit 125. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * Splits argv at the first positional argument (or `--`): the flags before it are parsed strictly
 * with `options`; the positional and everything after it are returned untouched as `rest`, so the
 * sandboxed command keeps its own flags. A `--` directly after the first positional is dropped.
 */
export function parseHead<T extends Options>(argv: string[], options: T): { values: ReturnType<typeof parseArgs<{ options: T; strict: true }>>['values']; rest: string[] } {
  // A lenient pass only to find where the flags end: it knows which flags take a value.
  const { tokens } = parseArgs({ args: argv, options, strict: false, allowPositionals: true, tokens: true });
  const end = tokens.find((t) => t.kind === 'positional' || t.kind === 'option-terminator');
  const headEnd = end ? end.index : argv.length;
  let rest = argv.slice(end?.kind === 'option-terminator' ? headEnd + 1 : headEnd);
  if (rest[1] === '--') rest = [rest[0]!, ...rest.slice(2)];
  // Checked here, from the tokens, so messages name the flag as typed (parseArgs' wording varies by Node version).
  for (const token of tokens) {
    if (token.kind !== 'option' || token.index >= headEnd) continue;
    const option = Object.hasOwn(options, token.name) ? options[token.name] : undefined;
    if (!option) throw new UsageError(`unknown flag '${token.rawName}'`);
    if (option.type === 'boolean' && token.value !== undefined) throw new UsageError(`flag '${token.rawName}' does not take a value`);
    if (option.type === 'string' && (token.value === undefined || (!token.inlineValue && token.value.startsWith('-'))))
      throw new UsageError(`flag '${token.rawName}' needs a value${token.value === undefined ? '' : ` (write ${token.rawName}=VALUE for a value that starts with '-')`}`);
  }
  try {
    const { values } = parseArgs({ args: argv.slice(0, headEnd), options, strict: true, allowPositionals: false });
    return { values: values as never, rest };
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) throw new UsageError((error as Error).message.split('\n')[0]!);
    throw error;
  }
}

/**
 * Parses flags and positionals that may come in any order (`nsbox save IMAGE -o FILE`), for
 * commands that run no command of their own; `--` ends the flags. Checked like {@link parseHead}.
 */
export function parseFlags<T extends Options>(argv: string[], options: T): { values: ReturnType<typeof parseArgs<{ options: T; strict: true }>>['values']; positionals: string[] } {
  const { tokens } = parseArgs({ args: argv, options, strict: false, allowPositionals: true, tokens: true });
  for (const token of tokens) {
    if (token.kind !== 'option') continue;
    const option = Object.hasOwn(options, token.name) ? options[token.name] : undefined;
    if (!option) throw new UsageError(`unknown flag '${token.rawName}'`);
    if (option.type === 'boolean' && token.value !== undefined) throw new UsageError(`flag '${token.rawName}' does not take a value`);
    if (option.type === 'string' && (token.value === undefined || (!token.inlineValue && token.value.startsWith('-') && token.value !== '-')))
      throw new UsageError(`flag '${token.rawName}' needs a value${token.value === undefined ? '' : ` (write ${token.rawName}=VALUE for a value that starts with '-')`}`);
  }
  try {
    const { values, positionals } = parseArgs({ args: argv, options, strict: true, allowPositionals: true });
    return { values: values as never, positionals };
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) throw new UsageError((error as Error).message.split('\n')[0]!);
    throw error;
  }
}

/**
 * `--env` values into an env object. `KEY=VALUE` sets; a bare `KEY` copies the host's value
 * (and is skipped when the host does not have it), as `docker run -e KEY` does.
 */
export function parseEnvFlags(list: readonly string[], hostEnv: NodeJS.ProcessEnv): Record<string, string> | undefined {
  if (list.length === 0) return undefined;
  const env: Record<string, string> = {};
  for (const item of list) {
    const eq = item.indexOf('=');
    const key = eq === -1 ? item : item.slice(0, eq);
    if (key === '' || key.includes('\0')) throw new UsageError(`--env expects KEY=VALUE, got '${item}'`);
    if (eq !== -1) env[key] = item.slice(eq + 1);
    else if (hostEnv[key] !== undefined) env[key] = hostEnv[key]!;
  }
  return env;
}

const absoluteTarget = (flag: string, target: string, spec: string) => {
  if (!target.startsWith('/')) throw new UsageError(`${flag}: the target must be an absolute path inside the sandbox, got '${spec}'`);
  return posix.normalize(target);
};

/**
 * One `--mount SRC:DST[:OPTIONS]`: a named volume when SRC is a plain name (no '/', not starting
 * with '.'), as with `docker run -v`; else a bind mount, a relative SRC taken from `cwd`.
 * OPTIONS, comma-separated: `ro` or `rw`, and for a volume `nocopy` (no filling from the image).
 */
export function parseMountFlag(spec: string, cwd: string): BindMount | VolumeMount {
  const parts = spec.split(':');
  if (parts.length < 2 || parts.length > 3 || parts[0] === '' || parts[1] === '')
    throw new UsageError(`--mount expects SRC:DST[:ro], got '${spec}'`);
  const [source, target, modes] = parts as [string, string, string | undefined];
  const flags = modes === undefined ? [] : modes.split(',');
  for (const flag of flags)
    if (flag !== 'ro' && flag !== 'rw' && flag !== 'nocopy') throw new UsageError(`--mount: the options must be 'ro', 'rw' or 'nocopy', got '${flag}' in '${spec}'`);
  const readonly = flags.includes('ro');
  if (!source.includes('/') && !source.startsWith('.'))
    return { type: 'volume', source, target: absoluteTarget('--mount', target, spec), readonly, ...(flags.includes('nocopy') && { populate: false }) };
  if (flags.includes('nocopy')) throw new UsageError(`--mount: 'nocopy' is for named volumes, not the bind mount '${spec}'`);
  return { type: 'bind', source: resolve(cwd, source), target: absoluteTarget('--mount', target, spec), readonly };
}

/**
 * One `--tmpfs DST[:SIZE]` into a tmpfs mount. Docker's `DST:size=64m,mode=1777` form is
 * accepted too.
 */
export function parseTmpfsFlag(spec: string): TmpfsMount {
  const colon = spec.indexOf(':');
  const target = absoluteTarget('--tmpfs', colon === -1 ? spec : spec.slice(0, colon), spec);
  const mount: TmpfsMount = { type: 'tmpfs', target };
  if (colon === -1) return mount;
  const tail = spec.slice(colon + 1);
  const checkSize = (size: string) => {
    if (parseSize(size) === undefined) throw new UsageError(`--tmpfs: '${size}' is not a size like 64MiB (in '${spec}')`);
    return size;
  };
  if (!tail.includes('=')) {
    mount.size = checkSize(tail);
    return mount;
  }
  for (const option of tail.split(',')) {
    const [key, value = ''] = option.split('=', 2) as [string, string | undefined];
    if (key === 'size') mount.size = checkSize(value);
    else if (key === 'mode' && /^[0-7]{1,4}$/.test(value)) mount.mode = Number.parseInt(value, 8);
    else throw new UsageError(`--tmpfs: unknown or invalid option '${option}' (expected size=SIZE or mode=OCTAL) in '${spec}'`);
  }
  return mount;
}
