// SPDX-License-Identifier: Apache-2.0
// The examples run as written, against the built package (imported by its name, as a user would).
import test from 'ava';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = (name: string) =>
  promisify(execFile)(process.execPath, ['--import', 'tsx', new URL(`../examples/${name}`, import.meta.url).pathname], { timeout: 60_000 });

test('run-host', async (t) => {
  const { stdout } = await run('run-host.ts');
  t.regex(stdout, /^hello from pid 2 on [0-9a-f]{12}\nexit 0 in /);
});

test('untrusted-code', async (t) => {
  const { stdout } = await run('untrusted-code.ts');
  t.regex(stdout, /^fine\s+ok/m);
  t.regex(stdout, /^crash\s+exit 1/m);
  t.regex(stdout, /^memoryHog\s+out of memory/m);
  t.regex(stdout, /^infiniteLoop\s+time limit/m);
  t.regex(stdout, /^chatty\s+output limit/m);
});

test('streaming', async (t) => {
  const { stdout } = await run('streaming.ts');
  t.is(stdout, 'sandbox saw: one\nsandbox saw: two\nsandbox saw: three\ndone, exit 0\n');
});

test('cancel', async (t) => {
  const { stdout } = await run('cancel.ts');
  t.regex(stdout, /^canceled after \d+ ms \(ERR_CANCELED\)\n$/);
});

test('mounts', async (t) => {
  const { stdout } = await run('mounts.ts');
  t.is(stdout, '/in is read-only\n1 2 3\n');
});

test('function-runner', async (t) => {
  const { stdout } = await run('function-runner.ts');
  t.regex(stdout, /^console\.log\(6 \* 7\)\s+→ 200 42$/m);
  t.regex(stdout, /^throw new Error\("bad input"\)\s+→ 500 Error: bad input$/m);
  t.regex(stdout, /^for \(;;\) \{\}\s+→ 408 time limit$/m);
  t.regex(stdout, /^40 requests; sandbox time p50 [\d.]+ ms, p90 [\d.]+ ms, p99 [\d.]+ ms/m);
});

test('http-function', async (t) => {
  const { stdout } = await run('http-function.ts');
  t.regex(stdout, /^200 \{"path":"\/hello","servedBy":"fn-1"\}\nsandbox address on its network: 10\.231\.\d+\.\d+\n$/);
});

test('test-harness: each ava test gets its own network with a database sandbox', async (t) => {
  const { stdout } = await promisify(execFile)('npx', ['ava', '--config', 'examples/test-harness/ava.config.js'], { cwd: new URL('..', import.meta.url).pathname, timeout: 120_000 });
  t.regex(stdout, /2 tests passed/);
});
