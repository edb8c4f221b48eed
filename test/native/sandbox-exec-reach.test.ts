// SPDX-License-Identifier: Apache-2.0
// What an exec's kill() and timeout reach: everything the exec started, also a process that
// changed its uid (which loses the parent-death signal), and nothing another exec started.
import test from 'ava';
import { readFileSync, readlinkSync } from 'node:fs';
import { RunError, Sandbox } from '../../src/index.js';
import { processesInPidNamespace } from '../helpers/sandbox.js';

const asUser1000 = ['setpriv', '--reuid', '1000', '--regid', '1000', '--clear-groups'];

// The `sleep N` processes of the sandbox, seen from the host: N → its uid.
function sleepers(box: Sandbox): Map<string, number> {
  const found = new Map<string, number>();
  for (const pid of processesInPidNamespace(readlinkSync(`/proc/${box.pid}/ns/pid`))) {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      const uid = Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
      if (argv[0] === 'sleep' && argv[1]) found.set(argv[1], uid);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

async function waitFor(check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test('kill() ends what the exec started, also processes that changed their uid; an earlier exec’s background process lives on', async (t) => {
  await using box = await Sandbox.create({ image: 'host' });
  // An earlier exec leaves a process behind: it is the sandbox's, not the next exec's.
  await box.exec(['sh', '-c', 'sleep 7001 >/dev/null 2>&1 &']);
  const exec = box.exec(['sh', '-c', `${asUser1000.join(' ')} sleep 7002 & ${asUser1000.join(' ')} sh -c 'sleep 7003; true' & sleep 7004 & wait`]);
  await waitFor(() => ['7001', '7002', '7003', '7004'].every((n) => sleepers(box).has(n)));
  t.is(sleepers(box).get('7002'), 1000, 'the workload changed its uid');
  t.is(sleepers(box).get('7003'), 1000);
  t.true(exec.kill());
  const error = await exec.result.catch((e: unknown) => e);
  t.true(error instanceof RunError);
  t.is((error as RunError).signal, 'SIGTERM');
  await waitFor(() => !['7002', '7003', '7004'].some((n) => sleepers(box).has(n)));
  t.deepEqual([...sleepers(box).keys()], ['7001'], 'only the other exec’s process is left');
  t.false(exec.kill(), 'nothing to signal once it ended');
});

test('an exec’s timeout kills a process that changed its uid (setpriv, busybox su) with the command', async (t) => {
  await using box = await Sandbox.create({ image: 'host' });
  await box.exec(['sh', '-c', 'sleep 7101 >/dev/null 2>&1 &']);
  const started = Date.now();
  const result = await box.exec(['sh', '-c', `${asUser1000.join(' ')} sleep 7102 & busybox su -s /bin/sh -c 'sleep 7103' nobody & wait`], { timeout: '1s', reject: false });
  t.true(result.timedOut);
  t.is(result.signal, 'SIGKILL');
  t.true(Date.now() - started < 5000);
  await waitFor(() => !['7102', '7103'].some((n) => sleepers(box).has(n)));
  t.deepEqual([...sleepers(box).keys()], ['7101']);
});

test('abort reaches the process group on a terminal too (the command leads its own session there)', async (t) => {
  await using box = await Sandbox.create({ image: 'host' });
  const controller = new AbortController();
  // Ignoring SIGHUP, the uid-changed process would outlive the terminal's hang-up when the command dies.
  const exec = box.exec(['sh', '-c', `trap '' HUP; ${asUser1000.join(' ')} sleep 7202 & sleep 7203`], { tty: true, signal: controller.signal, reject: false });
  await waitFor(() => ['7202', '7203'].every((n) => sleepers(box).has(n)));
  controller.abort();
  const result = await exec.result;
  t.true(result.isCanceled);
  await waitFor(() => sleepers(box).size === 0);
  t.pass();
});
