// SPDX-License-Identifier: Apache-2.0
// Long-lived sandboxes: exec, files, stats, pause/resume, stop, remove — on the real kernel.
import test from 'ava';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, linkSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { c as tarCreate, x as tarExtract, Header } from 'tar';
import { RunError, Sandbox, SandboxError, SetupError } from '../../src/index.js';
import { leakSnapshot, settledLeaksSince } from '../helpers/leaks.js';
import { ownCgroups, processesInPidNamespace } from '../helpers/sandbox.js';

const host = { image: 'host' } as const;
let scratch: string;

test.before(() => {
  scratch = mkdtempSync(join(tmpdir(), 'nsbox-box-test-'));
});
test.after.always(() => {
  rmSync(scratch, { recursive: true, force: true });
});

test('exec runs in the sandbox: its pid namespace (pid 1 is nsbox-init), hostname and root, and sees what an earlier exec wrote', async (t) => {
  await using box = await Sandbox.create({ ...host, hostname: 'box-one' });
  const first = await box.exec(['sh', '-c', 'echo state > /tmp/kept; hostname; cat /proc/1/comm; echo $$']);
  t.is(first.stdout, 'box-one\nnsbox-init\n2\n');
  t.is((await box.exec(['cat', '/tmp/kept'])).stdout, 'state\n');
  t.is(readlinkSync(`/proc/${box.pid}/ns/pid`), readlinkSync(`/proc/${box.pid}/ns/pid_for_children`));
  // The exec's command lives in the same pid namespace as pid 1.
  const sleeper = box.exec(['sleep', '30']);
  await new Promise((resolve) => sleeper.once('spawn', resolve));
  await waitFor(() => processesInPidNamespace(readlinkSync(`/proc/${box.pid}/ns/pid`)).length >= 2);
  t.true(processesInPidNamespace(readlinkSync(`/proc/${box.pid}/ns/pid`)).length >= 2);
  sleeper.kill('SIGKILL');
  const killed = await sleeper.result.catch((error: unknown) => error);
  t.true(killed instanceof RunError);
  t.is((killed as RunError).signal, 'SIGKILL');
});

test('exec takes env, cwd and user, and reports exit codes the way run does', async (t) => {
  await using box = await Sandbox.create({ ...host, env: { FROM_BOX: 'box' } });
  const { stdout } = await box.exec(['sh', '-c', 'echo $FROM_BOX $FROM_EXEC $(pwd) $(id -un)'], { env: { FROM_EXEC: 'exec' }, cwd: '/tmp', user: 'nobody' });
  t.is(stdout, 'box exec /tmp nobody\n');
  const failed = await t.throwsAsync(box.exec(['sh', '-c', 'exit 3']));
  t.true(failed instanceof RunError);
  t.is((failed as RunError).exitCode, 3);
  const kept = await box.exec(['sh', '-c', 'echo out; exit 4'], { reject: false });
  t.is(kept.exitCode, 4);
  t.is(kept.stdout, 'out\n');
  const input = await box.exec(['cat'], { stdin: 'piped\n' });
  t.is(input.stdout, 'piped\n');
  const missing = await t.throwsAsync(box.exec(['cat'], { cwd: '/no/such/dir' }));
  t.true(missing instanceof SetupError);
  t.is((missing as SetupError).stage, 'cwd');
  await t.throwsAsync(box.exec(['true'], { user: 'no-such-user' }), { code: 'ERR_INVALID_OPTION' });
  t.throws(() => box.exec([] as string[]), { code: 'ERR_INVALID_OPTION' });
  t.throws(() => box.exec(['true'], { bogus: 1 } as never), { code: 'ERR_INVALID_OPTION' });
  const slow = await t.throwsAsync(box.exec(['sleep', '30'], { timeout: 200 }));
  t.true((slow as RunError).timedOut);
});

