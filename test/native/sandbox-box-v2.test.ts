// SPDX-License-Identifier: Apache-2.0
// Long-lived sandboxes on cgroup v2 (this hybrid machine's empty v2 hierarchy): exec clones
// straight into the sandbox's cgroup, and pause/resume use cgroup.freeze.
import test from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import { detectCgroups } from '../../src/cgroup/detect.js';
import { Sandbox } from '../../src/index.js';

// Read at each launch; this test file runs in its own process.
process.env.NSBOX_CGROUP_VERSION = 'v2';
const noLimits = { memory: null, pids: null } as const;

test('exec joins the v2 cgroup, and pause freezes it (cgroup.freeze) until resume', async (t) => {
  const v2 = detectCgroups().v2!.mountPoint;
  const box = await Sandbox.create({ image: 'host', limits: noLimits });
  const dir = `${v2}/nsbox/${box.id}`;
  const sleeper = box.exec(['sleep', '30']);
  await new Promise((resolve) => sleeper.once('spawn', resolve));
  const members = () => readFileSync(`${dir}/cgroup.procs`, 'utf8').trim().split('\n').map(Number);
  t.true(members().includes(box.pid));
  t.true(members().includes(sleeper.pid!), 'the exec (its init) was cloned into the sandbox cgroup');
  t.true(members().length >= 3, 'and so was the command it forked');

  await box.pause();
  t.regex(readFileSync(`${dir}/cgroup.events`, 'utf8'), /^frozen 1$/m);
  const state = (pid: number) => /^State:\s+(\S)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1];
  await box.resume();
  t.regex(readFileSync(`${dir}/cgroup.events`, 'utf8'), /^frozen 0$/m);
  t.is(state(box.pid), 'S');
  t.is((await box.exec(['echo', 'thawed'])).stdout, 'thawed\n');
  await box.remove();
  await sleeper.result.catch(() => {});
  t.false(existsSync(dir));
});
