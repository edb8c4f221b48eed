// SPDX-License-Identifier: Apache-2.0
// Every option is checked before anything is touched; bad ones are ERR_INVALID_OPTION naming the option.
import test from 'ava';
import { statSync } from 'node:fs';
import { normalizeOptions, type SandboxOptions } from '../../src/options.js';
import { run, spawn, SandboxError } from '../../src/index.js';

const invalid: Array<[string, unknown, RegExp]> = [
  ['an unknown key', { image: 'host', command: ['true'], timeout: 5 }, /timeout/],
  ['a misspelt nested key', { image: 'host', command: ['true'], limits: { memroy: '1g' } }, /memroy/],
  ['a missing image', { command: ['true'] }, /image/],
  ['a numeric image', { image: 3, command: ['true'] }, /image/],
  ['an empty command', { image: 'host', command: [] }, /command/],
  ['an empty program name', { image: 'host', command: [''] }, /command/],
  ['a NUL in an argument', { image: 'host', command: ['echo', 'a\0b'] }, /NUL/],
  ['a non-string env value', { image: 'host', command: ['true'], env: { A: 1 } }, /env/],
  ['an env key with =', { image: 'host', command: ['true'], env: { 'A=B': 'x' } }, /A=B/],
  ['a relative cwd', { image: 'host', command: ['true'], cwd: 'tmp' }, /cwd/],
  ['a cwd with ..', { image: 'host', command: ['true'], cwd: '/a/../b' }, /cwd/],
  ['a negative memory limit', { image: 'host', command: ['true'], limits: { memory: -1 } }, /limits\.memory/],
  ['an unparsable memory limit', { image: 'host', command: ['true'], limits: { memory: 'lots' } }, /limits\.memory.*lots/],
  ['a memory limit too small to start', { image: 'host', command: ['true'], limits: { memory: '1KiB' } }, /limits\.memory.*4MiB/],
  ['an absurd memory limit', { image: 'host', command: ['true'], limits: { memory: '99999999TiB' } }, /limits\.memory/],
  ['zero pids', { image: 'host', command: ['true'], limits: { pids: 0 } }, /pids/],
  ['fractional pids', { image: 'host', command: ['true'], limits: { pids: 1.5 } }, /pids/],
  ['negative cpus', { image: 'host', command: ['true'], limits: { cpus: -1 } }, /cpus/],
  ['infinite cpus', { image: 'host', command: ['true'], limits: { cpus: Infinity } }, /cpus/],
  ['a bad timeout', { image: 'host', command: ['true'], limits: { timeout: 'soon' } }, /limits\.timeout.*soon/],
  ['a timeout past what timers can wait', { image: 'host', command: ['true'], limits: { timeout: '30d' } }, /limits\.timeout.*24\.8 days/],
  ['a negative timeout', { image: 'host', command: ['true'], limits: { timeout: -5 } }, /limits\.timeout/],
  ['a relative mount target', { image: 'host', command: ['true'], mounts: [{ type: 'tmpfs', target: 'tmp' }] }, /target/],
  ['a mount target with ..', { image: 'host', command: ['true'], mounts: [{ type: 'tmpfs', target: '/x/../etc' }] }, /target/],
  ['a missing bind source', { image: 'host', command: ['true'], mounts: [{ type: 'bind', source: '/no/such/dir', target: '/x' }] }, /\/no\/such\/dir/],
  ['an unknown mount type', { image: 'host', command: ['true'], mounts: [{ type: 'nfs', target: '/x' }] }, /mounts/],
  ['two mounts on one target', { image: 'host', command: ['true'], mounts: [{ type: 'tmpfs', target: '/x' }, { type: 'tmpfs', target: '/x/' }] }, /\/x/],
  ['a mount on /', { image: 'host', command: ['true'], mounts: [{ type: 'tmpfs', target: '/' }] }, /`\/`/],
  ['an unknown network', { image: 'host', command: ['true'], network: 'Not A Network!' }, /network/],
  ['a bad hostname', { image: 'host', command: ['true'], hostname: 'no spaces' }, /hostname/],
  ['a too long hostname', { image: 'host', command: ['true'], hostname: 'a'.repeat(65) }, /hostname/],
  ['a bad user', { image: 'host', command: ['true'], user: 'a:b:c' }, /user/],
  ['a negative uid', { image: 'host', command: ['true'], user: -1 }, /user/],
  ['a non-signal', { image: 'host', command: ['true'], signal: {} }, /signal/],
  ['a bad encoding', { image: 'host', command: ['true'], encoding: 'latin1' }, /encoding/],
  ['a relative layer', { image: { layers: ['rel'] }, command: ['true'] }, /layers/],
  ['a layer with a colon', { image: { layers: ['/a:b'] }, command: ['true'] }, /layers/],
  ['a zero disk limit (tmpfs would read it as unlimited)', { image: 'host', command: ['true'], limits: { disk: 0 } }, /limits\.disk.*more than 0/],
  ['a zero-sized tmpfs mount', { image: 'host', command: ['true'], mounts: [{ type: 'tmpfs', target: '/x', size: '0' }] }, /size.*more than 0/],
  ['an unknown rlimit', { image: 'host', command: ['true'], rlimits: { nofiles: 10 } }, /nofiles/],
  ['a negative rlimit', { image: 'host', command: ['true'], rlimits: { nofile: -1 } }, /rlimits\.nofile/],
  ['a soft rlimit above its hard one', { image: 'host', command: ['true'], rlimits: { nofile: { soft: 10, hard: 5 } } }, /rlimits\.nofile/],
  ['a missing upperDir', { image: 'host', command: ['true'], upperDir: '/no/such/dir' }, /upperDir/],
];

