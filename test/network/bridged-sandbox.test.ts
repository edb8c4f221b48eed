// SPDX-License-Identifier: Apache-2.0
// Sandboxes on bridged networks through the public options (network, publish, egress): the child
// joins the prepared namespace itself. Every address is on this machine: 127.0.0.1, the test's
// own bridges, or its own test hosts.
import test from 'ava';
import { readlinkSync } from 'node:fs';
import { run, Sandbox, listNetworks, type SandboxOptions } from '../../src/index.js';
import { bridgePorts, freePort, testHost, testNetwork, tracesOf } from './helpers.js';

const httpServer = (port: number, body: string) => ['node', '-e', `require('http').createServer((q, s) => s.end(${JSON.stringify(body)})).listen(${port}, () => console.log('listening'))`];
const httpGet = (url: string) => ['node', '-e', `fetch(${JSON.stringify(url)}, { signal: AbortSignal.timeout(3000) }).then(async (r) => console.log(await r.text()), (e) => { console.log('failed: ' + (e.cause?.code ?? e.message)); process.exitCode = 1; })`];

// Resolves once the server listens. (It must not return the process: a SandboxProcess is a
// thenable, and an async function returning it would wait for the server to exit.)
async function listening(box: Sandbox, port: number, body: string): Promise<void> {
  const server = box.exec(httpServer(port, body));
  await new Promise<void>((resolve, reject) => {
    server.stdout.on('data', (chunk: Buffer) => chunk.toString().includes('listening') && resolve());
    server.result.then(() => reject(new Error('server exited')), reject);
  });
}

test.serial('an HTTP server in a sandbox answers through a published port on 127.0.0.1, and nothing is left after removal', async (t) => {
  const port = await freePort();
  const box = await Sandbox.create({ image: 'host', publish: [{ host: port, container: 8080 }] });
  t.regex(box.address!, /^10\.231\.\d+\.\d+$/);
  t.not(readlinkSync(`/proc/${box.pid}/ns/net`), readlinkSync('/proc/self/ns/net'));
  await listening(box, 8080, 'hello through the port');
  const response = await fetch(`http://127.0.0.1:${port}/`);
  t.is(await response.text(), 'hello through the port');
  const id = box.id;
  t.true(tracesOf(id).length > 0);
  await box.remove();
  t.deepEqual(tracesOf(id), [], 'no nft rule, netns, lease or record of it');
  t.false((await listNetworks()).some((network) => network.sandboxes.includes(id)));
  await t.throwsAsync(fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2000) }));
});

test.serial('two sandboxes on one network reach each other by name (the compose case)', async (t) => {
  const network = await testNetwork(t);
  await using db = await Sandbox.create({ image: 'host', network: network.name, hostname: 'db' });
  await using app = await Sandbox.create({ image: 'host', network: network.name, hostname: 'app' });
  await listening(db, 5432, 'rows from db');
  t.is((await app.exec(httpGet('http://db:5432/'))).stdout, 'rows from db\n');
  t.regex((await app.exec(['cat', '/etc/hosts'])).stdout, /\bdb\b/);
  // A one-shot run on the same network sees it too.
  t.is((await run({ image: 'host', network: network.name, command: httpGet('http://db:5432/') })).stdout, 'rows from db\n');
  t.deepEqual(bridgePorts(network.bridge).length, 2);
});

test.serial('egress rules: a denied destination is unreachable, an allowed one reachable, the host closed by default', async (t) => {
  const allowed = await testHost(t);
  const denied = await testHost(t);
  const network = await testNetwork(t);
  const serveOn = async (host: { netns: string }, body: string) => {
    const { spawn } = await import('node:child_process');
    const server = spawn('nsenter', [`--net=${host.netns}`, process.execPath, '-e', `require('http').createServer((q, s) => s.end(${JSON.stringify(body)})).listen(80, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    t.teardown(() => server.kill('SIGKILL'));
    await new Promise((resolve) => server.stdout.once('data', resolve));
  };
  await serveOn(allowed, 'allowed host');
  await serveOn(denied, 'denied host');
  const options: SandboxOptions = { image: 'host', network: network.name, egress: { default: 'deny', rules: [{ action: 'allow', cidr: `${allowed.address}/32`, ports: [80] }] }, reject: false };
  t.is((await run({ ...options, command: httpGet(`http://${allowed.address}/`) })).stdout, 'allowed host\n');
  const blocked = await run({ ...options, command: httpGet(`http://${denied.address}/`) });
  t.is(blocked.exitCode, 1);
  t.regex(blocked.stdout, /^failed: /);
  // Default allow still keeps the host's own addresses closed.
  const open = { image: 'host', network: network.name, egress: { default: 'allow' }, reject: false } as const;
  t.is((await run({ ...open, command: httpGet(`http://${denied.address}/`) })).stdout, 'denied host\n');
  const hostPort = await freePort();
  const { createServer } = await import('node:http');
  const hostServer = createServer((q, s) => s.end('host service')).listen(hostPort, '0.0.0.0');
  t.teardown(() => hostServer.close());
  const toHost = await run({ ...open, command: httpGet(`http://${network.gateway}:${hostPort}/`) });
  t.regex(toHost.stdout, /^failed: /, 'the host is not reachable from a bridged sandbox unless allowed');
});

test('bridged options are checked before anything starts', async (t) => {
  await t.throwsAsync(run({ image: 'host', command: ['true'], network: 'none', publish: [{ host: 1234, container: 80 }] }), { code: 'ERR_INVALID_OPTION', message: /bridged network/ });
  await t.throwsAsync(run({ image: 'host', command: ['true'], network: 'Bad Name!' }), { code: 'ERR_INVALID_OPTION' });
  await t.throwsAsync(run({ image: 'host', command: ['true'], publish: [{ host: 70000, container: 80 }] }), { code: 'ERR_INVALID_OPTION' });
  await t.throwsAsync(run({ image: 'host', command: ['true'], egress: { default: 'sometimes' } as never }), { code: 'ERR_INVALID_OPTION' });
  // In a user namespace too (user-mode.test.ts, rootless-named-network.test.ts), an unknown network is named.
  await t.throwsAsync(run({ image: 'host', command: ['true'], network: 'no-such-network-here', userns: true }), { code: 'ERR_NETWORK_NOT_FOUND', message: /no-such-network-here/ });
  await t.throwsAsync(run({ image: 'host', command: ['true'], network: 'no-such-network-here' }), { code: 'ERR_NETWORK_NOT_FOUND' });
});
