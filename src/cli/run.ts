// SPDX-License-Identifier: Apache-2.0
// `nsbox run`: flags into SandboxOptions (pure), then one sandbox streamed to this terminal and its exit code.
import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import { resolve } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { isSandboxError, type SetupError } from '../errors.js';
import { DEFAULT_LIMITS, type Limits, type Mount, type SandboxOptions } from '../options.js';
import type { RunResult } from '../result.js';
import { spawn } from '../sandbox.js';
import { parseDuration, parseSize } from '../units.js';
import { parseEnvFlags, parseHead, parseMountFlag, parseTmpfsFlag, UsageError } from './args.js';
import { runOnTerminal } from './terminal.js';
import { parsePublishFlag } from './network.js';
import { networkNamePattern } from '../network/validate.js';

export const RUN_USAGE = `Usage: nsbox run [OPTIONS] IMAGE [--] [COMMAND [ARG...]]

Run a command in a fresh sandbox, stream its output, exit with its exit code.

IMAGE is 'host' (the host's /usr with a small /etc), a directory (an unpacked
root filesystem or an OCI image layout: an absolute or ./ path, or an existing
directory), or else an image reference like 127.0.0.1:5000/busybox:1, pulled
into the image store when missing. Everything after IMAGE (or after
'--') is the command; it defaults to the image's entrypoint and cmd.

Limits:
  -m, --memory SIZE         memory, e.g. 64MiB, or unlimited (default 512MiB)
      --pids N              processes and threads, or unlimited (default 256)
      --cpus N              CPU time in cores, e.g. 0.5 (default: unlimited)
      --timeout DURATION    wall clock, e.g. 500ms, 2s; 0 for none (default 5m)
      --output SIZE         stdout+stderr allowed (default 16MiB)
      --disk SIZE           in-memory writable layer (default 1GiB)

Environment:
  -e, --env KEY=VALUE       KEY=VALUE, or KEY to copy the host's (repeatable)
  -u, --user USER           uid[:gid] or name[:group] (default: image's, root)
  -w, --workdir DIR         absolute working directory, created when missing
      --hostname NAME       hostname (default: from the sandbox id)

Filesystem:
  -v, --mount SRC:DST[:ro]  bind a host path, writable unless :ro (repeatable); a plain
                            name is a named volume (:nocopy: not filled from the image)
      --tmpfs DST[:SIZE]    a private tmpfs, 64MiB unless SIZE (repeatable)
      --read-only           make the root filesystem read-only
      --upper-dir DIR       keep the writable layer in DIR (for 'nsbox commit')

Terminal:
  -i, --interactive         pass stdin also when it is a terminal
  -t, --tty                 run on a terminal of the sandbox (a shell: -it)

Isolation:
      --network NETWORK     none (default): loopback only; host: host's network;
                            bridge or a network name: a bridged network (root)
  -p, --publish [IP:]HOST:CONTAINER[/udp]
                            forward a host port (on 127.0.0.1 unless IP) to the
                            sandbox; implies --network bridge (repeatable)
      --no-init             run the command as pid 1, without nsbox-init
      --no-cgroup           no cgroup: no memory, pids or cpu limits
      --userns              use a user namespace also when running as root

  -h, --help                show this help

Stdin is passed to the command when it is not a terminal. SIGINT, SIGTERM and
SIGHUP are forwarded to the sandbox; a third SIGINT kills it.

Exit status: the command's; 128+N when a signal N ended it (137 after a
timeout, an OOM kill or the output limit, with a line on stderr saying why);
125 when nsbox fails (bad flag, bad image, setup error); 126 when the command
cannot be executed; 127 when it is not found.
`;