test('an exec ends with its command; a background process it leaves keeps writing to the pipe it inherited', async (t) => {
  await using box = await Sandbox.create(host);
  const started = performance.now();
  const result = await box.exec(['sh', '-c', 'echo started; (while :; do echo tick; sleep 0.05; done) & echo left']);
  t.true(performance.now() - started < 3000, 'the result does not wait for the background writer');
  t.true(result.stdout.startsWith('started\n'));
  await new Promise((resolve) => setTimeout(resolve, 400));
  // The writer was not killed by SIGPIPE: its stdout is still read (and discarded) by the host.
  const alive = await box.exec(['sh', '-c', 'ps -eo comm= 2>/dev/null | grep -c "^sh$" || ls /proc | grep -c "^[0-9]"']);
  t.true(Number(alive.stdout.trim()) >= 1);
  const writers = await box.exec(['sh', '-c', 'for p in /proc/[0-9]*; do cat $p/cmdline 2>/dev/null | tr "\\0" " "; echo; done | grep -c "while"'], { reject: false });
  t.true(Number(writers.stdout.trim()) >= 1, 'the background loop still runs');
});

test('exec shares the sandbox cgroup: its processes count toward the sandbox pids and stats', async (t) => {
  await using box = await Sandbox.create({ ...host, limits: { pids: 16 } });
  const idle = await box.stats();
  t.is(idle.pids, 1, 'only nsbox-init');
  const sleepers = box.exec(['sh', '-c', 'sleep 30 & sleep 30 & wait']);
  await waitFor(async () => ((await box.stats()).pids ?? 0) >= 4);
  t.true(((await box.stats()).pids ?? 0) >= 4);
  // The pids limit is the sandbox's: a fork bomb in an exec hits it.
  const bomb = await box.exec(['sh', '-c', 'for i in $(seq 40); do sleep 5 & done; wait'], { reject: false });
  t.regex(bomb.stderr, /fork|Resource temporarily unavailable|retry/i);
  sleepers.kill('SIGKILL');
  // The exec ends with its own process, though the sleeps it started in the background run on.
  await sleepers.result.catch(() => {});
  t.true((await box.stats()).cpuTimeMs > 0);
});

test('writeFile and readFile go through the sandbox root only: symlinks and .. stay inside', async (t) => {
  const secret = join(scratch, 'host-secret');
  writeFileSync(secret, 'host only\n');
  await using box = await Sandbox.create(host);
  await box.writeFile('/tmp/hello.txt', 'hello\n', { mode: 0o600 });
  t.is((await box.exec(['sh', '-c', 'cat /tmp/hello.txt; stat -c %a /tmp/hello.txt'])).stdout, 'hello\n600\n');
  t.is(await box.readFile('/tmp/hello.txt', { encoding: 'utf8' }), 'hello\n');
  t.deepEqual(await box.readFile('/tmp/hello.txt'), Buffer.from('hello\n'));
  // A workload plants links at host paths; reading or writing through them stays in its own root.
  await box.exec(['sh', '-c', `mkdir -p $(dirname ${secret}) && ln -s ${secret} /tmp/link && ln -s ../../../../../${secret} /tmp/rel && ln -s /proc/1/root/etc /tmp/magic`]);
  await t.throwsAsync(box.readFile('/tmp/link'), { code: 'ERR_FILE' });
  await t.throwsAsync(box.readFile('/tmp/rel'), { code: 'ERR_FILE' });
  await t.throwsAsync(box.readFile(`/../../..${secret}`), { code: 'ERR_FILE' });
  // A write never follows a symlink at the last component (the host writes as root).
  await t.throwsAsync(box.writeFile('/tmp/link', 'overwritten\n'), { code: 'ERR_FILE', message: /ELOOP/ });
  t.is(readFileSync(secret, 'utf8'), 'host only\n', 'the host file is untouched');
  // A hard link to a file the workload may not write is refused too, and an existing file keeps its owner.
  await box.exec(['sh', '-c', 'echo root-only > /tmp/protected && chmod 600 /tmp/protected && ln /tmp/protected /tmp/hardlink']);
  await t.throwsAsync(box.writeFile('/tmp/hardlink', 'x'), { code: 'ERR_FILE', message: /EINVAL/ });
  t.is((await box.exec(['cat', '/tmp/protected'])).stdout, 'root-only\n');
  await t.throwsAsync(box.readFile('/tmp/magic/hostname'), { code: 'ERR_FILE' });
  await t.throwsAsync(box.readFile('/tmp'), { code: 'ERR_FILE', message: /EISDIR/ });
  await t.throwsAsync(box.readFile('/tmp/hello.txt', { maxBytes: 3 }), { code: 'ERR_FILE', message: /maxBytes/ });
  await box.exec(['mkfifo', '/tmp/fifo']);
  await t.throwsAsync(box.readFile('/tmp/fifo'), { code: 'ERR_FILE' });
  await t.throwsAsync(box.writeFile('/tmp/fifo', 'x'), { code: 'ERR_FILE' });
  await t.throwsAsync(box.writeFile('/no/such/dir/file', 'x'), { code: 'ERR_FILE', message: /ENOENT/ });
  await t.throwsAsync(box.writeFile('', 'x'), { code: 'ERR_INVALID_OPTION' });
});

