// SPDX-License-Identifier: Apache-2.0
// Named networks for sandboxes in a user namespace: members are made inside the network
// keeper's user namespace and wired to its bridge. They reach each other by name, leave
// through the keeper (egress rules still hold), publish on 127.0.0.1, and nothing is left once
// the last member is gone: not the keeper, not a pasta. As root with `userns: true` here, and
// as nobody (the rootless case) at the end.
import test from 'ava';
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { run, Sandbox, type SandboxOptions } from '../../src/index.js';
import { userModeDir } from '../../src/network/user-mode.js';
import { membersDir } from '../../src/network/hosts.js';
import { NOBODY_GID, NOBODY_UID, runAsNobody } from '../helpers/capabilities.js';
import { probeRootfs } from '../helpers/sandbox.js';
import { freePort, hostWithSandbox, testHostServingTwoPorts, testNetwork } from './helpers.js';

let image: string;
test.before(async () => {
  image = await probeRootfs();
});

const get = (address: string, port: number, path = '/') => ['sh', '-c', `(printf 'GET ${path} HTTP/1.0\\r\\n\\r\\n'; sleep 1) | nc -w 3 ${address} ${port} 2>&1 | tail -n 1`];

// pasta processes whose pid file is in a user-mode directory of this process.
function ourPasta(): number[] {
  return readdirSync('/proc').filter((entry) => {
    try {
      return /^\d+$/.test(entry) && readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(join(userModeDir(), `${process.pid}x`));
    } catch {
      return false;
    }
  }).map(Number);
}

test.serial('members reach each other by name, one publishes on 127.0.0.1, and the keeper goes with the last member', async (t) => {
  const network = await testNetwork(t);
  const member = (name: string, extra: Partial<SandboxOptions> = {}): SandboxOptions => ({ image, userns: true, network: network.name, hostname: name, cgroup: false, ...extra });
  const db = await Sandbox.create(member('db'));
  t.teardown(() => db.remove());
  await db.writeFile('/tmp/index.html', 'from db\n');
  await db.exec(['httpd', '-p', '8080', '-h', '/tmp']);
  const port = await freePort();
  const app = await Sandbox.create(member('app', { publish: [{ host: port, container: 9090 }] }));
  t.teardown(() => app.remove());
  t.not(app.address, db.address);
  t.is((await app.exec(get('db', 8080, '/index.html'))).stdout, 'from db\n');
  await app.writeFile('/tmp/index.html', 'from app\n');
  await app.exec(['httpd', '-p', '9090', '-h', '/tmp']);
  let published = '';
  for (let attempt = 0; attempt < 50 && !published; attempt++) {
    published = await fetch(`http://127.0.0.1:${port}/index.html`).then((r) => r.text(), () => '');
    if (!published) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  t.is(published, 'from app\n');
  // Both members run (the keeper is nsbox's own, not listed); two pastas: the keeper's uplink
  // and app's published port.
  t.deepEqual(new Set(Sandbox.list()), new Set([db, app]));
  t.is(ourPasta().length, 2);
  await app.remove();
  await db.remove();
  t.deepEqual(Sandbox.list(), []);
  t.deepEqual(ourPasta(), []);
  t.deepEqual(readdirSync(membersDir(network.name)), []);
});

test.serial('a member leaves through the keeper: its egress rules hold and the host stays closed', async (t) => {
  const host = await testHostServingTwoPorts(t);
  const network = await testNetwork(t);
  const base: SandboxOptions = { image, userns: true, network: network.name, cgroup: false };
  const open = await run({ ...base, command: ['sh', '-c', `${get(host.address, 8081, '/index.html')[2]}; ${get(host.address, 8082, '/index.html')[2]}`] });
  t.deepEqual(open.stdout.trim().split('\n'), ['allowed', 'denied']);
  const strict = await run({
    ...base,
    egress: { default: 'deny', rules: [{ action: 'allow', cidr: host.address, ports: [8081] }] },
    command: ['sh', '-c', `${get(host.address, 8081, '/index.html')[2]}; ${get(host.address, 8082, '/index.html')[2]}; ${get(host.hostSide, 8081)[2]}`],
  });
  const [allowed, denied, hostSide] = strict.stdout.trim().split('\n');
  t.is(allowed, 'allowed');
  t.regex(denied!, /No route to host/);
  t.regex(hostSide!, /No route to host/);
  t.deepEqual(ourPasta(), []);
});

test.serial('publishing from a member on an address other than loopback is refused, naming it', async (t) => {
  const network = await testNetwork(t);
  const error = await t.throwsAsync(run({ image, userns: true, network: network.name, cgroup: false, publish: [{ host: await freePort(), container: 80, hostIp: '0.0.0.0' }], command: ['true'] }));
  t.is((error as { code?: string }).code, 'ERR_UNSUPPORTED');
  t.regex(error!.message, /0\.0\.0\.0/);
  t.deepEqual(Sandbox.list(), []);
  t.deepEqual(ourPasta(), []);
});

test.serial('rootless: nobody runs the compose case (a named network, reach by name, a published port)', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'nsbox-rootless-compose-'));
  chmodSync(home, 0o777);
  t.teardown(() => rmSync(home, { recursive: true, force: true }));
  const rootfs = join(home, 'rootfs');
  await promisify(execFile)('cp', ['-a', image, rootfs]);
  await promisify(execFile)('chown', ['-R', `${NOBODY_UID}:${NOBODY_GID}`, rootfs]);
  const hostPort = await freePort();
  // Debian's /dev/net/tun is 0666; this machine's is 0600: a node of the default mode, in a
  // private mount namespace.
  const setup = 'mount -t tmpfs -o mode=755 tmpfs /dev/net && mknod -m 666 /dev/net/tun c 10 200 && exec "$@"';
  const fixture = new URL('../fixtures/rootless-compose.ts', import.meta.url).pathname;
  const argv = ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', setup, 'sh', ...runAsNobody([process.execPath, '--import', 'tsx', fixture, JSON.stringify({ image: rootfs, network: `rc${process.pid % 100000}`, hostPort })])];
  const { stdout } = await promisify(execFile)(argv[0]!, argv.slice(1), {
    env: { PATH: process.env.PATH, NSBOX_HOME: join(home, 'state'), NSBOX_RUN_DIR: join(home, 'run'), HOME: home, TSX_TSCONFIG_PATH: undefined },
    timeout: 90_000,
  });
  const outcome = JSON.parse(stdout) as { ok: boolean; message?: string; published?: string; byName?: string; uid?: string; sandboxesLeft?: number };
  t.true(outcome.ok, outcome.message);
  t.is(outcome.published, 'from app\n');
  t.is(outcome.byName, 'from db\n');
  t.is(outcome.uid, '0\n');
  t.is(outcome.sandboxesLeft, 0);
});

