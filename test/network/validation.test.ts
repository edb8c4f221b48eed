// SPDX-License-Identifier: Apache-2.0
// Bad network input is a typed SandboxError naming the problem, and changes nothing.
import test from 'ava';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { runAsNobody } from '../helpers/capabilities.js';
import { attachSandbox, createNetwork, removeNetwork } from '../../src/index.js';
import { newId, testNetwork, tracesOf } from './helpers.js';

test.serial('createNetwork refuses bad names, bad or overlapping subnets, and names taken', async (t) => {
  await t.throwsAsync(createNetwork('Bad Name'), { code: 'ERR_INVALID_OPTION', message: /name/ });
  await t.throwsAsync(createNetwork(`t${process.pid}-x`, { subnet: '10.231.5.1/24' }), { code: 'ERR_INVALID_OPTION', message: /no host bits/ });
  await t.throwsAsync(createNetwork(`t${process.pid}-x`, { subnet: '10.231.5.0/30' }), { code: 'ERR_INVALID_OPTION', message: /\/8 to \/28/ });
  await t.throwsAsync(createNetwork(`t${process.pid}-x`, { subnet: '10.231.5.0/24', mtu: 9000 } as never), { code: 'ERR_INVALID_OPTION', message: /mtu/ });
  const network = await testNetwork(t);
  await t.throwsAsync(createNetwork(network.name), { code: 'ERR_INVALID_OPTION', message: /already exists/ });
  await t.throwsAsync(createNetwork(`t${process.pid}-y`, { subnet: network.subnet }), { code: 'ERR_INVALID_OPTION', message: new RegExp(`overlaps network "${network.name}"`) });
});

test.serial('attachSandbox refuses bad options with ERR_INVALID_OPTION and an unknown network with ERR_NETWORK_NOT_FOUND', async (t) => {
  const network = await testNetwork(t);
  const id = newId();
  const base = { id, name: 'box', network: network.name };
  const invalid = async (options: object, message: RegExp) => {
    await t.throwsAsync(attachSandbox({ ...base, ...options } as never), { code: 'ERR_INVALID_OPTION', message });
  };
  await invalid({ id: 'not-an-id' }, /id/);
  await invalid({ name: 'bad name!' }, /name/);
  await invalid({ publish: [{ host: 70000, container: 80 }] }, /host/);
  await invalid({ publish: [{ host: 8080, container: 80, hostIp: 'localhost' }] }, /hostIp/);
  await invalid({ publish: [{ host: 8080, container: 80, proto: 'tcp' }] }, /proto/);
  await invalid({ publish: [{ host: 18080, container: 80 }, { host: 18080, container: 81 }] }, /published twice/);
  await invalid({ egress: { default: 'block' } }, /default/);
  await invalid({ egress: { rules: [{ action: 'allow', cidr: '10.0.0.0/33' }] } }, /IPv4 address or CIDR/);
  await invalid({ egress: { rules: [{ action: 'allow', cidr: 'fe80::/64' }] } }, /IPv4 address or CIDR/);
  await invalid({ egress: { rules: [{ action: 'allow', cidr: '10.0.0.0/8', ports: [0] }] } }, /ports/);
  await invalid({ egress: { rules: [{ action: 'allow', cidr: '10.0.0.0/8', ports: ['9000-8000'] }] } }, /port range/);
  await invalid({ egress: { rules: [{ action: 'allow', cidr: '10.0.0.0/8', ports: [53], protocol: 'icmp' }] } }, /icmp/);
  await invalid({ egress: { rules: [{ action: 'allow', cidr: '10.0.0.0/8', port: 53 }] } }, /port/);
  // An address the host does not have: test hosts (testHost, in concurrent tests) give the host .4k+1 addresses of 198.51.100.0/24, never .4k+3.
  await t.throwsAsync(attachSandbox({ ...base, publish: [{ host: 18081, container: 80, hostIp: '198.51.100.3' }] }), { code: 'ERR_INVALID_OPTION', message: /not an address of this host/ });
  await t.throwsAsync(attachSandbox({ ...base, network: `t${process.pid}-missing` }), { code: 'ERR_NETWORK_NOT_FOUND', message: /No network named/ });
  t.deepEqual(tracesOf(id), []);
});

test.serial('one id attaches once; a second attempt changes nothing of the first', async (t) => {
  const network = await testNetwork(t);
  const id = newId();
  const box = await attachSandbox({ id, name: 'box', network: network.name });
  t.teardown(() => box.release());
  const before = tracesOf(id);
  await t.throwsAsync(attachSandbox({ id, name: 'other', network: network.name }), { code: 'ERR_INVALID_OPTION', message: /already attached/ });
  await t.throwsAsync(attachSandbox({ id: newId(), name: 'BOX', network: network.name }), { code: 'ERR_INVALID_OPTION', message: /already used/ });
  t.deepEqual(tracesOf(id), before);
});

test.serial('removeNetwork refuses a network in use and an unknown one', async (t) => {
  const network = await testNetwork(t);
  const box = await attachSandbox({ id: newId(), name: 'box', network: network.name });
  t.teardown(() => box.release());
  await t.throwsAsync(removeNetwork(network.name), { code: 'ERR_NETWORK', message: /in use by 1 sandbox/ });
  await t.throwsAsync(removeNetwork(`t${process.pid}-missing`), { code: 'ERR_NETWORK_NOT_FOUND' });
});

test('without root, attaching is ERR_UNSUPPORTED with the reason, before anything is made', async (t) => {
  const fixture = new URL('../fixtures/network-attach.ts', import.meta.url).pathname;
  const [command, ...args] = runAsNobody([process.execPath, '--import', 'tsx', fixture, 'nsbox0', '18080']);
  const outcome = await promisify(execFile)(command!, args, { env: { PATH: process.env.PATH, HOME: '/nonexistent', XDG_RUNTIME_DIR: '/nonexistent' } }).then(
    () => ({ stdout: '' }),
    (error: { stdout: string }) => error,
  );
  const { error } = JSON.parse(outcome.stdout) as { error: { code: string; message: string } };
  t.is(error.code, 'ERR_UNSUPPORTED');
  t.regex(error.message, /need root.*rootless networking \(pasta\/slirp4netns\) is not implemented/);
});
