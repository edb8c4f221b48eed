// SPDX-License-Identifier: Apache-2.0
// A bridged network for sandboxes in a user namespace (`userns: true` here, as root; the
// rootless cases run as nobody in user-mode-rootless.test.ts): pasta connects the sandbox's own
// network namespace. A published port answers on 127.0.0.1; the host's own addresses are out
// of reach unless an egress rule names them; egress rules hold against a test host; pasta
// and its files are gone after removal, after a failed start and after a crashed host.
import test from 'ava';
import { createServer, type Server, type Socket } from 'node:net';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, Sandbox, type SandboxOptions } from '../../src/index.js';
import { collectLeftoverUserModeNetworks, userModeDir } from '../../src/network/user-mode.js';
import { probeRootfs, withFailStage } from '../helpers/sandbox.js';
import { STAGES } from '../../src/native/stages.js';
import { freePort, hostWithSandbox, serveAndFetch, testHost, testHostServingTwoPorts } from './helpers.js';

let image: string;

test.before(async () => {
  image = await probeRootfs();
});

// Every pasta process on the host whose pid file is in a user-mode network directory of this
// process (or of `owner`).
function pastaProcesses(owner = `${process.pid}x`): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (argv[0]?.endsWith('pasta') && argv.some((arg) => arg.startsWith(join(userModeDir(), owner)))) found.push(Number(entry));
    } catch {
      // Gone.
    }
  }
  return found;
}

function userModeDirs(): string[] {
  try {
    return readdirSync(userModeDir()).filter((id) => id.startsWith(`${process.pid}x`));
  } catch {
    return [];
  }
}

// An HTTP/1.0 answer on the host, also to a client that half-closes after its request (nc does).
function serveOnHost(t: { teardown(fn: () => unknown): void }, port: number, body: string, host = '0.0.0.0'): Promise<Server> {
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.once('data', () => socket.end(`HTTP/1.0 200 OK\r\ncontent-length: ${body.length}\r\n\r\n${body}`));
  });
  t.teardown(() => {
    sockets.forEach((socket) => socket.destroy());
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return new Promise((resolve) => server.listen(port, host, () => resolve(server)));
}

// An HTTP GET from inside the sandbox with busybox nc: the body, or nc's complaint. The request
// side stays open for a second: pasta (2023) drops a connection whose client half-closes
// before the answer has come back.
const get = (address: string, port: number) => ['sh', '-c', `(printf 'GET / HTTP/1.0\\r\\n\\r\\n'; sleep 1) | nc -w 3 ${address} ${port} 2>&1 | tail -n 1`];

const base = (): SandboxOptions => ({ image, userns: true, network: 'bridge', cgroup: false });

test.serial('a server in a user-namespace sandbox answers through a port published on 127.0.0.1', async (t) => {
  const port = await freePort();
  const box = await Sandbox.create({ ...base(), publish: [{ host: port, container: 8080 }] });
  t.teardown(() => box.remove());
  const body = await serveAndFetch(box, port, 'hello from pasta\n');
  t.is(body, 'hello from pasta\n');
  // The sandbox has an eth0 with a default route, and the hosts file names it.
  const view = await box.exec(['sh', '-c', 'ip -4 route show default | cut -d" " -f1-5; grep -c "$(hostname)" /etc/hosts; cat /etc/resolv.conf']);
  t.regex(view.stdout, /^default via [0-9.]+ dev eth0/);
  t.regex(view.stdout, /\n1\n/);
  t.regex(view.stdout, /nameserver 169\.254\.1\.1/);
  t.truthy(box.address);
  t.is(pastaProcesses().length, 1);
});

test.serial('the host is out of reach unless an egress rule names it, and 127.0.0.1 is the sandbox\'s own', async (t) => {
  // A host address of the test's own (the host side of a test host's veth), and a server on
  // every host address.
  const host = await testHost(t);
  const port = await freePort();
  await serveOnHost(t, port, 'host service');
  const closed = await run({ ...base(), command: get(host.hostSide, port) });
  t.regex(closed.stdout, /No route to host|can't connect/i);
  const loopback = await run({ ...base(), command: get('127.0.0.1', port) });
  t.regex(loopback.stdout, /refused|can't connect/i);
  const allowed = await run({ ...base(), egress: { rules: [{ action: 'allow', cidr: host.hostSide, ports: [port], protocol: 'tcp' }] }, command: get(host.hostSide, port) });
  t.is(allowed.stdout.trim(), 'host service');
});

test.serial('egress rules: default deny with one allowed port of a test host', async (t) => {
  const host = await testHostServingTwoPorts(t);
  const both = ['sh', '-c', `${get(host.address, 8081)[2]}; ${get(host.address, 8082)[2]}`];
  // Without rules both answer, so a failure below is the rule's, not the route's.
  const open = await run({ ...base(), command: both });
  t.deepEqual(open.stdout.trim().split('\n'), ['allowed', 'denied']);
  const strict = await run({
    ...base(),
    egress: { default: 'deny', rules: [{ action: 'allow', cidr: `${host.address}/32`, ports: [8081], protocol: 'tcp' }] },
    command: both,
  });
  const [first, second] = strict.stdout.trim().split('\n');
  t.is(first, 'allowed');
  t.regex(second!, /No route to host|can't connect/i);
});

test.serial('pasta and the files are gone after removal and after a start that fails after the network is up', async (t) => {
  const box = await Sandbox.create(base());
  t.is(pastaProcesses().length, 1);
  t.is(userModeDirs().length, 1);
  await box.remove();
  t.deepEqual(pastaProcesses(), []);
  t.deepEqual(userModeDirs(), []);

  const stage = STAGES.indexOf('bind-mount');
  const error = await t.throwsAsync(run(withFailStage({ ...base(), command: ['true'] }, stage)));
  t.regex(error!.message, /bind-mount/);
  t.deepEqual(pastaProcesses(), []);
  t.deepEqual(userModeDirs(), []);
});

test.serial('a taken host port and an unknown network are refused clearly', async (t) => {
  const port = await freePort();
  await serveOnHost(t, port, 'taken', '127.0.0.1');
  const taken = await t.throwsAsync(run({ ...base(), publish: [{ host: port, container: 80 }], command: ['true'] }));
  t.is((taken as { code?: string }).code, 'ERR_PORT_IN_USE');
  t.regex(taken!.message, new RegExp(`${port}`));
  const unknown = await t.throwsAsync(run({ ...base(), network: 'no-such-network-here', command: ['true'] }));
  t.is((unknown as { code?: string }).code, 'ERR_NETWORK_NOT_FOUND');
  t.deepEqual(pastaProcesses(), []);
  t.deepEqual(userModeDirs(), []);
});

test.serial('the pasta of a crashed host is stopped by the next one', async (t) => {
  // A host process that starts a sandbox on a user-mode network and is then killed with SIGKILL.
  const { id, crash } = await hostWithSandbox(t, base());
  const dir = join(userModeDir(), id);
  t.true(existsSync(dir));
  const pasta = pastaProcesses('').filter((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir));
  t.is(pasta.length, 1);
  await crash();
  // The sandbox died with its host; pasta did not.
  t.true(existsSync(`/proc/${pasta[0]}`));
  t.true(collectLeftoverUserModeNetworks() >= 1);
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.false(existsSync(`/proc/${pasta[0]}/cmdline`) && readFileSync(`/proc/${pasta[0]}/cmdline`, 'utf8').includes(dir));
  t.false(existsSync(dir));
});