const runFlags = {
  memory: { type: 'string', short: 'm' },
  pids: { type: 'string' },
  cpus: { type: 'string' },
  timeout: { type: 'string' },
  output: { type: 'string' },
  disk: { type: 'string' },
  env: { type: 'string', short: 'e', multiple: true },
  user: { type: 'string', short: 'u' },
  workdir: { type: 'string', short: 'w' },
  hostname: { type: 'string' },
  mount: { type: 'string', short: 'v', multiple: true },
  tmpfs: { type: 'string', multiple: true },
  'read-only': { type: 'boolean' },
  'upper-dir': { type: 'string' },
  network: { type: 'string' },
  publish: { type: 'string', short: 'p', multiple: true },
  'no-init': { type: 'boolean' },
  'no-cgroup': { type: 'boolean' },
  userns: { type: 'boolean' },
  interactive: { type: 'boolean', short: 'i' },
  tty: { type: 'boolean', short: 't' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** What `nsbox run` will do: show help, or run `options` (stdin not yet attached). */
export type RunPlan =
  | { help: true }
  | {
      help: false;
      options: SandboxOptions;
      /** -t: run on a terminal of the sandbox; -i: keep stdin attached even when it is a terminal. */
      tty: boolean;
      interactive: boolean;
      /** The effective limits, for the line that says why the sandbox was killed. */
      limits: { memoryBytes: number | null; timeoutMs: number; outputBytes: number };
    };

function size(flag: string, value: string): string {
  if (parseSize(value) === undefined) throw new UsageError(`--${flag} expects a size like 64MiB, got '${value}'`);
  return value;
}

/**
 * Maps `nsbox run` arguments (after `run`) to sandbox options. Pure apart from reading
 * `context`; throws {@link UsageError} for anything the command line got wrong.
 */
export function parseRunArgs(argv: string[], context: { cwd: string; env: NodeJS.ProcessEnv }): RunPlan {
  const { values: v, rest } = parseHead(argv, runFlags);
  if (v.help) return { help: true };
  const [image, ...command] = rest;
  const isPath = (text: string, cwd: string) => text.startsWith('/') || text.startsWith('.') || existsSync(resolve(cwd, text));
  if (image === undefined || image === '') throw new UsageError("'nsbox run' needs an IMAGE ('host', a root filesystem or an OCI layout directory)");

  const limits: Limits = {};
  if (v.memory !== undefined) limits.memory = v.memory === 'unlimited' ? null : size('memory', v.memory);
  if (v.pids !== undefined) {
    if (v.pids !== 'unlimited' && !/^[1-9]\d*$/.test(v.pids)) throw new UsageError(`--pids expects a positive integer or 'unlimited', got '${v.pids}'`);
    limits.pids = v.pids === 'unlimited' ? null : Number(v.pids);
  }
  if (v.cpus !== undefined) {
    const cpus = Number(v.cpus);
    if (v.cpus.trim() === '' || !Number.isFinite(cpus) || cpus <= 0) throw new UsageError(`--cpus expects a positive number of cores like 0.5, got '${v.cpus}'`);
    limits.cpus = cpus;
  }
  if (v.timeout !== undefined) {
    if (parseDuration(v.timeout) === undefined) throw new UsageError(`--timeout expects a duration like 500ms, 2s or 1m, got '${v.timeout}'`);
    limits.timeout = v.timeout;
  }
  if (v.output !== undefined) limits.output = size('output', v.output);
  if (v.disk !== undefined) limits.disk = size('disk', v.disk);
  if (v.network !== undefined && !['none', 'host', 'bridge'].includes(v.network) && !networkNamePattern.test(v.network))
    throw new UsageError(`--network expects 'none', 'host', 'bridge' or a network name, got '${v.network}'`);
  const publish = (v.publish ?? []).map(parsePublishFlag);
  if (v.workdir !== undefined && !v.workdir.startsWith('/')) throw new UsageError(`--workdir expects an absolute path, got '${v.workdir}'`);

  const mounts: Mount[] = [...(v.mount ?? []).map((spec) => parseMountFlag(spec, context.cwd)), ...(v.tmpfs ?? []).map(parseTmpfsFlag)];
  const env = parseEnvFlags(v.env ?? [], context.env);
  const options: SandboxOptions = {
    // 'host' is the host image; a path (with a '/', or an existing directory) is made
    // absolute here; anything else is an image reference for the store.
    image: image === 'host' ? 'host' : isPath(image, context.cwd) ? resolve(context.cwd, image) : image,
    ...(command.length > 0 && { command }),
    ...(env && { env }),
    ...(v.workdir !== undefined && { cwd: v.workdir }),
    ...(v.user !== undefined && { user: v.user }),
    ...(v.hostname !== undefined && { hostname: v.hostname }),
    ...(Object.keys(limits).length > 0 && { limits }),
    ...(mounts.length > 0 && { mounts }),
    ...(v.network !== undefined && { network: v.network }),
    ...(publish.length > 0 && { publish }),
    ...(v['read-only'] && { readonlyRoot: true }),
    ...(v['upper-dir'] !== undefined && { upperDir: resolve(context.cwd, v['upper-dir']) }),
    ...(v['no-init'] && { init: false }),
    ...(v['no-cgroup'] && { cgroup: false }),
    ...(v.userns && { userns: true }),
  };
  if (v.tty && v['no-init']) throw new UsageError('--tty runs the command under nsbox-init: drop --no-init');
  return {
    help: false,
    options,
    tty: v.tty ?? false,
    interactive: v.interactive ?? false,
    limits: {
      memoryBytes: limits.memory === null ? null : parseSize(limits.memory ?? DEFAULT_LIMITS.memory)!,
      timeoutMs: parseDuration(limits.timeout ?? DEFAULT_LIMITS.timeout)!,
      outputBytes: parseSize(limits.output ?? DEFAULT_LIMITS.output)!,
    },
  };
}

/** Bytes as the largest binary unit that divides them: 67108864 → '64MiB'. */
export function formatSize(bytes: number): string {
  for (const [unit, factor] of [['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]] as const) {
    if (bytes >= factor && bytes % factor === 0) return `${bytes / factor}${unit}`;
  }
  return `${bytes} bytes`;
}

/** The CLI's exit code for a finished run: the command's code, or 128 + the signal's number. */
export function exitCodeOf(result: Pick<RunResult<string | Buffer>, 'exitCode' | 'signal'>): number {
  if (result.exitCode !== null) return result.exitCode;
  if (result.signal) return 128 + (constants.signals[result.signal] ?? 0);
  return 125;
}

/** Why nsbox ended the run, as the one line printed on stderr; null when the command ended on its own. */
export function killReasonOf(
  result: Pick<RunResult<string | Buffer>, 'isCanceled' | 'timedOut' | 'outputTruncated' | 'oomKilled'>,
  limits: { memoryBytes: number | null; timeoutMs: number; outputBytes: number },
): string | null {
  if (result.isCanceled) return 'canceled (killed)';
  if (result.timedOut) return `timed out after ${limits.timeoutMs} ms (killed)`;
  if (result.outputTruncated) return `output limit of ${formatSize(limits.outputBytes)} reached; output cut and sandbox killed`;
  if (result.oomKilled) return `killed by the OOM killer (memory limit ${limits.memoryBytes === null ? 'unlimited' : formatSize(limits.memoryBytes)})`;
  return null;
}

/** The exit code for an error nsbox threw before or while starting the command (like `docker run`). */
export function errorExitCode(error: unknown): number {
  if (isSandboxError(error) && error.code === 'ERR_EXEC') return (error as SetupError).errnoCode === 'ENOENT' ? 127 : 126;
  return 125;
}

/** The process the CLI talks through; tests may pass their own. */
export interface CliIo {
  stdin: Readable & { isTTY?: boolean };
  stdout: Writable;
  stderr: Writable;
  cwd: string;
  env: NodeJS.ProcessEnv;
}

const FORWARDED = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** `nsbox run ARGV…`: runs one sandbox attached to `io` and resolves with the exit code. */
export async function runCommand(argv: string[], io: CliIo): Promise<number> {
  let plan: RunPlan;
  try {
    plan = parseRunArgs(argv, io);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.stderr.write(`nsbox: ${error.message}\nSee 'nsbox run --help'.\n`);
    return 125;
  }
  if (plan.help) {
    io.stdout.write(RUN_USAGE);
    return 0;
  }

  if (plan.tty) return runOnTerminal(plan, io);
  const forward = new Map<string, () => void>();
  try {
    const child = spawn({ ...plan.options, ...((!io.stdin.isTTY || plan.interactive) && { stdin: io.stdin }), encoding: 'buffer', buffer: false, reject: false });
    let interrupts = 0;
    for (const name of FORWARDED) {
      const handler = () => {
        if (name === 'SIGINT' && ++interrupts >= 3) child.kill('SIGKILL');
        else child.kill(name);
      };
      forward.set(name, handler);
      process.on(name, handler);
    }
    // A reader that went away (`nsbox run … | head`) ends the command as it would end a plain pipeline.
    const onOutputError = (stream: Readable) => (error: NodeJS.ErrnoException) => {
      stream.unpipe();
      stream.resume();
      if (error.code === 'EPIPE') child.kill('SIGPIPE');
    };
    io.stdout.on('error', onOutputError(child.stdout));
    io.stderr.on('error', onOutputError(child.stderr));
    child.stdout.pipe(io.stdout, { end: false });
    child.stderr.pipe(io.stderr, { end: false });

    return finished(await child, plan.limits, io);
  } catch (error) {
    return failed(error, io);
  } finally {
    for (const [name, handler] of forward) process.off(name, handler);
  }
}

/** Says on stderr why nsbox killed the command, if it did, and gives the CLI's exit code. */
export function finished(result: RunResult<string | Buffer>, limits: Extract<RunPlan, { help: false }>['limits'], io: CliIo): number {
  const reason = killReasonOf(result, limits);
  if (reason) io.stderr.write(`nsbox: ${reason}\n`);
  return exitCodeOf(result);
}

/** An error nsbox threw before or while starting the command: its message on stderr, its exit code. */
export function failed(error: unknown, io: CliIo): number {
  if (!isSandboxError(error)) throw error;
  io.stderr.write(`nsbox: ${error.message}\n`);
  return errorExitCode(error);
}
