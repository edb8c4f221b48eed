// SPDX-License-Identifier: Apache-2.0
// Attempts to leave network 'none': host loopback and addresses, unix sockets, raw/packet/vsock, netlink, audit, a neighbour.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { run } from '../../src/index.js';
import { assertAllBlocked, assertBlocked, assertNoEscape, attack, attackOptions, hostAbstractServer, hostTcpServer, hostUdpServer, neighbour, SECCOMP, verdictOf } from './attack.js';

/** What the host's network looks like: interfaces with their addresses, and the routes. */
function hostNetwork(): string {
  const interfaces = Object.entries(networkInterfaces()).map(([name, addrs]) => `${name}:${(addrs ?? []).map((a) => `${a.address}/${a.netmask}`).sort().join(',')}`);
  return [...interfaces.sort(), readFileSync('/proc/net/route', 'utf8'), readFileSync('/proc/net/ipv6_route', 'utf8')].join('\n');
}

test('the host’s loopback services are unreachable over TCP (127.0.0.1)', async (t) => {
  const server = await hostTcpServer(t, '127.0.0.1');
  const attempt = await attack(['connect', '127.0.0.1', String(server.port)]);
  assertAllBlocked(t, attempt, ['ECONNREFUSED']);
  t.is(server.connections(), 0);
});

test('the host’s loopback services are unreachable over TCP (::1)', async (t) => {
  let server;
  try {
    server = await hostTcpServer(t, '::1');
  } catch (error) {
    t.log(`no IPv6 loopback on the host: ${String(error)}`);
    return t.pass();
  }
  const attempt = await attack(['connect', '::1', String(server.port)]);
  assertAllBlocked(t, attempt, ['ECONNREFUSED', 'EADDRNOTAVAIL', 'ENETUNREACH']);
  t.is(server.connections(), 0);
});

test('the host’s own addresses are unreachable', async (t) => {
  const external = Object.values(networkInterfaces()).flat().find((a) => a && a.family === 'IPv4' && !a.internal);
  if (!external) {
    t.log('the host has no non-loopback IPv4 address');
    return t.pass();
  }
  const server = await hostTcpServer(t, '0.0.0.0');
  const attempt = await attack(['connect', external.address, String(server.port)]);
  assertAllBlocked(t, attempt, ['ENETUNREACH', 'EHOSTUNREACH', 'ETIMEDOUT']);
  t.is(server.connections(), 0);
});

test('UDP datagrams to the host’s loopback never arrive', async (t) => {
  const server = await hostUdpServer(t, '127.0.0.1');
  const attempt = await attack(['udp-send', '127.0.0.1', String(server.port), 'nsbox-escape']);
  assertNoEscape(t, attempt);
  t.regex(verdictOf(attempt, `udp-send 127.0.0.1 ${server.port}`)?.line ?? '', /^contained .*own network|^blocked/);
  await new Promise((resolve) => setTimeout(resolve, 300));
  t.is(server.connections(), 0);
});

test('the host’s abstract unix sockets are unreachable', async (t) => {
  const server = await hostAbstractServer(t);
  const attempt = await attack(['connect-unix', `@${server.name}`]);
  assertAllBlocked(t, attempt, ['ECONNREFUSED']);
  t.is(server.connections(), 0);
});

test('/proc/net lists none of the host’s sockets', async (t) => {
  const tcp = await hostTcpServer(t, '127.0.0.1');
  const unix = await hostAbstractServer(t);
  const port = `:${tcp.port.toString(16).toUpperCase().padStart(4, '0')} `;
  t.true(readFileSync('/proc/net/tcp', 'utf8').includes(port), 'the host lists its own server');
  const { image } = await attackOptions();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6', '/proc/net/unix']) {
    const inside = await run({ image, command: ['probe', 'cat', file] });
    t.false(inside.stdout.includes(port), `${file} shows the host's server`);
    t.false(inside.stdout.includes(unix.name), `${file} shows the host's unix socket`);
  }
});

test('raw IP sockets are refused', async (t) => {
  assertAllBlocked(t, await attack(['raw-socket']), ['EPERM']);
});

test('packet sockets (sniffing, link-layer injection) are refused', async (t) => {
  assertAllBlocked(t, await attack(['packet-socket']), ['EPERM']);
});

test('vsock sockets (to the hypervisor, outside any network namespace) are refused', async (t) => {
  // Only socket() is tried: nothing is sent anywhere.
  assertAllBlocked(t, await attack(['vsock']), ['EAFNOSUPPORT', ...SECCOMP]);
});

test('rtnetlink cannot add addresses, routes or links, and the host’s network stays as it was', async (t) => {
  const before = hostNetwork();
  const attempt = await attack(['netlink-route']);
  assertAllBlocked(t, attempt, ['EPERM']);
  assertBlocked(t, attempt, 'netlink RTM_NEWADDR 10.123.0.1/24 lo', ['EPERM']);
  t.is(hostNetwork(), before);
});

test('interface ioctls cannot change loopback, and the host’s network stays as it was', async (t) => {
  const before = hostNetwork();
  assertAllBlocked(t, await attack(['if-ioctl']), ['EPERM']);
  t.is(hostNetwork(), before);
});

test('the host’s audit log cannot be written (AUDIT_USER over netlink)', async (t) => {
  // With CAP_AUDIT_WRITE (Docker's default set keeps it; Podman's drops it) a workload forges
  // user records (logins, AVCs) in the host's audit trail whenever auditd runs.
  assertAllBlocked(t, await attack(['audit', 'type=USER_LOGIN msg=nsbox-forged-record']), ['EPERM', 'ECONNREFUSED', 'EPROTONOSUPPORT', ...SECCOMP]);
});

test('a sandbox cannot reach a concurrent sandbox’s loopback listener', async (t) => {
  const other = await neighbour(t);
  assertAllBlocked(t, await attack(['connect', '127.0.0.1', String(other.port)]), ['ECONNREFUSED']);
  t.true(other.alive());
  t.is(await other.stop(), 0);
});
