// SPDX-License-Identifier: Apache-2.0
// Egress rules on a bridged sandbox, against test hosts in namespaces this test makes: a denied
// destination is unreachable and an allowed one reachable; the host itself is closed unless a rule
// names it; networks do not reach each other.
import test from 'ava';
import { createServer } from 'node:http';
import { attachSandbox } from '../../src/index.js';
import { execFileSync } from 'node:child_process';
import { connectFrom, fetchFrom, freePort, newId, serveIn, testHost, testNetwork } from './helpers.js';

test.serial('default deny with an allow rule: only the allowed port of the test host answers', async (t) => {
  const host = await testHost(t);
  await serveIn(t, host.netns, 8081, 'allowed');
  await serveIn(t, host.netns, 8082, 'denied');
  const network = await testNetwork(t);
  const open = await attachSandbox({ id: newId(), name: 'open', network: network.name });
  t.teardown(() => open.release());
  const strict = await attachSandbox({
    id: newId(),
    name: 'strict',
    network: network.name,
    egress: { default: 'deny', rules: [{ action: 'allow', cidr: `${host.address}/32`, ports: [8081], protocol: 'tcp' }] },
  });
  t.teardown(() => strict.release());

  // Without rules both answer (so a failure below is the rule, not the route).
  t.deepEqual(await fetchFrom(open.netnsPath, `http://${host.address}:8081/`), { body: 'allowed' });
  t.deepEqual(await fetchFrom(open.netnsPath, `http://${host.address}:8082/`), { body: 'denied' });
  t.deepEqual(await fetchFrom(strict.netnsPath, `http://${host.address}:8081/`), { body: 'allowed' });
  t.is((await fetchFrom(strict.netnsPath, `http://${host.address}:8082/`, { timeoutMs: 1500 })).error, 'EHOSTUNREACH');
  // Default deny covers the network's other members too.
  await serveIn(t, open.netnsPath, 80, 'peer');
  t.is((await fetchFrom(strict.netnsPath, `http://${open.address}/`, { timeoutMs: 1500 })).error, 'EHOSTUNREACH');
  t.deepEqual(await fetchFrom(open.netnsPath, `http://${open.address}/`), { body: 'peer' });
});

test.serial('default allow with a deny rule: the denied CIDR and port are unreachable, the rest reachable', async (t) => {
  const host = await testHost(t);
  await serveIn(t, host.netns, 8081, 'allowed');
  await serveIn(t, host.netns, 8082, 'denied');
  const network = await testNetwork(t);
  const box = await attachSandbox({
    id: newId(),
    name: 'box',
    network: network.name,
    egress: { rules: [{ action: 'deny', cidr: '198.51.100.0/24', ports: ['8082-8090'] }] },
  });
  t.teardown(() => box.release());
  t.deepEqual(await fetchFrom(box.netnsPath, `http://${host.address}:8081/`), { body: 'allowed' });
  t.is((await fetchFrom(box.netnsPath, `http://${host.address}:8082/`, { timeoutMs: 1500 })).error, 'EHOSTUNREACH');
});

test.serial('the host is closed to sandboxes unless a rule names it', async (t) => {
  const network = await testNetwork(t);
  const plain = await attachSandbox({ id: newId(), name: 'plain', network: network.name });
  t.teardown(() => plain.release());
  // A host service on the bridge's address (the bridge exists once a sandbox joined).
  const port = await freePort();
  const server = createServer((_req, res) => res.end('host service'));
  await new Promise<void>((resolve) => server.listen({ host: network.gateway, port }, resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  t.deepEqual(await fetchFrom(undefined, `http://${plain.gateway}:${port}/`), { body: 'host service' });
  t.is((await fetchFrom(plain.netnsPath, `http://${plain.gateway}:${port}/`, { timeoutMs: 1500 })).error, 'EHOSTUNREACH');

  const trusted = await attachSandbox({
    id: newId(),
    name: 'trusted',
    network: network.name,
    egress: { default: 'allow', rules: [{ action: 'allow', cidr: network.gateway, ports: [port] }] },
  });
  t.teardown(() => trusted.release());
  t.deepEqual(await fetchFrom(trusted.netnsPath, `http://${trusted.gateway}:${port}/`), { body: 'host service' });
});

test.serial('a sandbox does not reach another network', async (t) => {
  const first = await testNetwork(t);
  const second = await testNetwork(t);
  const a = await attachSandbox({ id: newId(), name: 'a', network: first.name });
  t.teardown(() => a.release());
  const b = await attachSandbox({ id: newId(), name: 'b', network: second.name });
  t.teardown(() => b.release());
  await serveIn(t, a.netnsPath, 80, 'first network');
  t.deepEqual(await fetchFrom(a.netnsPath, `http://${a.address}/`), { body: 'first network' });
  t.is((await fetchFrom(b.netnsPath, `http://${a.address}/`, { timeoutMs: 1500 })).error, 'EHOSTUNREACH');
});

test.serial('a sandbox cannot escape its rules with another source address', async (t) => {
  const host = await testHost(t);
  await serveIn(t, host.netns, 8082, 'denied');
  const network = await testNetwork(t);
  const strict = await attachSandbox({ id: newId(), name: 'strict', network: network.name, egress: { default: 'deny' } });
  t.teardown(() => strict.release());
  t.is(await connectFrom(strict.netnsPath, host.address, 8082, strict.address), 'EHOSTUNREACH');
  // Root in the namespace (a sandbox never is: the namespace belongs to the host's user namespace)
  // adds an unused address of the subnet and sends from it: the bridge port drops every frame.
  const spoofed = network.subnet.replace(/\.0\/24$/, '.250');
  execFileSync('nsenter', [`--net=${strict.netnsPath}`, 'ip', 'addr', 'add', `${spoofed}/24`, 'dev', 'eth0']);
  t.is(await connectFrom(strict.netnsPath, host.address, 8082, spoofed), 'timeout');
});