test('copyIn and copyOut round-trip a directory tree with modes, symlinks and hard links', async (t) => {
  const source = join(scratch, 'tree');
  mkdirSync(join(source, 'sub/deeper'), { recursive: true });
  writeFileSync(join(source, 'run.sh'), '#!/bin/sh\necho run\n');
  chmodSync(join(source, 'run.sh'), 0o750);
  writeFileSync(join(source, 'sub/data.txt'), 'data\n');
  chmodSync(join(source, 'sub/data.txt'), 0o604);
  chmodSync(join(source, 'sub/deeper'), 0o711);
  writeFileSync(join(source, 'sub/deeper/' + 'x'.repeat(120)), 'long name\n');
  symlinkSync('sub/data.txt', join(source, 'link'));
  symlinkSync('/etc/hostname', join(source, 'absolute-link'));
  linkSync(join(source, 'sub/data.txt'), join(source, 'hard'));
  await using box = await Sandbox.create(host);
  const dest = '/srv/app';
  await box.exec(['mkdir', '-p', dest]);
  await box.copyIn(dest, tarCreate({ cwd: source }, ['.']) as unknown as Readable);
  const listing = await box.exec(['sh', '-c', `cd ${dest} && stat -c '%n %a %F' run.sh sub/data.txt sub/deeper link hard && readlink link absolute-link && ./run.sh && stat -c %h hard && cat sub/deeper/${'x'.repeat(120)}`]);
  t.is(listing.stdout, ['run.sh 750 regular file', 'sub/data.txt 604 regular file', 'sub/deeper 711 directory', 'link 777 symbolic link', 'hard 604 regular file', 'sub/data.txt', '/etc/hostname', 'run', '2', 'long name', ''].join('\n'));

  const out = join(scratch, 'out');
  mkdirSync(out);
  await pipeline(box.copyOut(dest), tarExtract({ cwd: out, preservePaths: true }));
  const copied = join(out, dest.split('/').pop()!);
  t.is(readFileSync(join(copied, 'run.sh'), 'utf8'), '#!/bin/sh\necho run\n');
  t.is(statSync(join(copied, 'run.sh')).mode & 0o777, 0o750);
  t.is(statSync(join(copied, 'sub/data.txt')).mode & 0o777, 0o604);
  t.is(statSync(join(copied, 'sub/deeper')).mode & 0o777, 0o711);
  t.true(lstatSync(join(copied, 'link')).isSymbolicLink());
  t.is(readlinkSync(join(copied, 'link')), 'sub/data.txt');
  t.is(readlinkSync(join(copied, 'absolute-link')), '/etc/hostname');
  t.is(readFileSync(join(copied, 'sub/deeper', 'x'.repeat(120)), 'utf8'), 'long name\n');
  // One file copied out by name: its entry is named after it.
  const single = join(scratch, 'single');
  mkdirSync(single);
  await pipeline(box.copyOut(`${dest}/sub/data.txt`), tarExtract({ cwd: single }));
  t.is(readFileSync(join(single, 'data.txt'), 'utf8'), 'data\n');
  await t.throwsAsync(pipeline(box.copyOut('/no/such/path'), tarExtract({ cwd: single })), { code: 'ERR_FILE' });
});

