// SPDX-License-Identifier: Apache-2.0
// Abuse of resources: each attack stops at its limit with the verdict reported, and the host keeps working.
import test from 'ava';
import { spawn as hostSpawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, watch } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, spawn, type SandboxProcess } from '../../src/index.js';
import { zombieChildren } from '../helpers/sandbox.js';
import { assertBlocked, assertNoEscape, attack, attackOptions } from './attack.js';

const MIB = 1024 * 1024;

/** The host can still start a process. */
async function hostCanSpawn(): Promise<boolean> {
  const echo = hostSpawn('true');
  return (await new Promise((resolve) => echo.on('exit', resolve))) === 0;
}

/** Starts an attack with spawn() and resolves once its first report line is out. */
async function holding(args: string[]): Promise<{ child: SandboxProcess<string>; report: string }> {
  const options = await attackOptions();
  const child = spawn({ ...options, command: ['probe', ...args], reject: false }) as SandboxProcess<string>;
  let out = '';
  child.stdout.setEncoding('utf8');
  const report = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (chunk: string) => {
      out += chunk;
      if (out.includes('\n')) resolve(out.split('\n')[0]!);
    });
    void child.then(() => reject(new Error(`the attack ended before reporting: ${out}`)));
  });
  return { child, report };
}

test('a fork bomb stops at the default pids limit (256) and the host still starts processes', async (t) => {
  const attempt = await attack(['forkbomb', '5000']);
  const match = /forked (\d+) errno=(\w+)/.exec(attempt.result.stdout);
  t.truthy(match, attempt.output);
  t.log(match![0]);
  t.is(match![2], 'EAGAIN');
  t.true(Number(match![1]) < 256, match![0]);
  t.true(attempt.result.usage.pidsPeak! <= 256);
  t.true(await hostCanSpawn());
});

test('a thread bomb stops at the pids limit', async (t) => {
  const attempt = await attack(['threads', '5000']);
  const match = /threads (\d+) errno=(\w+)/.exec(attempt.result.stdout);
  t.truthy(match, attempt.output);
  t.log(match![0]);
  t.is(match![2], 'EAGAIN');
  t.true(Number(match![1]) < 256, match![0]);
  t.true(await hostCanSpawn());
});

test.serial('a zombie flood stops at the pids limit and leaves no zombie on the host', async (t) => {
  const attempt = await attack(['zombies', '5000']);
  const match = /zombies (\d+) errno=(\w+)/.exec(attempt.result.stdout);
  t.truthy(match, attempt.output);
  t.log(match![0]);
  t.is(match![2], 'EAGAIN');
  t.true(Number(match![1]) < 256, match![0]);
  t.is(attempt.result.exitCode, 0);
  t.deepEqual(zombieChildren(), []);
  t.true(await hostCanSpawn());
});

test('a memory bomb is OOM-killed at its memory limit and reported', async (t) => {
  const attempt = await attack(['memhog', '1024'], { limits: { memory: '64MiB' } });
  t.log(`oomKilled=${attempt.result.oomKilled} signal=${attempt.result.signal} peak=${attempt.result.usage.memoryPeakBytes}`);
  t.true(attempt.result.oomKilled, attempt.output);
  t.is(attempt.result.signal, 'SIGKILL');
  t.notRegex(attempt.result.stdout, /survived/);
  t.true(attempt.result.usage.memoryPeakBytes! <= 64 * MIB);
});

test('filling the writable layer stops at limits.disk', async (t) => {
  const attempt = await attack(['fill', '/big', '256'], { limits: { disk: '16MiB' } });
  const match = /wrote (\d+) bytes errno=(\w+)/.exec(attempt.result.stdout);
  t.truthy(match, attempt.output);
  t.log(match![0]);
  t.is(match![2], 'ENOSPC');
  t.true(Number(match![1]) <= 16 * MIB);
});

test('filling /tmp stops at limits.disk', async (t) => {
  const attempt = await attack(['fill', '/tmp/big', '256'], { limits: { disk: '16MiB' } });
  const match = /wrote (\d+) bytes errno=(\w+)/.exec(attempt.result.stdout);
  t.truthy(match, attempt.output);
  t.log(match![0]);
  t.is(match![2], 'ENOSPC');
  t.true(Number(match![1]) <= 16 * MIB);
});

