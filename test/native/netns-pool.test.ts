// SPDX-License-Identifier: Apache-2.0
// The pool of fresh network namespaces (src/netns-pool.ts): every sandbox still gets a namespace
// of its own that no one used before, and the pool holds at most two fds whatever the outcome.
import { readdirSync, readlinkSync } from 'node:fs';
import test from 'ava';
import { run } from '../../src/index.js';
import { isNetnsFd, probeRootfs, withFailStage } from '../helpers/sandbox.js';
import { stageNumber } from '../../src/native/stages.js';

let image: string;
test.before(async () => {
  image = await probeRootfs();
});

const netnsFds = () => readdirSync('/proc/self/fd').filter(isNetnsFd);
const ownNetns = ['sh', '-c', 'readlink /proc/self/ns/net; cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d " "'];

test.serial('each sandbox gets its own fresh network namespace with only loopback, also when started at once', async (t) => {
  const host = readlinkSync('/proc/self/ns/net');
  const sequential = [];
  for (let i = 0; i < 8; i++) sequential.push((await run({ image, command: ownNetns })).stdout);
  const concurrent = (await Promise.all(Array.from({ length: 6 }, () => run({ image, command: ownNetns })))).map((r) => r.stdout);
  const seen = new Set<string>();
  for (const stdout of [...sequential, ...concurrent]) {
    const [ns, ...interfaces] = stdout.trim().split('\n');
    t.regex(ns, /^net:\[\d+\]$/);
    t.not(ns, host);
    t.false(seen.has(ns), `namespace ${ns} was handed out twice`);
    seen.add(ns);
    t.deepEqual(interfaces, ['lo'], 'nothing but loopback: no one configured it before');
  }
});

test.serial('the pool holds at most two namespace fds after successes, failures, setup failures and host networking', async (t) => {
  const outcomes = [
    () => run({ image, command: ['true'] }),
    () => run({ image, command: ['sh', '-c', 'exit 3'], reject: false }),
    () => run(withFailStage({ image, command: ['true'] }, stageNumber('loopback'))).catch(() => {}),
    () => run(withFailStage({ image, command: ['true'] }, stageNumber('id-map'))).catch(() => {}),
    () => run({ image, command: ['true'], network: 'host' }),
    () => run({ image, command: ['true'], init: false, cgroup: false }),
  ];
  for (let i = 0; i < 48; i++) await outcomes[i % outcomes.length]();
  await Promise.all(Array.from({ length: 8 }, (_, i) => outcomes[i % outcomes.length]()));
  // Refills run on a worker thread after each start: let the last ones land.
  await new Promise((resolve) => setTimeout(resolve, 200));
  const held = netnsFds();
  t.true(held.length <= 2, `the process holds ${held.length} network namespace fds`);
  t.true(held.length > 0, 'the pool refilled after the runs');
});