for (const [what, options, message] of invalid) {
  test(`${what} is ERR_INVALID_OPTION`, (t) => {
    const error = t.throws(() => normalizeOptions(options as SandboxOptions), { instanceOf: SandboxError });
    t.is(error!.code, 'ERR_INVALID_OPTION');
    t.regex(error!.message, message);
  });
}

test('run rejects and spawn throws synchronously on a bad option, before touching anything', async (t) => {
  await t.throwsAsync(run({ image: 'host', command: ['true'], nope: 1 } as SandboxOptions), { message: /nope/ });
  t.throws(() => spawn({ image: 'host', command: ['true'], nope: 1 } as SandboxOptions), { message: /nope/ });
});

test('defaults are the protective ones', (t) => {
  const options = normalizeOptions({ image: 'host', command: ['true'] });
  t.is(options.limits.memoryBytes, 512 * 1024 * 1024);
  t.is(options.limits.pids, 256);
  t.is(options.limits.cpus, undefined);
  t.is(options.limits.timeoutMs, 5 * 60 * 1000);
  t.is(options.limits.outputBytes, 16 * 1024 * 1024);
  t.is(options.network, 'none');
  t.true(options.init);
  t.true(options.reject);
  t.true(options.cgroup);
  t.false(options.explicitCgroupLimits);
});

test('human units and explicit opt-outs', (t) => {
  const options = normalizeOptions({ image: 'host', command: ['true'], limits: { memory: '64m', timeout: '2s', output: '1KiB', pids: null, cpus: 0.5 } });
  t.is(options.limits.memoryBytes, 64 * 1024 * 1024);
  t.is(options.limits.timeoutMs, 2000);
  t.is(options.limits.outputBytes, 1024);
  t.is(options.limits.pids, undefined);
  t.is(options.limits.cpus, 0.5);
  t.true(options.explicitCgroupLimits);
  t.is(normalizeOptions({ image: 'host', command: ['true'], limits: { memory: null, timeout: 0 } }).limits.memoryBytes, undefined);
});

test('bind sources are resolved to real paths and targets normalised', (t) => {
  const options = normalizeOptions({ image: 'host', command: ['true'], mounts: [{ type: 'bind', source: '/tmp/.', target: '/data//x/' }] });
  const { dev, ino } = statSync('/tmp', { bigint: true });
  t.deepEqual(options.mounts, [{ type: 'bind', source: '/tmp', identity: `${dev}:${ino}`, target: '/data/x', readonly: false }]);
});
