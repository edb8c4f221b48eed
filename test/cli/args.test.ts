// SPDX-License-Identifier: Apache-2.0
// Unit tests of the CLI's pure parts: `nsbox run` flags → SandboxOptions, exit codes and kill reasons.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { SandboxError, SetupError } from '../../src/errors.js';
import { normalizeOptions } from '../../src/options.js';
import { parseEnvFlags, parseMountFlag, parseTmpfsFlag, UsageError } from '../../src/cli/args.js';
import { errorExitCode, exitCodeOf, formatSize, killReasonOf, parseRunArgs, type RunPlan } from '../../src/cli/run.js';

const context = { cwd: '/work/here', env: { HOME: '/root', FROM_HOST: 'yes' } };
const parse = (...argv: string[]) => parseRunArgs(argv, context);
const options = (...argv: string[]) => {
  const plan = parse(...argv);
  if (plan.help) throw new Error('expected a run, got help');
  return plan.options;
};
const limitsOf = (...argv: string[]) => (parse(...argv) as Extract<RunPlan, { help: false }>).limits;
const usageError = (t: import('ava').ExecutionContext, argv: string[], message: RegExp) => {
  const error = t.throws(() => parse(...argv), { instanceOf: UsageError });
  t.regex(error!.message, message);
};

test('IMAGE then the command, with or without --', (t) => {
  t.deepEqual(options('host', '--', 'sh', '-c', 'exit 3'), { image: 'host', command: ['sh', '-c', 'exit 3'] });
  t.deepEqual(options('host', 'echo', 'hi'), { image: 'host', command: ['echo', 'hi'] });
  t.deepEqual(options('--', 'host', 'echo'), { image: 'host', command: ['echo'] });
  t.deepEqual(options('host'), { image: 'host' });
});

test('flags after IMAGE belong to the command', (t) => {
  t.deepEqual(options('host', 'ls', '-la', '--memory', '1', '--help'), { image: 'host', command: ['ls', '-la', '--memory', '1', '--help'] });
  // Only the first `--` after IMAGE is a separator.
  t.deepEqual(options('host', '--', '--', 'x'), { image: 'host', command: ['--', 'x'] });
  t.deepEqual(options('-m', '64MiB', 'host', 'sh', '-m', '1'), { image: 'host', command: ['sh', '-m', '1'], limits: { memory: '64MiB' } });
});

test('a directory image is made absolute against the working directory; anything else is a reference', (t) => {
  t.is(options('./rootfs', 'true').image, '/work/here/rootfs');
  t.is(options('/images/alpine', 'true').image, '/images/alpine');
  t.is(options('./host', 'true').image, '/work/here/host');
  t.is(options('127.0.0.1:5000/busybox:1', 'true').image, '127.0.0.1:5000/busybox:1');
  t.is(options('busybox', 'true').image, 'busybox');
});

test('every flag maps to its option', (t) => {
  const argv = [
    '--memory', '64MiB', '--pids', '10', '--cpus', '0.5', '--timeout', '2s', '--output', '1MiB', '--disk', '256MiB',
    '-e', 'A=1', '--env', 'B=x=y', '--env', 'FROM_HOST', '--env', 'NOT_ON_HOST', '--env', 'EMPTY=',
    '--user', '1000:1000', '--workdir', '/src', '--hostname', 'box',
    '--mount', '/tmp/a:/data:ro', '-v', './rel:/rw', '-v', 'named:/vol', '--tmpfs', '/scratch:8MiB', '--tmpfs', '/run',
    '--network', 'host', '--read-only', '--no-init', '--no-cgroup', '--userns',
    'host', 'make', '-j4',
  ];
  t.deepEqual(options(...argv), {
    image: 'host',
    command: ['make', '-j4'],
    env: { A: '1', B: 'x=y', FROM_HOST: 'yes', EMPTY: '' },
    cwd: '/src',
    user: '1000:1000',
    hostname: 'box',
    limits: { memory: '64MiB', pids: 10, cpus: 0.5, timeout: '2s', output: '1MiB', disk: '256MiB' },
    mounts: [
      { type: 'bind', source: '/tmp/a', target: '/data', readonly: true },
      { type: 'bind', source: '/work/here/rel', target: '/rw', readonly: false },
      { type: 'volume', source: 'named', target: '/vol', readonly: false },
      { type: 'tmpfs', target: '/scratch', size: '8MiB' },
      { type: 'tmpfs', target: '/run' },
    ],
    network: 'host',
    readonlyRoot: true,
    init: false,
    cgroup: false,
    userns: true,
  });
});

