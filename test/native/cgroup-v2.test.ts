// SPDX-License-Identifier: Apache-2.0
// The cgroup v2 path, on this hybrid machine's empty v2 hierarchy: CLONE_INTO_CGROUP, cpu.stat
// and removal work for real; limits need controllers this v2 lacks, so they are ERR_UNSUPPORTED.
import test from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import { detectCgroups } from '../../src/cgroup/detect.js';
import { run, spawn } from '../../src/index.js';
import { probeRootfs } from '../helpers/sandbox.js';

// Read at each launch; this test file runs in its own process.
process.env.NSBOX_CGROUP_VERSION = 'v2';
const noLimits = { memory: null, pids: null } as const;

let image: string;
test.before(async () => {
  image = await probeRootfs();
});

test('a sandbox is cloned straight into its v2 cgroup, which is removed after the run', async (t) => {
  const v2 = detectCgroups().v2!.mountPoint;
  const child = spawn({ image, command: ['probe', 'sleep', '1'], limits: noLimits });
  await new Promise((resolve) => child.once('spawn', resolve));
  const dir = `${v2}/nsbox/${child.id}`;
  const members = readFileSync(`${dir}/cgroup.procs`, 'utf8').trim().split('\n').map(Number);
  t.true(members.includes(child.pid!), 'pid 1 was born in the cgroup (CLONE_INTO_CGROUP)');
  const result = await child;
  t.is(result.exitCode, 0);
  t.false(existsSync(dir));
});

test('usage comes from the v2 cgroup’s cpu.stat', async (t) => {
  const result = await run({ image, command: ['sh', '-c', 'i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done'], limits: noLimits });
  t.true(result.usage.cpuTimeMs > 10);
});

test('a timeout kills the tree through the v2 path as well', async (t) => {
  const result = await run({ image, command: ['probe', 'sleep-tree', '3', '30'], limits: { ...noLimits, timeout: 300 }, reject: false });
  t.true(result.timedOut);
});

test('limits whose controller this v2 hierarchy lacks are ERR_UNSUPPORTED, naming it', async (t) => {
  const error = await t.throwsAsync(run({ image, command: ['true'], limits: { memory: '64MiB', pids: null } }));
  t.is((error as { code?: string }).code, 'ERR_UNSUPPORTED');
  t.regex(error!.message, /memory/);
});
