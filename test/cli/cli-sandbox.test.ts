// SPDX-License-Identifier: Apache-2.0
// The CLI's long-lived-sandbox parts, built CLI end to end: `run -it` on a real terminal
// (util-linux script(1) gives the CLI a pty), `run -v NAME:/path` volumes, `nsbox volume`.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { collect, type Collected } from '../helpers/collect.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const bin = path.join(repoRoot, 'bin', 'nsbox.js');
const home = mkdtempSync(path.join(os.tmpdir(), 'nsbox-cli-sandbox-'));
test.after.always(() => rmSync(home, { recursive: true, force: true }));

function run(command: string, args: string[], input?: (write: (text: string) => void) => Promise<void>): Promise<Collected> {
  return collect(command, args, { env: { ...process.env, NSBOX_HOME: home }, timeoutMs: 30_000, ...(input && { input }) });
}

// script(1) runs the CLI on a new pseudo-terminal and copies our pipe into it.
const onTerminal = (args: string[], input?: (write: (text: string) => void) => Promise<void>) =>
  run('script', ['-qec', [process.execPath, bin, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' '), '/dev/null'], input);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('run -it gives the command a terminal of the sandbox and exits with its status', async (t) => {
  const r = await onTerminal(['run', '-it', 'host', 'sh', '-c', 'tty; stty size; test -t 0 && echo on-a-tty; exit 3']);
  t.is(r.code, 3);
  // The host terminal is in raw input mode but keeps its own newline translation, so \r\n arrives as \r\r\n.
  // script(1) passes on the end of its input as a ^@ that the terminal echoes somewhere in between.
  t.regex(r.stdout.replaceAll("^@", ""), /\/dev\/pts\/0\r+\n\d+ \d+\r+\non-a-tty\r+\n/);
});

test('run -it runs an interactive shell: keys go in, its output comes back', async (t) => {
  const r = await onTerminal(['run', '-it', '--hostname', 'shellbox', 'host', 'sh'], async (write) => {
    await sleep(1500);
    write('echo "answer: $((6 * 7)) on $(hostname)"\n');
    await sleep(500);
    write('exit 4\n');
  });
  t.is(r.code, 4);
  t.regex(r.stdout, /answer: 42 on shellbox/);
});

test('run -v NAME:/path mounts a named volume that keeps its data; nsbox volume ls and rm', async (t) => {
  const write = await run(process.execPath, [bin, 'run', '-v', 'clidata:/data', 'host', 'sh', '-c', 'echo kept > /data/file']);
  t.is(write.code, 0, write.stderr);
  const read = await run(process.execPath, [bin, 'run', '-v', 'clidata:/data:ro', 'host', 'cat', '/data/file']);
  t.is(read.stdout, 'kept\n');
  const list = await run(process.execPath, [bin, 'volume', 'ls']);
  t.is(list.stdout, 'VOLUME NAME\nclidata\n');
  t.is((await run(process.execPath, [bin, 'volume', 'ls', '-q'])).stdout, 'clidata\n');
  const removed = await run(process.execPath, [bin, 'volume', 'rm', 'clidata', 'nope']);
  t.is(removed.code, 1);
  t.is(removed.stdout, 'clidata\n');
  t.regex(removed.stderr, /No such volume: `nope`/);
  t.is((await run(process.execPath, [bin, 'volume', 'ls', '-q'])).stdout, '');
  t.is((await run(process.execPath, [bin, 'volume', 'create', '../x'])).code, 1);
  t.is((await run(process.execPath, [bin, 'volume', 'frob'])).code, 125);
});

const publishes = test.macro(async (t, extra: string[]) => {
  const port = 20000 + Math.floor(Math.random() * 20000);
  const child = spawn(process.execPath, [bin, 'run', ...extra, '-p', `${port}:8080`, 'host', 'node', '-e', "require('http').createServer((q, s) => s.end('from the cli')).listen(8080, () => console.log('listening'))"], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NSBOX_HOME: home } });
  t.teardown(() => child.kill('SIGKILL'));
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  await new Promise<void>((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (d: string) => d.includes('listening') && resolve());
    child.on('close', () => reject(new Error(`nsbox exited: ${stderr}`)));
  });
  t.is(await (await fetch(`http://127.0.0.1:${port}/`)).text(), 'from the cli');
  const closed = new Promise((resolve) => child.on('close', resolve));
  child.kill('SIGTERM');
  t.is(await closed, 143, 'SIGTERM forwarded: 128 + 15');
  // Whatever carried the port (nft rules, or pasta in a user namespace) went with the sandbox.
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.false(await fetch(`http://127.0.0.1:${port}/`).then(() => true, () => false));
});

test('run -p HOST:CONTAINER publishes a port of a bridged sandbox on 127.0.0.1', publishes, []);
test('run --userns -p HOST:CONTAINER publishes it through pasta (user-mode networking)', publishes, ['--userns']);
