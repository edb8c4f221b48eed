// SPDX-License-Identifier: Apache-2.0
// Sandboxes on one network reach each other by name through the hosts file nsbox keeps for each,
// which follows members joining and leaving in place (a sandbox sees it through a bind mount).
import test from 'ava';
import { readFileSync, statSync } from 'node:fs';
import { attachSandbox, listNetworks, removeNetwork } from '../../src/index.js';
import { fetchFrom, newId, serveIn, testNetwork } from './helpers.js';

test.serial('two sandboxes on one network talk by name', async (t) => {
  const network = await testNetwork(t);
  const db = await attachSandbox({ id: newId(), name: 'db', network: network.name });
  t.teardown(() => db.release());
  const app = await attachSandbox({ id: newId(), name: 'app', network: network.name });
  t.teardown(() => app.release());
  t.not(db.address, app.address);
  t.is(app.gateway, network.gateway);

  const hosts = readFileSync(app.hostsFile, 'utf8');
  t.true(hosts.includes(`${db.address}\tdb\n`));
  t.true(hosts.includes(`${app.address}\tapp\n`));
  t.is(readFileSync(db.hostsFile, 'utf8'), hosts);
  t.regex(readFileSync(app.resolvConf, 'utf8'), /^nameserver \d+\.\d+\.\d+\.\d+$/m);

  await serveIn(t, db.netnsPath, 5432, 'db answers');
  // As the sandbox will: its hosts file and resolv.conf bound over /etc's, in its network namespace.
  t.deepEqual(await fetchFrom(app.netnsPath, 'http://db:5432/', { files: { hosts: app.hostsFile, resolv: app.resolvConf } }), { body: 'db answers' });
  t.deepEqual((await listNetworks()).find((n) => n.name === network.name)?.sandboxes.sort(), [db, app].map((a) => a.netnsPath.split('/').pop()!).sort());
});

test.serial('hosts files follow members in place; a name is unique on its network', async (t) => {
  const network = await testNetwork(t);
  const one = await attachSandbox({ id: newId(), name: 'one', network: network.name });
  t.teardown(() => one.release());
  const inode = statSync(one.hostsFile).ino;
  t.false(readFileSync(one.hostsFile, 'utf8').includes('\ttwo\n'));

  const two = await attachSandbox({ id: newId(), name: 'two', network: network.name });
  t.true(readFileSync(one.hostsFile, 'utf8').includes(`${two.address}\ttwo\n`));

  const clash = await t.throwsAsync(attachSandbox({ id: newId(), name: 'two', network: network.name }));
  t.is((clash as { code?: string }).code, 'ERR_INVALID_OPTION');
  t.regex(clash!.message, /name "two" is already used/);

  await two.release();
  t.false(readFileSync(one.hostsFile, 'utf8').includes('\ttwo\n'));
  t.is(statSync(one.hostsFile).ino, inode);
});

test.serial('without a network name, sandboxes join nsbox0, defined on first use', async (t) => {
  const existed = (await listNetworks()).some((n) => n.name === 'nsbox0');
  const box = await attachSandbox({ id: newId(), name: `default-${process.pid}` });
  t.teardown(async () => {
    await box.release();
    // Leave the machine as it was: only a network this test defined goes.
    if (!existed) await removeNetwork('nsbox0');
  });
  t.is(box.network, 'nsbox0');
  const network = (await listNetworks()).find((n) => n.name === 'nsbox0')!;
  t.is(network.bridge, 'nsbox0');
  t.true(network.sandboxes.includes(box.netnsPath.split('/').pop()!));
  t.regex(network.subnet, /^10\.231\.\d+\.0\/24$/);
});
