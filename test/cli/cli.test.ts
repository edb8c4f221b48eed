// SPDX-License-Identifier: Apache-2.0
// End-to-end tests of the built CLI: `node bin/nsbox.js …` (needs dist/, which `npm test` builds first).
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { busyboxOciLayout, MOTD_TEXT, probeRootfs } from '../helpers/probe-image.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const bin = path.join(repoRoot, 'bin', 'nsbox.js');
const pythonAvailable = existsSync('/usr/bin/python3');

interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the CLI to completion (killed after `timeoutMs`). `input` is written to its stdin and
 * closed; without it stdin is /dev/null. `onStdout` sees the output as it comes.
 */
function nsbox(args: string[], opts: { input?: string; cwd?: string; timeoutMs?: number; onStdout?: (text: string, pid: number) => void } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], {
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      cwd: opts.cwd,
      timeout: opts.timeoutMs ?? 30_000,
      killSignal: 'SIGKILL',
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      opts.onStdout?.(stdout, child.pid!);
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdin?.end(opts.input);
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

test.before(() => {
  if (!existsSync(path.join(repoRoot, 'dist', 'cli.js'))) throw new Error('dist/cli.js is missing: build first (`npx tsup`, or `npm test`)');
});

test('--version prints the package version', async (t) => {
  const { version } = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string };
  const r = await nsbox(['--version']);
  t.is(r.code, 0);
  t.is(r.stdout, `nsbox ${version}\n`);
});

test('--help and run --help', async (t) => {
  const top = await nsbox(['--help']);
  t.is(top.code, 0);
  t.regex(top.stdout, /^Usage: nsbox COMMAND/);
  t.regex(top.stdout, /run +Run a command in a new sandbox/);
  for (const args of [['run', '--help'], ['run', '-h'], ['help', 'run']]) {
    const r = await nsbox(args);
    t.is(r.code, 0, args.join(' '));
    t.regex(r.stdout, /^Usage: nsbox run \[OPTIONS\] IMAGE \[--\] \[COMMAND \[ARG\.\.\.\]\]/);
    t.regex(r.stdout, /--memory SIZE/);
    t.is(r.stderr, '');
  }
});

test('usage errors exit 125 with a clear message', async (t) => {
  const flag = await nsbox(['run', '--frobnicate', 'host', 'true']);
  t.is(flag.code, 125);
  t.is(flag.stdout, '');
  t.is(flag.stderr, "nsbox: unknown flag '--frobnicate'\nSee 'nsbox run --help'.\n");

  const bad = await nsbox(['run', '--memory', 'lots', 'host', 'true']);
  t.is(bad.code, 125);
  t.regex(bad.stderr, /^nsbox: --memory expects a size like 64MiB, got 'lots'\n/);

  const command = await nsbox(['frob']);
  t.is(command.code, 125);
  t.regex(command.stderr, /^nsbox: unknown command 'frob'\n/);

  const topFlag = await nsbox(['--frob']);
  t.is(topFlag.code, 125);
  t.regex(topFlag.stderr, /^nsbox: unknown flag '--frob'\n/);

  const none = await nsbox([]);
  t.is(none.code, 125);
  t.regex(none.stderr, /^Usage: nsbox COMMAND/);
});

test.serial('streams stdout and stderr and exits with the exit code', async (t) => {
  const r = await nsbox(['run', 'host', '--', 'sh', '-c', 'echo out; echo err >&2; exit 3']);
  t.is(r.code, 3);
  t.is(r.stdout, 'out\n');
  t.is(r.stderr, 'err\n');
});

test.serial('the command keeps its own flags', async (t) => {
  const r = await nsbox(['run', 'host', 'sh', '-c', 'echo "$@"', 'sh', '--memory', '-x']);
  t.is(r.code, 0);
  t.is(r.stdout, '--memory -x\n');
});

test.serial('--timeout kills the sandbox: exit 137 and a line saying why', async (t) => {
  const started = Date.now();
  const r = await nsbox(['run', '--timeout', '300ms', 'host', '--', 'sleep', '5']);
  t.is(r.code, 137);
  t.is(r.stderr, 'nsbox: timed out after 300 ms (killed)\n');
  t.true(Date.now() - started < 4000);
});

test.serial('--env sets variables; a bare KEY copies the host value', async (t) => {
  const r = await nsbox(['run', '--env', 'A=1', '-e', 'B=two words', '-e', 'PATH', 'host', '--', 'sh', '-c', 'echo "$A|$B|$PATH"']);
  t.is(r.code, 0);
  t.is(r.stdout, `1|two words|${process.env.PATH}\n`);
});

test.serial('--mount SRC:DST:ro is readable and not writable; without :ro it is writable', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'nsbox-cli-mount-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  await fs.writeFile(path.join(dir, 'in.txt'), 'from the host\n');

  const ro = await nsbox(['run', '--mount', `${dir}:/data:ro`, 'host', '--', 'sh', '-c', 'cat /data/in.txt; echo x > /data/out.txt']);
  t.is(ro.stdout, 'from the host\n');
  t.not(ro.code, 0);
  t.regex(ro.stderr, /Read-only file system/);
  t.false(existsSync(path.join(dir, 'out.txt')));

  const rw = await nsbox(['run', '-v', `${dir}:/data`, 'host', '--', 'sh', '-c', 'echo written > /data/out.txt']);
  t.is(rw.code, 0);
  t.is(await fs.readFile(path.join(dir, 'out.txt'), 'utf8'), 'written\n');
});