test.serial('after a host crash, its members\' names are free again and the keeper\'s pasta is stopped', async (t) => {
  const network = await testNetwork(t);
  const { id, crash } = await hostWithSandbox(t, { image, userns: true, network: network.name, hostname: 'db', cgroup: false });
  const owner = `${id.split('x')[0]}x`;
  const pastaOf = () => readdirSync('/proc').filter((entry) => {
    try {
      return /^\d+$/.test(entry) && readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(join(userModeDir(), owner));
    } catch {
      return false;
    }
  });
  t.is(pastaOf().length, 1, "the keeper's uplink");
  await crash();
  // The name the dead host's member had is free, and starting a member here collects its leftovers.
  const db = await Sandbox.create({ image, userns: true, network: network.name, hostname: 'db', cgroup: false });
  t.teardown(() => db.remove());
  t.is((await db.exec(['hostname'])).stdout, 'db\n');
  await new Promise((resolve) => setTimeout(resolve, 300));
  t.deepEqual(pastaOf(), []);
  t.false(readdirSync(membersDir(network.name)).some((file) => file.startsWith(owner)));
});

test.serial('members coming and going while others start: every one gets its keeper, none is left', async (t) => {
  const network = await testNetwork(t);
  // Staggered, so that last members' releases (taking the keeper down) meet new members' starts.
  const runs = Array.from({ length: 10 }, (_, i) =>
    new Promise((resolve) => setTimeout(resolve, (i % 5) * 40 + Math.floor(i / 5) * 150)).then(() =>
      run({ image, userns: true, network: network.name, cgroup: false, command: ['sh', '-c', 'ip -4 addr show eth0 | grep -c inet'] }),
    ),
  );
  for (const result of await Promise.all(runs)) t.is(result.stdout, '1\n');
  t.deepEqual(Sandbox.list(), []);
  t.deepEqual(ourPasta(), []);
  t.deepEqual(readdirSync(membersDir(network.name)), []);
});

test.serial('a keeper killed from outside is replaced: the next member gets a working network', async (t) => {
  const network = await testNetwork(t);
  const member = (name: string): SandboxOptions => ({ image, userns: true, network: network.name, hostname: name, cgroup: false });
  const first = await Sandbox.create(member('first'));
  t.teardown(() => first.remove());
  // The keeper is the sandbox its pasta (the only one of this process here) serves.
  const [pasta] = ourPasta();
  const keeperPid = Number(/--netns\0\/proc\/(\d+)\/ns\/net/.exec(readFileSync(`/proc/${pasta}/cmdline`, 'utf8'))![1]);
  process.kill(keeperPid, 'SIGKILL');
  await new Promise((resolve) => setTimeout(resolve, 200));
  const second = await Sandbox.create(member('second'));
  t.teardown(() => second.remove());
  await second.writeFile('/tmp/index.html', 'from second\n');
  await second.exec(['httpd', '-p', '8080', '-h', '/tmp']);
  const third = await run({ ...member('third'), command: get('second', 8080, '/index.html') });
  t.is(third.stdout, 'from second\n');
});
