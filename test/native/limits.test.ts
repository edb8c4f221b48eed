// SPDX-License-Identifier: Apache-2.0
// Limits hold against hostile workloads: memory, pids, cpu, time, output, disk, abort.
// Every attack runs in the probe, which refuses unless it is pid ≤ 2 under the hostname we gave it.
import test from 'ava';
import { readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { spawn as hostSpawn } from 'node:child_process';
import { run, spawn, RunError } from '../../src/index.js';
import { guardEnv, processesInPidNamespace, probeRootfs } from '../helpers/sandbox.js';

let image: string;
test.before(async () => {
  image = await probeRootfs();
});

const box = (name: string) => ({ hostname: name, env: guardEnv(name) });

test('the probe refuses to attack outside a sandbox', async (t) => {
  const result = await run({ image, command: ['probe', 'memhog', '1'], hostname: 'not-the-guard', env: guardEnv('other'), reject: false });
  t.is(result.exitCode, 99);
  t.regex(result.stderr, /guard failed/);
});

test('a memory hog is OOM-killed at the memory limit and reported', async (t) => {
  const error = await t.throwsAsync(run({ image, command: ['probe', 'memhog', '256'], limits: { memory: '32MiB' }, ...box('memhog') }), { instanceOf: RunError });
  t.is(error!.code, 'ERR_OOM');
  t.true(error!.oomKilled);
  t.is(error!.signal, 'SIGKILL');
  t.notRegex(error!.stdout, /survived/);
  t.true(error!.usage.memoryPeakBytes! <= 32 * 1024 * 1024);
});

test('a fork bomb stops at the pids limit and the host stays responsive', async (t) => {
  const result = await run({ image, command: ['probe', 'forkbomb', '5000'], limits: { pids: 24 }, ...box('forkbomb') });
  const match = /forked (\d+) errno=(\w+)/.exec(result.stdout);
  t.truthy(match, result.stdout);
  t.true(Number(match![1]) < 24);
  t.is(match![2], 'EAGAIN');
  t.true(result.usage.pidsPeak! <= 24);
  // The host can still start processes.
  const echo = hostSpawn('echo', ['alive']);
  t.is(await new Promise((resolve) => echo.on('exit', resolve)), 0);
});

test('the timeout kills the whole tree, not only pid 1', async (t) => {
  const child = spawn({ image, command: ['probe', 'sleep-tree', '4', '60'], limits: { timeout: '1500ms' }, reject: false });
  let pidns = '';
  child.stdout.once('data', () => {
    pidns = readlinkSync(`/proc/${child.pid}/ns/pid`);
  });
  const result = await child;
  t.true(result.timedOut);
  t.is(result.signal, 'SIGKILL');
  t.true(result.failed);
  t.regex(result.stdout, /started 4/);
  t.truthy(pidns);
  t.deepEqual(processesInPidNamespace(pidns), [], 'no process of the sandbox outlives it');
});

test('a timeout rejects with ERR_TIMEOUT by default', async (t) => {
  const error = await t.throwsAsync(run({ image, command: ['probe', 'sleep', '30'], limits: { timeout: 200 } }), { instanceOf: RunError });
  t.is(error!.code, 'ERR_TIMEOUT');
  t.true(error!.timedOut);
  t.regex(error!.message, /timed out after 200 milliseconds/);
});

test('output past limits.output is cut, flagged, and the flood stopped; host memory stays bounded', async (t) => {
  const result = await run({ image, command: ['probe', 'flood', '200m'], limits: { output: '1MiB' }, reject: false });
  t.true(result.outputTruncated);
  t.is(result.stdout.length, 1024 * 1024);
  t.is(result.signal, 'SIGKILL');
  t.true(result.failed);
});

test('aborting through an AbortSignal kills the sandbox and reports isCanceled', async (t) => {
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 300);
  const error = await t.throwsAsync(run({ image, command: ['probe', 'sleep', '30'], signal: controller.signal }), { instanceOf: RunError });
  t.is(error!.code, 'ERR_CANCELED');
  t.true(error!.isCanceled);
  const early = new AbortController();
  early.abort();
  const before = await t.throwsAsync(run({ image, command: ['probe', 'sleep', '30'], signal: early.signal }));
  t.is((before as RunError).code, 'ERR_CANCELED');
});

test('a cpu quota holds the workload to its share', async (t) => {
  // A busy loop for one second of wall time at 0.2 cores uses about 200 ms of CPU.
  const result = await run({ image, command: ['sh', '-c', 'while :; do :; done'], limits: { cpus: 0.2, timeout: '1s' }, reject: false });
  t.true(result.timedOut);
  t.true(result.usage.cpuTimeMs < 600, `used ${result.usage.cpuTimeMs} ms of CPU`);
  t.true(result.usage.cpuTimeMs > 50, `used ${result.usage.cpuTimeMs} ms of CPU`);
});

test('filling the writable layer stops at limits.disk', async (t) => {
  const result = await run({ image, command: ['probe', 'fill', '/big', '64'], limits: { disk: '8MiB' }, ...box('fill') });
  t.regex(result.stdout, /errno=ENOSPC/);
  const written = Number(/wrote (\d+) bytes/.exec(result.stdout)![1]);
  t.true(written <= 8 * 1024 * 1024);
});

test('kill -9 -1 inside kills only the sandbox', async (t) => {
  const result = await run({ image, command: ['probe', 'kill-all'], ...box('killall') });
  t.regex(result.stdout, /survived/);
  t.is(process.kill(process.pid, 0), true);
});

test('changing the hostname from inside fails and the host keeps its own', async (t) => {
  const before = hostname();
  const result = await run({ image, command: ['probe', 'sethostname', 'pwned'], ...box('uts'), reject: false });
  t.not(result.exitCode, 0);
  t.regex(result.stderr, /EPERM/);
  t.is(hostname(), before);
});

test('an abort while the sandbox is still starting kills it as soon as it runs', async (t) => {
  const controller = new AbortController();
  const pending = run({ image, command: ['probe', 'sleep', '30'], signal: controller.signal, reject: false });
  controller.abort();
  const result = await pending;
  t.true(result.isCanceled);
  t.true(result.durationMs < 10_000);
});

test('rlimits: defaults, the caller’s values, and a clamp to the host’s hard limit instead of a failure', async (t) => {
  const show = async (name: string, rlimits?: Parameters<typeof run>[0]['rlimits']) => (await run({ image, command: ['probe', 'rlimit', name], rlimits })).stdout.trim();
  t.is(await show('core'), 'soft=0 hard=0');
  t.is(await show('nofile'), 'soft=4096 hard=4096');
  t.is(await show('nofile', { nofile: 64 }), 'soft=64 hard=64');
  t.is(await show('nofile', { nofile: { soft: 32, hard: 128 } }), 'soft=32 hard=128');
  const hostHard = /^Max open files\s+\S+\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))![1];
  t.is(await show('nofile', { nofile: 1e9 }), `soft=${hostHard} hard=${hostHard}`);
  const fill = await run({ image, command: ['probe', 'fill', '/tmp/big', '4'], rlimits: { fsize: 1024 * 1024 }, ...box('fsize') });
  t.regex(fill.stdout, /wrote 1048576 bytes errno=EFBIG/);
});
