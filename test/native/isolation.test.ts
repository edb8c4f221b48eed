// SPDX-License-Identifier: Apache-2.0
// What a workload sees: its own pid 1, hostname, root, network, user, env and mounts.
import test from 'ava';
import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, spawn, RunError, SetupError } from '../../src/index.js';
import { openFds, processesInPidNamespace, probeRootfs } from '../helpers/sandbox.js';

let image: string;
test.before(async () => {
  image = await probeRootfs();
});

const probe = (...args: string[]) => ['probe', ...args];

test('the workload is pid 1 without init, pid 2 under nsbox-init, and sees no host process', async (t) => {
  t.is((await run({ image, command: probe('pid'), init: false })).stdout.trim(), '1');
  t.is((await run({ image, command: probe('pid') })).stdout.trim(), '2');
  const init = await run({ image, command: probe('cat', '/proc/1/cmdline') });
  t.is(init.stdout.split('\0')[0], 'nsbox-init');
  const procs = (await run({ image, command: probe('procs') })).stdout.trim().split('\n').map(Number);
  t.deepEqual(procs, [1, 2], 'only init and the probe are visible');
});

test('the sandbox has its own hostname; the host keeps its own', async (t) => {
  const before = hostname();
  t.is((await run({ image, command: probe('hostname'), hostname: 'box-one' })).stdout.trim(), 'box-one');
  const byDefault = await run({ image, command: probe('hostname') });
  t.regex(byDefault.stdout.trim(), /^[0-9a-f]{12}$/);
  t.is(hostname(), before);
});

test('writes to / land in a private writable layer: the image is untouched and the next run starts clean', async (t) => {
  const passwd = readFileSync(join(image, 'etc/passwd'), 'utf8');
  await run({ image, command: ['sh', '-c', 'echo hacked > /etc/passwd && echo new > /newfile && rm /bin/cat && cat /etc/passwd'], reject: false });
  t.is(readFileSync(join(image, 'etc/passwd'), 'utf8'), passwd);
  t.false(existsSync(join(image, 'newfile')));
  t.true(existsSync(join(image, 'bin/cat')));
  const next = await run({ image, command: ['sh', '-c', 'ls /newfile 2>&1; cat /etc/passwd | head -1'], reject: false });
  t.regex(next.stdout, /No such file/);
  t.regex(next.stdout, /^root:/m);
});

test('upperDir keeps the writable layer on the host', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nsbox-upper-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  await run({ image, command: ['sh', '-c', 'echo kept > /kept.txt'], upperDir: dir });
  t.is(readFileSync(join(dir, 'upper/kept.txt'), 'utf8'), 'kept\n');
});

test('bind mounts: read-only is read-only, read-write writes through to the host', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nsbox-bind-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'in.txt'), 'from host');
  const ro = await run({ image, command: probe('write', '/data/out.txt', 'x'), mounts: [{ type: 'bind', source: dir, target: '/data', readonly: true }], reject: false });
  t.is(ro.exitCode, 2);
  t.regex(ro.stderr, /EROFS/);
  const read = await run({ image, command: probe('cat', '/data/in.txt'), mounts: [{ type: 'bind', source: dir, target: '/data', readonly: true }] });
  t.is(read.stdout, 'from host');
  await run({ image, command: probe('write', '/deep/new/dir/out.txt', 'written'), mounts: [{ type: 'bind', source: dir, target: '/deep/new/dir' }] });
  t.is(readFileSync(join(dir, 'out.txt'), 'utf8'), 'written');
});

test('a tmpfs mount has its size', async (t) => {
  const result = await run({ image, command: ['sh', '-c', 'df -k /scratch | tail -1'], mounts: [{ type: 'tmpfs', target: '/scratch', size: '2MiB' }] });
  t.regex(result.stdout, /\s2048\s/);
});

test('env, cwd and user', async (t) => {
  const env = await run({ image, command: probe('env', 'GREETING'), env: { GREETING: 'hello' } });
  t.is(env.stdout.trim(), 'hello');
  const path = await run({ image, command: probe('env', 'PATH') });
  t.regex(path.stdout, /\/usr\/bin/);
  const cwd = await run({ image, command: probe('cwd'), cwd: '/work/here' });
  t.is(cwd.stdout.trim(), '/work/here');
  t.is((await run({ image, command: probe('id') })).stdout.trim(), 'uid=0 gid=0 groups=0');
  t.regex((await run({ image, command: probe('id'), user: 'app' })).stdout, /^uid=1000 gid=1000/);
  t.regex((await run({ image, command: probe('id'), user: '1234:5678' })).stdout, /^uid=1234 gid=5678/);
  const home = await run({ image, command: probe('env', 'HOME'), user: 'app' });
  t.is(home.stdout.trim(), '/home/app');
});

