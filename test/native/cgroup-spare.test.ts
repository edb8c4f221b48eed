// SPDX-License-Identifier: Apache-2.0
// The spare cgroup (v1): made while a sandbox starts, taken by the next sandbox with the same limits
// under its own id, never shared, removed when idle, at exit, and by the collector after a crash.
import test from 'ava';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { spawn, run } from '../../src/index.js';
import { collectLeftoverCgroups } from '../../src/cgroup/cgroup.js';
import { detectCgroups } from '../../src/cgroup/detect.js';

const memoryRoot = detectCgroups().v1Controllers.memory;
const pidsRoot = detectCgroups().v1Controllers.pids;

/** This process's spares, by name, in the memory hierarchy. */
function spares(owner = process.pid): string[] {
  return readdirSync(join(memoryRoot!, 'nsbox')).filter((name) => new RegExp(`^${owner}s[0-9a-f]{16}$`).test(name));
}

const read = (root: string, name: string, file: string) => readFileSync(join(root, 'nsbox', name, file), 'utf8').trim();
const MiB = 1024 * 1024;

test.serial('a sandbox takes the spare made for its limits under its own id, fresh; other limits get their own', async (t) => {
  if (!memoryRoot || !pidsRoot) return t.fail('needs the cgroup v1 memory and pids hierarchies');
  const limits = { memory: '48MiB', pids: 40 };
  await run({ image: 'host', command: ['true'], limits });
  await new Promise((resolve) => setImmediate(resolve));
  const [spare] = spares();
  t.truthy(spare, 'a spare was made while the sandbox started');
  t.is(read(memoryRoot, spare!, 'memory.limit_in_bytes'), String(48 * MiB));
  t.is(read(pidsRoot, spare!, 'pids.max'), '40');
  t.is(read(memoryRoot, spare!, 'tasks'), '', 'no process ever joined it');
  t.is(read(memoryRoot, spare!, 'memory.max_usage_in_bytes'), '0');

  const child = spawn({ image: 'host', command: ['sh', '-c', 'read x; cat /proc/self/cgroup'], limits });
  await new Promise((resolve) => child.once('spawn', resolve));
  t.false(spares().includes(spare!), 'the spare was taken');
  // Its own id and its limits.
  t.is(read(memoryRoot, child.id, 'memory.limit_in_bytes'), String(48 * MiB));
  t.is(read(pidsRoot, child.id, 'pids.max'), '40');
  // The sandbox's processes are in it (seen from the host: inside, the cgroup namespace shows /).
  t.regex(readFileSync(`/proc/${child.pid}/cgroup`, 'utf8'), new RegExp(`:memory:/nsbox/${child.id}$`, 'm'));
  child.stdin!.end('\n');
  const { stdout } = await child;
  t.regex(stdout, /memory:\/$/m);
  t.false(existsSync(join(memoryRoot, 'nsbox', child.id)), 'removed with the sandbox');

  // Other limits: a cgroup of their own, and the spare is replaced by one with those limits.
  await run({ image: 'host', command: ['true'], limits: { memory: '40MiB', pids: 40 } });
  await new Promise((resolve) => setImmediate(resolve));
  const [other] = spares();
  t.truthy(other);
  t.is(spares().length, 1, 'one spare at most');
  t.is(read(memoryRoot, other!, 'memory.limit_in_bytes'), String(40 * MiB));
});

test.serial('an idle spare is removed after a second, and one left at exit goes with the process', async (t) => {
  if (!memoryRoot) return t.fail('needs the cgroup v1 memory hierarchy');
  await run({ image: 'host', command: ['true'] });
  await new Promise((resolve) => setImmediate(resolve));
  t.is(spares().length, 1);
  await new Promise((resolve) => setTimeout(resolve, 1300));
  t.deepEqual(spares(), []);

  const index = new URL('../../src/index.ts', import.meta.url).pathname;
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '-e', `import { run } from ${JSON.stringify(index)}; await run({ image: 'host', command: ['true'] }); await new Promise((r) => setImmediate(r)); console.log(process.pid);`]);
  t.deepEqual(spares(Number(stdout.trim())), [], 'nothing left by a host that exited');
});

test.serial('the collector removes the spare of a host that died', (t) => {
  if (!memoryRoot) return t.fail('needs the cgroup v1 memory hierarchy');
  const dead = spawnSync('true').pid!;
  const dir = join(memoryRoot, 'nsbox', `${dead}s0123456789abcdef`);
  mkdirSync(dir);
  collectLeftoverCgroups();
  t.false(existsSync(dir));
});