test('filling /dev/shm stops at its 64 MiB', async (t) => {
  const attempt = await attack(['fill', '/dev/shm/big', '256']);
  const match = /wrote (\d+) bytes errno=(\w+)/.exec(attempt.result.stdout);
  t.truthy(match, attempt.output);
  t.log(match![0]);
  t.is(match![2], 'ENOSPC');
  t.true(Number(match![1]) <= 64 * MIB);
});

test('an stdout flood is cut at limits.output and the sandbox killed', async (t) => {
  const attempt = await attack(['flood', '500m'], { limits: { output: '1MiB' } });
  t.log(`outputTruncated=${attempt.result.outputTruncated} kept=${attempt.result.stdout.length} signal=${attempt.result.signal}`);
  t.true(attempt.result.outputTruncated);
  t.is(attempt.result.stdout.length, MIB);
  t.is(attempt.result.signal, 'SIGKILL');
});

test('an stderr flood is cut at limits.output and the sandbox killed', async (t) => {
  const options = await attackOptions({ limits: { output: '1MiB' } });
  const result = await run({ ...options, command: ['sh', '-c', 'exec probe flood 500m >&2'], reject: false });
  t.log(`outputTruncated=${result.outputTruncated} kept=${result.stderr.length} signal=${result.signal}`);
  t.true(result.outputTruncated);
  t.is(result.stderr.length, MIB);
  t.is(result.signal, 'SIGKILL');
});

test('fd exhaustion stops at RLIMIT_NOFILE (4096), which cannot be raised', async (t) => {
  const attempt = await attack(['fd-exhaust']);
  assertNoEscape(t, attempt);
  const match = /opened (\d+) errno=(\w+)/.exec(attempt.result.stdout);
  t.truthy(match, attempt.output);
  t.log(match![0]);
  t.is(match![2], 'EMFILE');
  t.true(Number(match![1]) <= 4096 - 3, match![0]);
  assertBlocked(t, attempt, 'setrlimit nofile x16', ['EPERM']);
});

test('a busy loop is killed at the timeout', async (t) => {
  const options = await attackOptions({ limits: { timeout: '1s' } });
  const result = await run({ ...options, command: ['sh', '-c', 'while :; do :; done'], reject: false });
  t.log(`timedOut=${result.timedOut} signal=${result.signal} after ${Math.round(result.durationMs)} ms`);
  t.true(result.timedOut);
  t.is(result.signal, 'SIGKILL');
  t.true(result.durationMs < 10_000);
});

test('memory cannot be pinned beyond RLIMIT_MEMLOCK', async (t) => {
  const attempt = await attack(['mlock', '256']);
  assertNoEscape(t, attempt);
  t.log(attempt.result.stdout.trim());
  assertBlocked(t, attempt, 'mlock', ['ENOMEM', 'EPERM', 'EAGAIN']);
});

test.serial('pty exhaustion inside leaves the host able to open ptys', async (t) => {
  const { child, report } = await holding(['pty-exhaust', '5000', '3']);
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  t.log(report);
  t.regex(report, /^ptys \d+ errno=\w+/);
  const fd = openSync('/dev/ptmx', 'r+');
  closeSync(fd);
  t.pass();
  child.kill('SIGKILL');
  await child;
  t.true(Number(readFileSync('/proc/sys/kernel/pty/nr', 'utf8')) < 1024);
});

test.serial('inotify exhaustion is bounded by the kernel’s per-user limit and released when the sandbox ends', async (t) => {
  // A known limit of the boundary (SECURITY.md, shared kernel resources): max_user_instances
  // counts per user, and without a user namespace root inside is root outside, so while the
  // sandbox holds every instance the host's root cannot add one. What nsbox guarantees is
  // that the exhaustion stops at the kernel's limit and ends with the sandbox.
  const dir = mkdtempSync(join(tmpdir(), 'nsbox-watch-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const limit = Number(readFileSync('/proc/sys/fs/inotify/max_user_instances', 'utf8'));
  const { child, report } = await holding(['inotify-exhaust', '3']);
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  t.log(report);
  const held = Number(/^inotify (\d+) errno=EMFILE/.exec(report)?.[1]);
  t.true(held > 0 && held <= limit, `held ${held} of ${limit}`);
  child.kill('SIGKILL');
  await child;
  t.notThrows(() => watch(dir).close(), 'the host can watch files again once the sandbox is gone');
});