test('an unknown user name is an invalid option', async (t) => {
  const error = await t.throwsAsync(run({ image, command: probe('id'), user: 'nosuchuser' }));
  t.is((error as RunError).code, 'ERR_INVALID_OPTION');
  t.regex(error!.message, /nosuchuser/);
});

test('network none has only loopback, and it is up; host shares the host network', async (t) => {
  const none = await run({ image, command: probe('net') });
  t.deepEqual(none.stdout.trim().split('\n'), ['lo']);
  const up = await run({ image, command: ['sh', '-c', 'cat /sys/class/net/lo/operstate 2>/dev/null || ip link show lo 2>/dev/null || ping -c1 -W1 127.0.0.1 >/dev/null && echo reachable'] , reject: false });
  t.regex(up.stdout, /reachable|UP|unknown/);
  const host = await run({ image, command: probe('net'), network: 'host' });
  t.true(host.stdout.trim().split('\n').length > 1);
});

test('capabilities are Docker’s default set at most, with no_new_privs', async (t) => {
  const caps = await run({ image, command: probe('caps') });
  const eff = BigInt(`0x${/CapEff:\s*(\w+)/.exec(caps.stdout)![1]}`);
  const docker = [0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31].reduce((m, b) => m | (1n << BigInt(b)), 0n);
  t.is(eff & ~docker, 0n, 'no capability beyond Docker’s defaults');
  t.is(eff & (1n << 21n), 0n, 'no CAP_SYS_ADMIN');
  t.is(eff & (1n << 13n), 0n, 'no CAP_NET_RAW');
  t.regex(caps.stdout, /CapAmb:\s*0+\s/);
  t.regex((await run({ image, command: probe('nnp') })).stdout, /NoNewPrivs:\s*1/);
  const app = await run({ image, command: probe('caps'), user: 'app' });
  t.regex(app.stdout, /CapEff:\s*0+\s/);
});

test('sensitive /proc paths are masked or read-only; the cgroup namespace hides the host hierarchy', async (t) => {
  // Whichever of the masked files this kernel has must read empty inside.
  const masked = ['/proc/kcore', '/proc/keys', '/proc/timer_list', '/proc/interrupts'].filter((p) => existsSync(p));
  t.true(masked.length > 0);
  for (const path of masked) {
    t.not(readFileSync(path, 'utf8'), '', `${path} has content on the host`);
    t.is((await run({ image, command: probe('cat', path) })).stdout, '', `${path} is masked`);
  }
  const sys = await run({ image, command: probe('write', '/proc/sys/kernel/hostname', 'evil'), reject: false });
  t.is(sys.exitCode, 2);
  t.regex(sys.stderr, /EROFS|EACCES|EPERM/);
  const cgroup = await run({ image, command: probe('cat', '/proc/self/cgroup') });
  for (const line of cgroup.stdout.trim().split('\n')) t.regex(line, /:\/$/);
});

test('readonlyRoot makes / read-only but keeps /tmp writable', async (t) => {
  const root = await run({ image, command: probe('write', '/x', 'y'), readonlyRoot: true, reject: false });
  t.regex(root.stderr, /EROFS/);
  const tmp = await run({ image, command: probe('write', '/tmp/x', 'y'), readonlyRoot: true });
  t.is(tmp.exitCode, 0);
});

test('stdin from a string, and streaming through spawn', async (t) => {
  const echoed = await run({ image, command: probe('stdin'), stdin: 'piped in' });
  t.is(echoed.stdout, 'piped in');
  const child = spawn({ image, command: ['sh', '-c', 'while read line; do echo "got $line"; done'] });
  const seen: string[] = [];
  child.stdout.on('data', (chunk: Buffer) => seen.push(chunk.toString()));
  child.stdin!.write('one\n');
  child.stdin!.end('two\n');
  const result = await child;
  t.is(result.stdout, 'got one\ngot two\n');
  t.is(seen.join(''), 'got one\ngot two\n');
});

test('kill() forwards a signal through init to the workload', async (t) => {
  const child = spawn({ image, command: probe('sleep', '30'), reject: false });
  await new Promise((resolve) => child.once('spawn', resolve));
  const pidns = readlinkPidns(child.pid!);
  t.true(child.kill('SIGTERM'));
  const result = await child;
  t.is(result.signal, 'SIGTERM');
  t.true(result.failed);
  t.deepEqual(processesInPidNamespace(pidns), []);
});

