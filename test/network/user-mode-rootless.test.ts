// SPDX-License-Identifier: Apache-2.0
// Rootless bridged networking: nobody starts a sandbox on a user-mode network (pasta). Each
// case runs the fixture in a private mount namespace of its own, where /dev/net/tun is a node
// with the mode the case needs (Debian's default is 0666; this test machine's own is 0600),
// and /etc/resolv.conf points at a test DNS server on the host's 127.0.0.1.
import test from 'ava';
import { execFile, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { NOBODY_GID, NOBODY_UID, runAsNobody } from '../helpers/capabilities.js';
import { probeRootfs } from '../helpers/sandbox.js';
import { freePort, testHost } from './helpers.js';

const fixture = new URL('../fixtures/user-mode-rootless.ts', import.meta.url).pathname;
const dnsServer = new URL('../fixtures/dns-server.cjs', import.meta.url).pathname;
let image: string;
let home: string;

test.before(async () => {
  home = mkdtempSync(join(tmpdir(), 'nsbox-user-mode-'));
  chmodSync(home, 0o777);
  // The root the sandbox's /etc/hosts and /etc/resolv.conf are bound into belongs to the user,
  // as an image unpacked by that user would (the shared probe rootfs belongs to root, and the
  // sandbox's root, nobody on the host, may not create files in its /etc).
  image = join(home, 'rootfs');
  await promisify(execFile)('cp', ['-a', await probeRootfs(), image]);
  await promisify(execFile)('chown', ['-R', `${NOBODY_UID}:${NOBODY_GID}`, image]);
  writeFileSync(join(home, 'resolv.conf'), 'nameserver 127.0.0.1\n');
});
test.after.always(() => {
  rmSync(home, { recursive: true, force: true });
});

interface Outcome {
  ok: boolean;
  code?: string;
  message?: string;
  fetched?: string;
  probe?: string;
}

async function asNobody(tunMode: '600' | '666', input: object): Promise<Outcome> {
  const setup = [
    'mount -t tmpfs -o mode=755 tmpfs /dev/net',
    `mknod -m ${tunMode} /dev/net/tun c 10 200`,
    `mount --bind ${join(home, 'resolv.conf')} /etc/resolv.conf`,
    'exec "$@"',
  ].join(' && ');
  const argv = ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', setup, 'sh', ...runAsNobody([process.execPath, '--import', 'tsx', fixture, JSON.stringify(input)])];
  const { stdout } = await promisify(execFile)(argv[0]!, argv.slice(1), {
    env: { PATH: process.env.PATH, NSBOX_HOME: join(home, 'state'), NSBOX_RUN_DIR: join(home, 'run'), HOME: home, TSX_TSCONFIG_PATH: undefined },
    cwd: process.cwd(),
    timeout: 60_000,
  });
  return JSON.parse(stdout) as Outcome;
}

function leftovers(): string[] {
  const dir = join(home, 'run');
  const pasta = readdirSync('/proc').filter((entry) => {
    try {
      return /^\d+$/.test(entry) && readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(dir);
    } catch {
      return false;
    }
  });
  let dirs: string[] = [];
  try {
    dirs = readdirSync(join(dir, 'user-net'));
  } catch {
    // Never made.
  }
  return [...pasta.map((pid) => `process ${pid}`), ...dirs.map((d) => `dir ${d}`)];
}

test.serial('rootless: a published port, DNS through pasta, egress to an allowed host address only', async (t) => {
  const host = await testHost(t);
  const open = await freePort();
  const closed = await freePort();
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.once('data', () => socket.end('HTTP/1.0 200 OK\r\n\r\nhost service'));
  });
  await new Promise<void>((resolve) => server.listen(open, '0.0.0.0', () => resolve()));
  const other = createServer((socket) => socket.end('HTTP/1.0 200 OK\r\n\r\nshould not be reached'));
  await new Promise<void>((resolve) => other.listen(closed, '0.0.0.0', () => resolve()));
  t.teardown(() => {
    sockets.forEach((s) => s.destroy());
    server.close();
    other.close();
  });
  const dns = spawn(process.execPath, [dnsServer, '127.0.0.1:53', 'db.test=198.51.100.77']);
  t.teardown(() => {
    dns.kill('SIGKILL');
  });
  await new Promise<void>((resolve, reject) => {
    dns.stdout!.once('data', () => resolve());
    dns.once('exit', (code) => reject(new Error(`the test DNS server exited: ${code}`)));
  });

  const hostPort = await freePort();
  const get = (port: number) => `(printf 'GET / HTTP/1.0\\r\\n\\r\\n'; sleep 1) | nc -w 3 ${host.hostSide} ${port} 2>&1 | tail -n 1`;
  const outcome = await asNobody('666', {
    options: { image, network: 'bridge', publish: [{ host: hostPort, container: 8080 }], egress: { rules: [{ action: 'allow', cidr: host.hostSide, ports: [open] }] } },
    hostPort,
    probe: `nslookup db.test 2>&1 | grep -v 169.254 | grep '^Address' || echo no answer; ${get(open)}; echo; ${get(closed)}`,
  });
  t.true(outcome.ok, outcome.message);
  t.is(outcome.fetched, 'hello rootless\n');
  const [resolved, reached, refused] = outcome.probe!.trim().split('\n');
  t.is(resolved, 'Address: 198.51.100.77');
  t.is(reached, 'host service');
  t.regex(refused!, /No route to host/);
  t.deepEqual(leftovers(), []);
});

test.serial('rootless: without a usable /dev/net/tun the error says so, and nothing is left', async (t) => {
  const outcome = await asNobody('600', { options: { image, network: 'bridge' }, hostPort: 1, probe: 'true' });
  t.false(outcome.ok);
  t.is(outcome.code, 'ERR_UNSUPPORTED');
  t.regex(outcome.message!, /\/dev\/net\/tun/);
  t.deepEqual(leftovers(), []);
});