test('inline values, short flags and unlimited', (t) => {
  t.deepEqual(options('--memory=32m', '-m', '64MiB', 'host', 'true').limits, { memory: '64MiB' });
  t.deepEqual(options('-eA=1', '-u', 'nobody', '-w', '/tmp', 'host', 'true'), { image: 'host', command: ['true'], env: { A: '1' }, user: 'nobody', cwd: '/tmp' });
  t.deepEqual(options('--memory', 'unlimited', '--pids', 'unlimited', 'host', 'true').limits, { memory: null, pids: null });
  t.deepEqual(options('--timeout', '0', 'host', 'true').limits, { timeout: '0' });
  t.deepEqual(options('--network', 'none', 'host', 'true').network, 'none');
});

test('the effective limits for the kill-reason line', (t) => {
  t.deepEqual(limitsOf('host', 'true'), { memoryBytes: 512 * 2 ** 20, timeoutMs: 300_000, outputBytes: 16 * 2 ** 20 });
  t.deepEqual(limitsOf('-m', '64m', '--timeout', '300ms', '--output', '1KiB', 'host', 'true'), { memoryBytes: 64 * 2 ** 20, timeoutMs: 300, outputBytes: 1024 });
  t.is(limitsOf('--memory', 'unlimited', 'host', 'true').memoryBytes, null);
});

test('--help before IMAGE is help; after it, part of the command', (t) => {
  t.deepEqual(parse('--help'), { help: true });
  t.deepEqual(parse('-m', '1g', '-h', 'host'), { help: true });
  t.deepEqual(options('host', '--help'), { image: 'host', command: ['--help'] });
});

