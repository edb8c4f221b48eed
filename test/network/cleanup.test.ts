// SPDX-License-Identifier: Apache-2.0
// Nothing is left after release (no veth, nft rule, lease, namespace or file), nor after a failed
// attach; what a SIGKILLed host left is collected by the next collectLeftoverNetworks().
import test from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { attachSandbox, collectLeftoverNetworks, createNetwork, listNetworks, removeNetwork } from '../../src/index.js';
import { bridgePorts, fetchFrom, freePort, newId, serveIn, testNetwork, tracesOf } from './helpers.js';

const fixture = new URL('../fixtures/network-attach.ts', import.meta.url).pathname;

test.serial('release removes the veth, the nft rules, the lease, the namespace and the files', async (t) => {
  const network = await testNetwork(t);
  const id = newId();
  const port = await freePort();
  const box = await attachSandbox({ id, name: 'gone', network: network.name, publish: [{ host: port, container: 80 }], egress: { default: 'deny' } });
  t.teardown(() => box.release());
  t.is(bridgePorts(network.bridge).length, 1);
  const before = tracesOf(id);
  // Its chains, its map elements, the namespace, the lease, its member entry and files.
  for (const expected of ['nft inet: chain egress-', 'nft inet: chain host-', 'nft bridge: chain port-', '/run/nsbox/netns/', 'lease ', '/members/', '/files/'])
    t.true(before.some((line) => line.includes(expected)), `${expected} in ${before.join('\n')}`);

  await box.release();
  await box.release(); // idempotent
  t.deepEqual(tracesOf(id), []);
  t.deepEqual(bridgePorts(network.bridge), []);
  t.false(existsSync(box.netnsPath));
  t.truthy((await fetchFrom(undefined, `http://127.0.0.1:${port}/`, { timeoutMs: 1000 })).error);
});

test.serial('a failed attach leaves nothing behind', async (t) => {
  const network = await testNetwork(t);
  const id = newId();
  const port = await freePort();
  const first = await attachSandbox({ id: newId(), name: 'first', network: network.name, publish: [{ host: port, container: 80 }] });
  t.teardown(() => first.release());
  // Fails at the port, after nothing; then with a clashing name, after the port was held.
  await t.throwsAsync(attachSandbox({ id, name: 'second', network: network.name, publish: [{ host: port, container: 80 }] }), { code: 'ERR_PORT_IN_USE' });
  t.deepEqual(tracesOf(id), []);
  const other = await freePort();
  await t.throwsAsync(attachSandbox({ id, name: 'first', network: network.name, publish: [{ host: other, container: 80 }] }), { code: 'ERR_INVALID_OPTION' });
  t.deepEqual(tracesOf(id), []);
  t.is(bridgePorts(network.bridge).length, 1);
  // The port held during the failed attempt is free again.
  const retry = await attachSandbox({ id, name: 'second', network: network.name, publish: [{ host: other, container: 80 }] });
  await retry.release();
});

test.serial('what a SIGKILLed host left is collected: rules, veth, lease, namespace, member, port', async (t) => {
  const network = await testNetwork(t);
  const port = await freePort();
  const peer = await attachSandbox({ id: newId(), name: 'survivor', network: network.name });
  t.teardown(() => peer.release());
  const child = spawn(process.execPath, ['--import', 'tsx', fixture, network.name, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve(out.split('\n')[0]!);
    });
    child.once('exit', (code) => reject(new Error(`fixture exited ${code}`)));
  });
  const crashed = JSON.parse(line) as { id: string; netnsPath: string; address: string };
  await serveIn(t, crashed.netnsPath, 80, 'still here');
  t.deepEqual(await fetchFrom(undefined, `http://127.0.0.1:${port}/`), { body: 'still here' });
  t.true(readFileSync(peer.hostsFile, 'utf8').includes(`${crashed.address}\tcrashed\n`));

  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('exit', resolve));
  t.not(tracesOf(crashed.id).length, 0);
  t.is(bridgePorts(network.bridge).length, 2);

  t.true((await collectLeftoverNetworks()) >= 1);
  t.deepEqual(tracesOf(crashed.id), []);
  t.is(bridgePorts(network.bridge).length, 1);
  t.false(readFileSync(peer.hostsFile, 'utf8').includes('crashed'));
  t.deepEqual((await listNetworks()).find((n) => n.name === network.name)?.sandboxes, [peer.netnsPath.split('/').pop()]);
  // Its host port and its name can be used again.
  const again = await attachSandbox({ id: newId(), name: 'crashed', network: network.name, publish: [{ host: port, container: 80 }] });
  await again.release();
});

test.serial('sandboxes attached and released all at once get distinct addresses, complete hosts files, and leave nothing', async (t) => {
  const network = await testNetwork(t);
  const ids = Array.from({ length: 12 }, () => newId());
  const boxes = await Promise.all(ids.map((id, i) => attachSandbox({ id, name: `box${i}`, network: network.name })));
  t.teardown(() => Promise.all(boxes.map((box) => box.release())));
  t.is(new Set(boxes.map((box) => box.address)).size, ids.length);
  t.is(bridgePorts(network.bridge).length, ids.length);
  for (const box of boxes) {
    const hosts = readFileSync(box.hostsFile, 'utf8');
    for (const [i, other] of boxes.entries()) t.true(hosts.includes(`${other.address}\tbox${i}\n`));
  }
  await Promise.all(boxes.map((box) => box.release()));
  t.deepEqual(ids.flatMap((id) => tracesOf(id)), []);
  t.deepEqual(bridgePorts(network.bridge), []);
});

test.serial('a host that exits without releasing leaves nothing either', async (t) => {
  const network = await testNetwork(t);
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', fixture, network.name, String(port), 'exit'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  const code = await new Promise((resolve) => child.once('exit', resolve));
  t.is(code, 0);
  const exited = JSON.parse(out.split('\n')[0]!) as { id: string };
  t.deepEqual(tracesOf(exited.id), []);
  t.deepEqual(bridgePorts(network.bridge), []);
});

test.serial('removeNetwork removes the bridge, its nft elements, its leases and its files', async (t) => {
  const network = await createNetwork(`t${process.pid}-rm`);
  t.teardown(() => removeNetwork(network.name).catch(() => undefined)); // if the test fails before
  const box = await attachSandbox({ id: newId(), name: 'box', network: network.name });
  await box.release();
  t.true(existsSync(`/sys/class/net/${network.bridge}`));
  await removeNetwork(network.name);
  t.false(existsSync(`/sys/class/net/${network.bridge}`));
  const ruleset = execFileSync('/usr/sbin/nft', ['list', 'table', 'inet', 'nsbox'], { encoding: 'utf8' });
  t.false(ruleset.includes(network.bridge));
  t.false(ruleset.includes(network.subnet));
  t.false(existsSync(`/run/nsbox/networks/ipam/${network.name}`));
  t.false(existsSync(`/run/nsbox/networks/${network.name}`));
  t.false((await listNetworks()).some((n) => n.name === network.name));
});
