// SPDX-License-Identifier: Apache-2.0
// Published ports: a server in the sandbox's namespace answers on the host's 127.0.0.1, over TCP and UDP;
// a host port that is taken (by the host or another sandbox) is a clear ERR_PORT_IN_USE.
import test from 'ava';
import { createServer } from 'node:net';
import { attachSandbox, isSandboxError } from '../../src/index.js';
import { fetchFrom, freePort, newId, serveIn, testNetwork, udpAsk } from './helpers.js';

test.serial('an HTTP server in the sandbox answers through a port published on 127.0.0.1', async (t) => {
  const network = await testNetwork(t);
  const port = await freePort();
  const box = await attachSandbox({ id: newId(), name: 'web', network: network.name, publish: [{ host: port, container: 80 }] });
  t.teardown(() => box.release());
  t.deepEqual(box.publish, [{ host: port, container: 80, protocol: 'tcp', hostIp: '127.0.0.1' }]);
  await serveIn(t, box.netnsPath, 80, 'hello from the sandbox');
  t.deepEqual(await fetchFrom(undefined, `http://127.0.0.1:${port}/`), { body: 'hello from the sandbox' });
  // Not on other host addresses: it was published on 127.0.0.1 only.
  t.truthy((await fetchFrom(undefined, `http://${network.gateway}:${port}/`, { timeoutMs: 1000 })).error);

  await box.release();
  // Released: the port is free again for anyone.
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen({ host: '127.0.0.1', port }, resolve));
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

test.serial('a UDP port is published too', async (t) => {
  const network = await testNetwork(t);
  const port = await freePort();
  const box = await attachSandbox({ id: newId(), name: 'dns', network: network.name, publish: [{ host: port, container: 53, protocol: 'udp' }] });
  t.teardown(() => box.release());
  await serveIn(t, box.netnsPath, 53, 'echo', 'udp');
  t.is(await udpAsk(port, 'ping'), 'echo:ping');
});

test.serial('a host port a host service holds is ERR_PORT_IN_USE, and nothing is left behind', async (t) => {
  const network = await testNetwork(t);
  const port = await freePort();
  const service = createServer();
  await new Promise<void>((resolve) => service.listen({ host: '127.0.0.1', port }, resolve));
  t.teardown(() => new Promise<void>((resolve) => service.close(() => resolve())));
  const error = await t.throwsAsync(attachSandbox({ id: newId(), name: 'web', network: network.name, publish: [{ host: port, container: 80 }] }));
  t.true(isSandboxError(error));
  t.is((error as { code?: string }).code, 'ERR_PORT_IN_USE');
  t.regex(error!.message, new RegExp(`127\\.0\\.0\\.1:${port}/tcp is already in use`));
  // The failed attach removed its member entry: the name is free.
  const box = await attachSandbox({ id: newId(), name: 'web', network: network.name });
  t.teardown(() => box.release());
});

test.serial('a host port another sandbox publishes is ERR_PORT_IN_USE', async (t) => {
  const network = await testNetwork(t);
  const port = await freePort();
  const first = await attachSandbox({ id: newId(), name: 'one', network: network.name, publish: [{ host: port, container: 80 }] });
  t.teardown(() => first.release());
  const error = await t.throwsAsync(attachSandbox({ id: newId(), name: 'two', network: network.name, publish: [{ host: port, container: 8080 }] }));
  t.is((error as { code?: string }).code, 'ERR_PORT_IN_USE');
  // Publishing on every address (0.0.0.0) collides with 127.0.0.1 too.
  const any = await t.throwsAsync(attachSandbox({ id: newId(), name: 'three', network: network.name, publish: [{ host: port, container: 80, hostIp: '0.0.0.0' }] }));
  t.is((any as { code?: string }).code, 'ERR_PORT_IN_USE');
});

test.serial('a port published on 0.0.0.0 answers on every address of the host', async (t) => {
  const network = await testNetwork(t);
  const port = await freePort();
  const box = await attachSandbox({ id: newId(), name: 'web', network: network.name, publish: [{ host: port, container: 8080, hostIp: '0.0.0.0' }] });
  t.teardown(() => box.release());
  await serveIn(t, box.netnsPath, 8080, 'everywhere');
  t.deepEqual(await fetchFrom(undefined, `http://127.0.0.1:${port}/`), { body: 'everywhere' });
  t.deepEqual(await fetchFrom(undefined, `http://${network.gateway}:${port}/`), { body: 'everywhere' });
  // From a sandbox too, through the host's address (hairpin: the answer comes back the same way).
  const peer = await attachSandbox({ id: newId(), name: 'peer', network: network.name });
  t.teardown(() => peer.release());
  t.deepEqual(await fetchFrom(peer.netnsPath, `http://${network.gateway}:${port}/`), { body: 'everywhere' });
  t.deepEqual(await fetchFrom(box.netnsPath, `http://${network.gateway}:${port}/`), { body: 'everywhere' });
});