test('usage errors name the flag', (t) => {
  usageError(t, ['--bogus', 'host', 'true'], /^unknown flag '--bogus'$/);
  usageError(t, ['-x', 'host'], /^unknown flag '-x'$/);
  usageError(t, ['--constructor', 'host'], /^unknown flag '--constructor'$/);
  usageError(t, ['--memory'], /^flag '--memory' needs a value$/);
  usageError(t, ['-m'], /^flag '-m' needs a value$/);
  usageError(t, ['-m', '-x', 'host'], /^flag '-m' needs a value \(write -m=VALUE/);
  usageError(t, ['--memory', '--pids', '3', 'host'], /^flag '--memory' needs a value/);
  usageError(t, ['--read-only=yes', 'host'], /^flag '--read-only' does not take a value$/);
  usageError(t, [], /needs an IMAGE/);
  usageError(t, ['--timeout', '1s'], /needs an IMAGE/);
  usageError(t, ['--memory', 'lots', 'host'], /^--memory expects a size like 64MiB, got 'lots'$/);
  usageError(t, ['--output', '-1', 'host'], /'--output' needs a value/);
  usageError(t, ['--output=-1', 'host'], /^--output expects a size/);
  usageError(t, ['--disk', '1x', 'host'], /^--disk expects a size/);
  usageError(t, ['--pids', '0', 'host'], /^--pids expects a positive integer/);
  usageError(t, ['--pids', '2.5', 'host'], /^--pids expects a positive integer/);
  usageError(t, ['--cpus', 'two', 'host'], /^--cpus expects a positive number/);
  usageError(t, ['--cpus', '0', 'host'], /^--cpus expects a positive number/);
  usageError(t, ['--timeout', 'soon', 'host'], /^--timeout expects a duration/);
  usageError(t, ['--network', 'Bad!', 'host'], /^--network expects 'none', 'host', 'bridge' or a network name, got 'Bad!'$/);
  usageError(t, ['-p', '80', 'host'], /^-p expects /);
  t.deepEqual(options('-p', '8080:80', '-p', '0.0.0.0:53:53/udp', 'host', 'true').publish, [{ host: 8080, container: 80 }, { host: 53, container: 53, hostIp: '0.0.0.0', protocol: 'udp' }]);
  usageError(t, ['--workdir', 'src', 'host'], /^--workdir expects an absolute path/);
  usageError(t, ['--env', '=x', 'host'], /^--env expects KEY=VALUE, got '=x'$/);
  usageError(t, ['--mount', '/data', 'host'], /^--mount expects SRC:DST\[:ro\], got '\/data'$/);
  usageError(t, ['--mount', '/a:data', 'host'], /^--mount: the target must be an absolute path/);
  usageError(t, ['--mount', '/a:/b:rx', 'host'], /^--mount: the options must be 'ro', 'rw' or 'nocopy'/);
  usageError(t, ['--mount', '/a:/b:ro:x', 'host'], /^--mount expects SRC:DST/);
  usageError(t, ['--tmpfs', 'tmp', 'host'], /^--tmpfs: the target must be an absolute path/);
  usageError(t, ['--tmpfs', '/t:big', 'host'], /^--tmpfs: 'big' is not a size/);
  usageError(t, ['--tmpfs', '/t:uid=0', 'host'], /^--tmpfs: unknown or invalid option 'uid=0'/);
});

test('repeatable flag values', (t) => {
  t.is(parseEnvFlags([], {}), undefined);
  t.deepEqual(parseEnvFlags(['A=1', 'A=2', 'PATH'], { PATH: '/bin' }), { A: '2', PATH: '/bin' });
  t.deepEqual(parseMountFlag('/src:/dst', '/'), { type: 'bind', source: '/src', target: '/dst', readonly: false });
  t.deepEqual(parseMountFlag('../x:/dst/../y/:rw', '/a/b'), { type: 'bind', source: '/a/x', target: '/y/', readonly: false });
  t.deepEqual(parseMountFlag('pgdata:/var/lib/db', '/a'), { type: 'volume', source: 'pgdata', target: '/var/lib/db', readonly: false }, 'a plain name is a named volume');
  t.deepEqual(parseMountFlag('./pgdata:/db:ro', '/a'), { type: 'bind', source: '/a/pgdata', target: '/db', readonly: true });
  t.deepEqual(parseMountFlag('pgdata:/db:ro,nocopy', '/a'), { type: 'volume', source: 'pgdata', target: '/db', readonly: true, populate: false }, 'Docker\'s nocopy');
  t.throws(() => parseMountFlag('/src:/db:nocopy', '/a'), { instanceOf: UsageError, message: /nocopy.*named volumes/ });
  t.throws(() => parseMountFlag('pgdata:/db:rx', '/a'), { instanceOf: UsageError, message: /'ro', 'rw' or 'nocopy'/ });
  t.deepEqual(parseTmpfsFlag('/t'), { type: 'tmpfs', target: '/t' });
  t.deepEqual(parseTmpfsFlag('/t:size=64m,mode=1777'), { type: 'tmpfs', target: '/t', size: '64m', mode: 0o1777 });
  t.deepEqual(parseTmpfsFlag('/t:mode=700'), { type: 'tmpfs', target: '/t', mode: 0o700 });
});

test('what the flags produce passes the library\'s own validation', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'nsbox-cli-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  const plan = parseRunArgs(
    ['-m', '64MiB', '--pids', '8', '--cpus', '1', '--timeout', '2s', '--output', '1MiB', '--disk', '64MiB', '-e', 'A=1', '-u', '0:0', '-w', '/w',
      '--hostname', 'h', '-v', `${dir}:/d:ro`, '--tmpfs', '/t:1m', '--network', 'none', '--read-only', '--no-init', '--userns', 'host', 'true'],
    { cwd: dir, env: {} },
  );
  if (plan.help) return t.fail();
  const normalized = normalizeOptions(plan.options);
  t.is(normalized.limits.memoryBytes, 64 * 2 ** 20);
  t.is(normalized.limits.timeoutMs, 2000);
  const source = await fs.realpath(dir);
  const { dev, ino } = await fs.stat(source, { bigint: true });
  t.deepEqual(normalized.mounts, [
    { type: 'bind', source, identity: `${dev}:${ino}`, target: '/d', readonly: true },
    { type: 'tmpfs', target: '/t', sizeBytes: 2 ** 20, mode: 0o1777 },
  ]);
});