test.serial('--tmpfs mounts a sized tmpfs', async (t) => {
  const r = await nsbox(['run', '--tmpfs', '/scratch:2MiB', 'host', '--', 'df', '-k', '/scratch']);
  t.is(r.code, 0);
  t.regex(r.stdout.trim().split('\n').at(-1)!, /^tmpfs +2048 .* \/scratch$/);
});

(pythonAvailable ? test.serial : test.serial.skip)('--memory: an OOM kill exits 137 with a line saying why', async (t) => {
  const r = await nsbox(['run', '--memory', '32MiB', 'host', '--', 'python3', '-c', 'b = bytearray(200 * 1024 * 1024)']);
  t.is(r.code, 137);
  t.is(r.stderr, 'nsbox: killed by the OOM killer (memory limit 32MiB)\n');
});

test.serial('--output: output past the limit is cut and the sandbox killed', async (t) => {
  const r = await nsbox(['run', '--output', '1KiB', 'host', '--', 'sh', '-c', 'yes | head -c 100000; sleep 5']);
  t.is(r.code, 137);
  t.is(r.stdout.length, 1024);
  t.is(r.stderr, 'nsbox: output limit of 1KiB reached; output cut and sandbox killed\n');
});

test.serial('a signal that ends the command gives 128 + its number, with no reason line', async (t) => {
  const r = await nsbox(['run', 'host', '--', 'sh', '-c', 'kill -TERM $$']);
  t.is(r.code, 143);
  t.is(r.stderr, '');
});

test.serial('IMAGE as a root filesystem directory, also relative, with --user and --workdir', async (t) => {
  const rootfs = await probeRootfs();
  const r = await nsbox(['run', '--user', 'app', '--workdir', '/home/app', rootfs, '--', 'sh', '-c', 'id -u; pwd']);
  t.is(r.code, 0);
  t.is(r.stdout, '1000\n/home/app\n');
  const relative = await nsbox(['run', path.basename(rootfs), 'cat', '/etc/group'], { cwd: path.dirname(rootfs) });
  t.is(relative.code, 0);
  t.regex(relative.stdout, /^root:x:0:/);
});

test.serial('IMAGE as an OCI layout: no command runs its cmd (sh, fed by stdin)', async (t) => {
  const { dir } = await busyboxOciLayout();
  const r = await nsbox(['run', dir], { input: 'cat /etc/motd\n' });
  t.is(r.code, 0);
  t.is(r.stdout, MOTD_TEXT);
});

test.serial('a missing command exits 127, a non-executable one 126', async (t) => {
  const missing = await nsbox(['run', 'host', '--', 'no-such-command-here']);
  t.is(missing.code, 127);
  t.regex(missing.stderr, /^nsbox: Command `no-such-command-here` not found in the sandbox/);

  const notExecutable = await nsbox(['run', 'host', '--', '/etc/passwd']);
  t.is(notExecutable.code, 126);
  t.regex(notExecutable.stderr, /^nsbox: Command `\/etc\/passwd` could not be executed/);
});

test.serial('setup errors exit 125', async (t) => {
  const image = await nsbox(['run', '/no/such/image', 'true']);
  t.is(image.code, 125);
  t.regex(image.stderr, /^nsbox: Image `\/no\/such\/image` is not an existing directory/);

  const mount = await nsbox(['run', '--mount', '/no/such/dir:/data', 'host', 'true']);
  t.is(mount.code, 125);
  t.regex(mount.stderr, /^nsbox: Invalid sandbox option: mounts source `\/no\/such\/dir` does not exist/);
});

test.serial('stdin is passed through when it is not a terminal', async (t) => {
  const r = await nsbox(['run', 'host', '--', 'cat'], { input: 'hi\n' });
  t.is(r.code, 0);
  t.is(r.stdout, 'hi\n');
});

test.serial('a command that does not read stdin still ends the CLI', async (t) => {
  // Stdin stays open (never ended) here: the CLI must exit when the command does.
  const r = await new Promise<CliResult>((resolve, reject) => {
    const child = spawn(process.execPath, [bin, 'run', 'host', '--', 'echo', 'done'], { stdio: ['pipe', 'pipe', 'pipe'], timeout: 15_000, killSignal: 'SIGKILL' });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      child.stdin.destroy();
      resolve({ code, signal, stdout, stderr: '' });
    });
  });
  t.is(r.signal, null);
  t.is(r.code, 0);
  t.is(r.stdout, 'done\n');
});

test.serial('SIGTERM to the CLI is forwarded to the sandbox', async (t) => {
  let sent = false;
  const r = await nsbox(['run', 'host', '--', 'sh', '-c', 'echo ready; exec sleep 10'], {
    onStdout: (text, pid) => {
      if (!sent && text.includes('ready')) {
        sent = true;
        process.kill(pid, 'SIGTERM');
      }
    },
  });
  t.true(sent);
  t.is(r.signal, null); // the CLI itself exits normally, with the sandbox's status
  t.is(r.code, 143);
});

test.serial('a reader that goes away ends the command with SIGPIPE', async (t) => {
  const r = await new Promise<CliResult>((resolve, reject) => {
    const child = spawn(process.execPath, [bin, 'run', 'host', '--', 'yes'], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 15_000, killSignal: 'SIGKILL' });
    let stderr = '';
    child.stdout.once('data', () => child.stdout.destroy());
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout: '', stderr }));
  });
  t.is(r.code, 141);
  t.is(r.stderr, '');
});
