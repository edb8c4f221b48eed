// SPDX-License-Identifier: Apache-2.0
// `nsbox network …` through the CLI's own entry (a real network is created, listed and removed), and the -p syntax.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { UsageError } from '../../src/cli/args.js';
import { networkCommand, parsePublishFlag } from '../../src/cli/network.js';

async function cli(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d) => (out += d));
  stderr.on('data', (d) => (err += d));
  const code = await networkCommand(argv, { stdin: new PassThrough(), stdout, stderr, cwd: '/', env: {} });
  return { code, stdout: out, stderr: err };
}

test.serial('network create, ls and rm', async (t) => {
  const name = `t${process.pid}-${randomBytes(3).toString('hex')}`;
  const created = await cli('create', name);
  t.teardown(() => cli('rm', name));
  t.is(created.code, 0, created.stderr);
  t.regex(created.stdout, new RegExp(`^${name} 10\\.231\\.\\d+\\.0/24\\n$`));
  const listed = await cli('ls');
  t.is(listed.code, 0);
  t.regex(listed.stdout, /^NAME +SUBNET +GATEWAY +BRIDGE +SANDBOXES\n/);
  t.regex(listed.stdout, new RegExp(`^${name} +10\\.231\\.\\d+\\.0/24 +10\\.231\\.\\d+\\.1 +nsb-[0-9a-f]{8} +0$`, 'm'));
  const again = await cli('create', name);
  t.is(again.code, 1);
  t.regex(again.stderr, /already exists/);
  t.deepEqual(await cli('rm', name), { code: 0, stdout: `${name}\n`, stderr: '' });
  const missing = await cli('rm', name);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /No network named/);
});

test('network usage errors exit 125', async (t) => {
  for (const argv of [[], ['frob'], ['create'], ['create', '--mtu', '9000', 'x'], ['rm'], ['ls', 'extra']]) {
    const result = await cli(...argv);
    t.is(result.code, 125, argv.join(' '));
    t.not(result.stderr, '');
  }
  t.is((await cli('--help')).code, 0);
});

test('-p takes [HOST_IP:]HOST_PORT:CONTAINER_PORT[/PROTO]', (t) => {
  t.deepEqual(parsePublishFlag('8080:80'), { host: 8080, container: 80 });
  t.deepEqual(parsePublishFlag('0.0.0.0:5353:53/udp'), { host: 5353, container: 53, hostIp: '0.0.0.0', protocol: 'udp' });
  t.deepEqual(parsePublishFlag('127.0.0.1:8443:443/tcp'), { host: 8443, container: 443, hostIp: '127.0.0.1', protocol: 'tcp' });
  for (const bad of ['80', '8080:80/sctp', 'localhost:8080:80', ':80', '8080:', '1:2:3:4']) t.throws(() => parsePublishFlag(bad), { instanceOf: UsageError });
});