test('copyIn refuses entries that leave the destination, and leaves nothing outside it', async (t) => {
  await using box = await Sandbox.create(host);
  await box.exec(['mkdir', '-p', '/tmp/dest']);
  const hostile = (name: string, type: 'File' | 'Link' = 'File', linkpath?: string) => {
    const body = Buffer.from('evil\n');
    const header = Buffer.alloc(512);
    new Header({ path: name, type, mode: 0o644, size: type === 'File' ? body.length : 0, mtime: new Date(0), linkpath }).encode(header, 0);
    const parts = [header];
    if (type === 'File') parts.push(body, Buffer.alloc(512 - body.length));
    parts.push(Buffer.alloc(1024));
    return Readable.from([Buffer.concat(parts)]);
  };
  await t.throwsAsync(box.copyIn('/tmp/dest', hostile('../escaped')), { code: 'ERR_FILE', message: /leaves the destination/ });
  await t.throwsAsync(box.copyIn('/tmp/dest', hostile('a/../../escaped')), { code: 'ERR_FILE', message: /leaves the destination/ });
  await t.throwsAsync(box.copyIn('/tmp/dest', hostile('hard', 'Link', '../../etc/passwd')), { code: 'ERR_FILE', message: /outside/ });
  t.is((await box.exec(['sh', '-c', 'ls /tmp; ls /tmp/dest'])).stdout, 'dest\n');
  // A symlinked directory in the way resolves inside the sandbox, never on the host.
  await box.exec(['sh', '-c', `mkdir -p ${scratch} && ln -s ${scratch} /tmp/dest/out`]);
  await box.copyIn('/tmp/dest', hostile('out/planted'));
  t.false(existsSync(join(scratch, 'planted')));
  t.is((await box.exec(['cat', `${scratch}/planted`])).stdout, 'evil\n');
  await t.throwsAsync(box.copyIn('/tmp/missing', hostile('x')), { code: 'ERR_FILE' });
});

test('pause stops progress and resume continues', async (t) => {
  await using box = await Sandbox.create(host);
  const counter = box.exec(['sh', '-c', 'i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.01; done']);
  await waitFor(async () => Number((await box.readFile('/tmp/count', { encoding: 'utf8' }).catch(() => '0')).trim()) > 3);
  await box.pause();
  t.is(box.state, 'paused');
  t.throws(() => box.exec(['true']), { code: 'ERR_SANDBOX_PAUSED' }, 'a clone into a frozen cgroup would hang');
  const frozen = await box.readFile('/tmp/count', { encoding: 'utf8' });
  await sleep(300);
  t.is(await box.readFile('/tmp/count', { encoding: 'utf8' }), frozen, 'no progress while paused');
  await box.resume();
  t.is(box.state, 'running');
  await waitFor(async () => Number((await box.readFile('/tmp/count', { encoding: 'utf8' })).trim()) > Number(frozen.trim()) + 3);
  t.true(Number((await box.readFile('/tmp/count', { encoding: 'utf8' })).trim()) > Number(frozen.trim()));
  counter.kill('SIGKILL');
  await counter.result.catch(() => {});
});

// Serial: ava runs serial tests before the concurrent ones, so the leak check sees only this sandbox.
test.serial('stop asks politely first, kills what stays, and ends every process; remove leaves nothing behind', async (t) => {
  const warm = await Sandbox.create(host);
  await warm.exec(['true']);
  await warm.remove();
  const before = leakSnapshot();
  const box = await Sandbox.create(host);
  t.true(Sandbox.list().includes(box));
  const polite = box.exec(['sh', '-c', 'trap "echo bye; exit 0" TERM; touch /tmp/polite; while :; do sleep 0.05; done']);
  const stubborn = box.exec(['sh', '-c', 'trap "" TERM; touch /tmp/stubborn; while :; do sleep 0.05; done']);
  await box.exec(['sh', '-c', 'sleep 1000 & sleep 1000 & echo started'], { reject: false });
  const ready = async () => (await box.exec(['sh', '-c', 'test -e /tmp/polite && test -e /tmp/stubborn'], { reject: false })).exitCode === 0;
  await waitFor(ready);
  t.true(await ready());
  const pidns = readlinkSync(`/proc/${box.pid}/ns/pid`);
  const started = performance.now();
  await box.stop({ timeout: 500 });
  t.true(performance.now() - started >= 400, 'the stubborn process kept it up until the timeout');
  t.is(box.state, 'stopped');
  const politeResult = await polite.result;
  t.is(politeResult.exitCode, 0);
  t.is(politeResult.stdout, 'bye\n');
  t.is((await stubborn.result.catch((error: RunError) => error)).signal, 'SIGKILL');
  t.deepEqual(processesInPidNamespace(pidns), []);
  t.false(Sandbox.list().includes(box));
  t.throws(() => box.exec(['true']), { code: 'ERR_SANDBOX_STOPPED' });
  await t.throwsAsync(box.readFile('/etc/hostname'), { code: 'ERR_SANDBOX_STOPPED' });
  await box.remove();
  t.deepEqual(await settledLeaksSince(before), []);
  t.deepEqual(ownCgroups(), []);
});