test('exit codes: the command\'s, or 128 + the signal', (t) => {
  t.is(exitCodeOf({ exitCode: 0, signal: null }), 0);
  t.is(exitCodeOf({ exitCode: 3, signal: null }), 3);
  t.is(exitCodeOf({ exitCode: null, signal: 'SIGKILL' }), 137);
  t.is(exitCodeOf({ exitCode: null, signal: 'SIGTERM' }), 143);
  t.is(exitCodeOf({ exitCode: null, signal: 'SIGPIPE' }), 141);
});

test('exit codes of errors: 127 not found, 126 not executable, 125 the rest', (t) => {
  const fields = { stage: 'exec', syscall: 'execve', errno: 2, errnoCode: 'ENOENT', path: 'nope' };
  t.is(errorExitCode(new SetupError('ERR_EXEC', 'x', fields)), 127);
  t.is(errorExitCode(new SetupError('ERR_EXEC', 'x', { ...fields, errno: 13, errnoCode: 'EACCES' })), 126);
  t.is(errorExitCode(new SetupError('ERR_SETUP', 'x', { ...fields, stage: 'pivot-root' })), 125);
  t.is(errorExitCode(new SandboxError('ERR_INVALID_OPTION', 'x')), 125);
  t.is(errorExitCode(new Error('x')), 125);
});

test('the kill-reason line', (t) => {
  const none = { isCanceled: false, timedOut: false, outputTruncated: false, oomKilled: false };
  const limits = { memoryBytes: 64 * 2 ** 20, timeoutMs: 2000, outputBytes: 16 * 2 ** 20 };
  t.is(killReasonOf(none, limits), null);
  t.is(killReasonOf({ ...none, timedOut: true }, limits), 'timed out after 2000 ms (killed)');
  t.is(killReasonOf({ ...none, oomKilled: true }, limits), 'killed by the OOM killer (memory limit 64MiB)');
  t.is(killReasonOf({ ...none, oomKilled: true }, { ...limits, memoryBytes: null }), 'killed by the OOM killer (memory limit unlimited)');
  t.is(killReasonOf({ ...none, outputTruncated: true }, limits), 'output limit of 16MiB reached; output cut and sandbox killed');
  t.is(killReasonOf({ ...none, isCanceled: true }, limits), 'canceled (killed)');
  // One line, the first cause: a timeout that also cut output reports the timeout.
  t.is(killReasonOf({ ...none, timedOut: true, outputTruncated: true, oomKilled: true }, limits), 'timed out after 2000 ms (killed)');
});

test('sizes print in the largest unit that divides them', (t) => {
  t.is(formatSize(64 * 2 ** 20), '64MiB');
  t.is(formatSize(2 ** 30), '1GiB');
  t.is(formatSize(1536), '1536 bytes');
  t.is(formatSize(3 * 1024), '3KiB');
  t.is(formatSize(1536 * 1024), '1536KiB');
  t.is(formatSize(0), '0 bytes');
});
