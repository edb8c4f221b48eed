// SPDX-License-Identifier: Apache-2.0
// What the image commands (pull, push, images, inspect, rmi) share: flag parsing, --help, error reporting, sizes.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { isSandboxError } from '../errors.js';
import { UsageError } from './args.js';
import type { CliIo } from './run.js';

type Options = NonNullable<ParseArgsConfig['options']>;

/** One image command: its name, usage text, flags, and what it does with them. */
export interface ImageCommand<T extends Options> {
  name: string;
  usage: string;
  flags: T;
  /** Positional arguments allowed: at least `min`, at most `max` (Infinity for any number). */
  positionals: { min: number; max: number; what: string };
  run(values: ReturnType<typeof parseArgs<{ options: T; strict: true; allowPositionals: true }>>['values'], positionals: string[], io: CliIo): Promise<number>;
}

/**
 * Runs `command` on `argv`: `--help` prints its usage; a flag mistake is a usage error (exit
 * 125, as for `run`); a SandboxError is printed as `nsbox: <message>` with exit 1, as Docker
 * does for its image commands; ERR_CANCELED (Ctrl-C) exits 130.
 */
export async function runImageCommand<T extends Options>(command: ImageCommand<T>, argv: string[], io: CliIo): Promise<number> {
  let values: Record<string, unknown>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: argv, options: { ...command.flags, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: true }));
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (typeof code !== 'string' || !code.startsWith('ERR_PARSE_ARGS')) throw error;
    return usageError(command.name, (error as Error).message.split('\n')[0]!, io);
  }
  if (values.help) {
    io.stdout.write(command.usage);
    return 0;
  }
  const { min, max, what } = command.positionals;
  if (positionals.length < min) return usageError(command.name, `'nsbox ${command.name}' needs ${what}`, io);
  if (positionals.length > max) return usageError(command.name, `'nsbox ${command.name}' takes ${max === 0 ? 'no arguments' : what}, not '${positionals.slice(max).join(' ')}'`, io);
  try {
    return await command.run(values as never, positionals, io);
  } catch (error) {
    if (error instanceof UsageError) return usageError(command.name, error.message, io);
    if (!isSandboxError(error)) throw error;
    io.stderr.write(`nsbox: ${error.message}\n`);
    return error.code === 'ERR_CANCELED' ? 130 : 1;
  }
}

function usageError(name: string, message: string, io: CliIo): number {
  io.stderr.write(`nsbox: ${message}\nSee 'nsbox ${name} --help'.\n`);
  return 125;
}

/** Bytes as Docker prints sizes: 1000-based, three significant digits (`5.24MB`, `912kB`, `0B`). */
export function formatBytes(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${unit === 0 ? value : Number(value.toPrecision(3))}${units[unit]}`;
}

/**
 * An AbortSignal that SIGINT and SIGTERM fire while `task` runs (the transfer then stops with
 * ERR_CANCELED and leaves nothing partial), and the handlers removed after.
 */
export async function withInterrupt<T>(task: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const onSignal = () => controller.abort(new Error('interrupted'));
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await task(controller.signal);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
