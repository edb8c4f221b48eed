// SPDX-License-Identifier: Apache-2.0
// Nothing is left behind: after many runs of every outcome, and after the host itself is killed.
import test from 'ava';
import { execFile, spawn as hostSpawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { promisify } from 'node:util';
import { run } from '../../src/index.js';
import { scratchDir } from '../../src/paths.js';
import { foreignNetnsMount, hostMounts, openFds, ownCgroups, probeRootfs, processesInPidNamespace, zombieChildren } from '../helpers/sandbox.js';

let image: string;
test.before(async () => {
  image = await probeRootfs();
  await run({ image, command: ['true'] });
});

test.serial('200 runs with mixed outcomes leave no mounts, cgroups, fds, zombies or scratch files', async (t) => {
  // Network tests running at the same time bind namespaces in the run dir: not this test's mounts.
  const ownMounts = () => hostMounts().filter((line) => !foreignNetnsMount(line)).length;
  const mounts = ownMounts();
  const fds = openFds().length;
  const outcomes = [
    () => run({ image, command: ['true'] }),
    () => run({ image, command: ['sh', '-c', 'exit 7'], reject: false }),
    () => run({ image, command: ['no-such-command'] }).catch(() => {}),
    () => run({ image, command: ['probe', 'sleep', '5'], limits: { timeout: 20 }, reject: false }),
    () => run({ image, command: ['probe', 'flood', '1m'], limits: { output: 1000 }, reject: false }),
    () => run({ image, command: ['true'], mounts: [{ type: 'tmpfs', target: '/etc/passwd' }] }).catch(() => {}),
    () => run({ image, command: ['probe', 'sleep-tree', '3', '30'], limits: { timeout: 50 }, reject: false }),
    () => {
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 10);
      return run({ image, command: ['probe', 'sleep', '5'], signal: controller.signal }).catch(() => {});
    },
  ];
  for (let i = 0; i < 200; i += 4) {
    await Promise.all([0, 1, 2, 3].map((j) => outcomes[(i + j) % outcomes.length]!()));
  }
  t.is(ownMounts(), mounts, 'no mount appeared in the host’s namespace');
  t.deepEqual(ownCgroups(), [], 'every cgroup removed');
  t.deepEqual(zombieChildren(), [], 'every sandbox reaped');
  t.is(openFds().length, fds, 'no fd leaked');
  t.deepEqual(readdirSync(scratchDir()), [], 'the shared scratch directory stays empty on the host');
});

test.serial('when the host process is killed, its sandboxes die with it, and the next start collects its cgroups', async (t) => {
  const host = hostSpawn(process.execPath, ['--import', 'tsx', new URL('../fixtures/host-that-crashes.ts', import.meta.url).pathname], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve) => host.stdout!.once('data', (chunk: Buffer) => resolve(chunk.toString())));
  const { id, pid, pidns } = JSON.parse(line) as { id: string; pid: number; pidns: string };
  const cgroupDir = `/sys/fs/cgroup/memory/nsbox/${id}`;
  t.true(existsSync(cgroupDir));
  host.kill('SIGKILL');
  await new Promise((resolve) => host.once('exit', resolve));
  // The parent-death signal reaches the sandbox's pid 1, and with it the whole namespace.
  for (let i = 0; i < 100 && processesInPidNamespace(pidns).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
  t.deepEqual(processesInPidNamespace(pidns), [], `sandbox ${pid} died with its host`);
  // A killed host cannot clean up after itself; the next nsbox process to start its first
  // sandbox collects what it left (another test file's process may be that one).
  await promisify(execFile)(process.execPath, ['--import', 'tsx', '-e', `import { run } from ${JSON.stringify(new URL('../../src/index.ts', import.meta.url).pathname)}; await run({ image: 'host', command: ['true'] });`]);
  t.false(existsSync(cgroupDir));
});