test('await using removes the sandbox at the end of the block, and a paused sandbox can still be removed', async (t) => {
  let pid = 0;
  let id = '';
  {
    await using box = await Sandbox.create(host);
    pid = box.pid;
    id = box.id;
    await box.exec(['sh', '-c', 'sleep 1000 &']);
    await box.pause();
  }
  await waitFor(() => !existsSync(`/proc/${pid}`));
  t.false(existsSync(`/proc/${pid}`));
  t.deepEqual(ownCgroups().filter((dir) => dir.endsWith(id)), []);
});

test.serial('Sandbox.create checks its options', async (t) => {
  await t.throwsAsync(Sandbox.create({ ...host, command: ['true'] } as never), { code: 'ERR_INVALID_OPTION', message: /command/ });
  await t.throwsAsync(Sandbox.create({ ...host, limits: { memory: 'lots' } }), { code: 'ERR_INVALID_OPTION' });
  await t.throwsAsync(Sandbox.create({ image: '/no/such/rootfs' }), { instanceOf: SandboxError });
  await t.throwsAsync(Sandbox.create(null as never), { code: 'ERR_INVALID_OPTION' });
  t.deepEqual(ownCgroups(), []);
});

test('a sandbox with a lifetime limit stops by itself', async (t) => {
  const box = await Sandbox.create({ ...host, limits: { timeout: 300 } });
  await waitFor(() => box.state === 'stopped', 5000);
  t.is(box.state, 'stopped');
  t.throws(() => box.exec(['true']), { code: 'ERR_SANDBOX_STOPPED' });
});

async function waitFor(condition: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await condition()) && Date.now() < end) await sleep(20);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

test('exec with a tty: a terminal of the sandbox own devpts, its size, resize, and a shell with job control', async (t) => {
  await using box = await Sandbox.create(host);
  const once = await box.exec(['sh', '-c', 'tty; stty size; test -t 0 && echo stdin-is-a-tty; echo to-stderr >&2'], { tty: { columns: 100, rows: 30 } });
  t.is(once.stdout, '/dev/pts/0\r\n30 100\r\nstdin-is-a-tty\r\nto-stderr\r\n');
  const shell = box.exec(['sh'], { tty: true });
  let output = '';
  shell.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  shell.stdin!.write('stty size\n');
  await waitFor(() => output.includes('24 80'));
  t.true(shell.resize(120, 40));
  shell.stdin!.write('stty size; exit 7\n');
  const result = await shell.result.catch((error: RunError) => error);
  t.is(result.exitCode, 7, 'the shell exits with its own status: it could hand the terminal back');
  t.regex(output, /24 80\r\n[\s\S]*40 120\r\n/);
  t.false(output.includes('Cannot set tty process group'));
  t.false(shell.resize(80, 24), 'no terminal once it ended');
  t.throws(() => shell.resize(0, 24), { code: 'ERR_INVALID_OPTION' });
  t.throws(() => box.exec(['sh'], { tty: { columns: 80 } as never }), { code: 'ERR_INVALID_OPTION' });
});

test('stop gives each process the signal once, not again through an init that passes it on', async (t) => {
  await using box = await Sandbox.create(host);
  const counter = box.exec(['sh', '-c', 'trap "echo term" TERM; touch /tmp/armed; while :; do sleep 0.2; done'], { reject: false });
  await waitFor(async () => (await box.exec(['test', '-e', '/tmp/armed'], { reject: false })).exitCode === 0);
  await box.stop({ timeout: 1000 });
  t.is((await counter.result).stdout, 'term\n');
});