test('the result has a fixed key order', async (t) => {
  const result = await run({ image, command: probe('echo', 'hi') });
  t.deepEqual(Object.keys(result), [
    'command', 'image', 'exitCode', 'signal', 'stdout', 'stderr', 'failed', 'timedOut', 'isCanceled', 'oomKilled', 'outputTruncated', 'durationMs', 'usage',
  ]);
  t.deepEqual(Object.keys(result.usage), ['cpuTimeMs', 'memoryPeakBytes', 'pidsPeak']);
  t.is(result.stdout, 'hi\n');
  t.deepEqual(result.command, ['probe', 'echo', 'hi']);
  t.true(result.durationMs > 0);
});

test('non-zero exits reject with a RunError carrying the result; reject: false returns it', async (t) => {
  const error = await t.throwsAsync(run({ image, command: ['sh', '-c', 'echo out; echo err >&2; exit 3'] }), { instanceOf: RunError });
  t.is(error!.code, 'ERR_NON_ZERO_EXIT');
  t.is(error!.exitCode, 3);
  t.is(error!.stdout, 'out\n');
  t.is(error!.stderr, 'err\n');
  t.regex(error!.message, /exit code 3/);
  const result = await run({ image, command: ['sh', '-c', 'exit 4'], reject: false });
  t.is(result.exitCode, 4);
  t.true(result.failed);
});

test('a command missing from the image is ERR_EXEC, with or without init', async (t) => {
  for (const init of [true, false]) {
    const error = await t.throwsAsync(run({ image, command: ['no-such-command'], init }), { instanceOf: SetupError });
    t.is(error!.code, 'ERR_EXEC');
    t.is(error!.stage, 'exec');
    t.is(error!.errnoCode, 'ENOENT');
    t.regex(error!.message, /no-such-command/);
  }
  const notExecutable = await t.throwsAsync(run({ image, command: ['/etc/passwd'] }), { instanceOf: SetupError });
  t.is(notExecutable!.errnoCode, 'EACCES');
});

test('encoding: buffer gives Buffers', async (t) => {
  const result = await run({ image, command: probe('echo', 'bytes'), encoding: 'buffer' });
  t.true(Buffer.isBuffer(result.stdout));
  t.is(result.stdout.toString(), 'bytes\n');
});

test('the host image runs node from the host’s /usr with nothing downloaded', async (t) => {
  const result = await run({ image: 'host', command: ['node', '-e', 'console.log(6 * 7, process.getuid())'] });
  t.is(result.stdout, '42 0\n');
  const etc = await run({ image: 'host', command: ['cat', '/etc/passwd'] });
  t.regex(etc.stdout, /^root:x:0:0/);
  t.notRegex(etc.stdout, new RegExp(`^${process.env.USER ?? 'nonexistentuser'}:`, 'm'));
});

function readlinkPidns(pid: number): string {
  return readlinkSync(`/proc/${pid}/ns/pid`);
}

test('buffer: false streams without keeping the output; a slow reader slows the workload, not the host', async (t) => {
  const child = spawn({ image, command: ['probe', 'flood', '4m'], buffer: false });
  let streamed = 0;
  child.stdout.pause();
  await new Promise((resolve) => setTimeout(resolve, 300));
  // Paused for 300 ms: the pipe and stream buffers filled and the workload waits.
  t.true(child.stdout.readableLength <= 1024 * 1024, `${child.stdout.readableLength} bytes buffered`);
  child.stdout.on('data', (chunk: Buffer) => (streamed += chunk.length)).resume();
  const result = await child;
  t.is(streamed, 4 * 1024 * 1024);
  t.is(result.stdout, '');
});

test('nsbox-init reaps orphaned zombies', async (t) => {
  // The inner shell exits at once, leaving its sleep to init; when the sleep exits it must be reaped.
  const result = await run({ image, command: ['sh', '-c', 'sh -c "sleep 0.2 & exit 0"; sleep 0.8; cat /proc/[0-9]*/stat'] });
  const states = result.stdout.trim().split('\n').map((line) => line.slice(line.lastIndexOf(')') + 2, line.lastIndexOf(')') + 3));
  t.false(states.includes('Z'), result.stdout);
});

test.serial('spawn without ending stdin leaks no fd after the workload exits', async (t) => {
  await run({ image, command: ['true'] });
  const before = openFds().length;
  const child = spawn({ image, command: ['true'] });
  await child;
  await new Promise((resolve) => setImmediate(resolve));
  t.is(openFds().length, before);
});
