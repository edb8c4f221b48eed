// SPDX-License-Identifier: Apache-2.0
// Crash safety: hosts killed with SIGKILL mid-setup, or brought down by their own code, leave no sandbox running and nothing behind.
//
// Sandboxes of a dead host are found in /proc two ways: by their cgroup (`/nsbox/<host pid>x…`),
// and, for those without one (cgroup: false, or still in setup), by a token the host put into
// their environment, in a pid namespace other than ours (the host's own helpers, like tsx's
// esbuild, carry the token too but live in our pid namespace).
import test from 'ava';
import { execFile, spawn as hostSpawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { runDir, scratchDir, stateDir } from '../../src/paths.js';
import { foreignNetnsMount, hostMounts, probeRootfs } from '../helpers/sandbox.js';

const ITERATIONS = Number(process.env.NSBOX_CRASH_ITERATIONS ?? 30);
/** How long a dead host's sandboxes may take to die: the parent-death signal and namespace teardown are quick, but this machine has 2 busy cores. */
const GRACE_MS = 3000;
const fixture = (name: string) => new URL(`../fixtures/${name}`, import.meta.url).pathname;
const ourPidns = readlinkSync('/proc/self/ns/pid');

let image: string;
const tokens: string[] = [];
const deadHosts: number[] = [];

test.before(async () => {
  image = await probeRootfs();
});

function procRead(pid: string, file: string): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    return undefined;
  }
}

function isZombie(pid: string): boolean {
  const stat = procRead(pid, 'stat');
  return stat === undefined || stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
}

/** Live processes of `hostPid`'s sandboxes (see the file comment). */
function sandboxProcesses(hostPid: number, token: string): number[] {
  const found: number[] = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    const inCgroup = procRead(pid, 'cgroup')?.includes(`/nsbox/${hostPid}x`) ?? false;
    let tagged = false;
    if (!inCgroup) {
      let pidns: string | undefined;
      try {
        pidns = readlinkSync(`/proc/${pid}/ns/pid`);
      } catch {
        continue;
      }
      tagged = pidns !== ourPidns && (procRead(pid, 'environ')?.split('\0').includes(`NSBOX_CRASH_TOKEN=${token}`) ?? false);
    }
    if ((inCgroup || tagged) && !isZombie(pid)) found.push(Number(pid));
  }
  return found;
}

function describe(pid: number): string {
  const stat = procRead(String(pid), 'stat') ?? '';
  const cmdline = (procRead(String(pid), 'cmdline') ?? '').split('\0').join(' ').trim();
  const cgroup = (procRead(String(pid), 'cgroup') ?? '').split('\n').find((l) => l.includes('nsbox')) ?? 'no nsbox cgroup';
  return `${pid} [${stat.slice(stat.lastIndexOf(')') + 2).split(' ').slice(0, 2).join(' ppid ')}] ${cmdline.slice(0, 80)} (${cgroup})`;
}

/** Waits up to GRACE_MS for the sandboxes of a dead host to go, and returns those still there. */
async function survivors(hostPid: number, token: string): Promise<number[]> {
  const end = Date.now() + GRACE_MS;
  for (;;) {
    const left = sandboxProcesses(hostPid, token);
    if (left.length === 0 || Date.now() > end) return left;
    await delay(20);
  }
}

/** cgroup directories, in any hierarchy, of sandboxes of `hostPid`. */
function cgroupsOf(hostPid: number): string[] {
  const found: string[] = [];
  for (const root of ['/sys/fs/cgroup', ...readdirSync('/sys/fs/cgroup').map((d) => `/sys/fs/cgroup/${d}`)]) {
    try {
      for (const name of readdirSync(`${root}/nsbox`)) if (name.startsWith(`${hostPid}x`)) found.push(`${root}/nsbox/${name}`);
    } catch {
      // no nsbox parent in this hierarchy
    }
  }
  return found;
}

function startHost(args: string[], token: string, extraEnv: Record<string, string> = {}): ChildProcess {
  tokens.push(token);
  return hostSpawn(process.execPath, ['--import', 'tsx', ...args], {
    env: { ...process.env, NSBOX_CRASH_IMAGE: image, NSBOX_CRASH_TOKEN: token, ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

/** The next nsbox process: its first sandbox collects what dead hosts left in cgroupfs. */
async function nextNsboxProcess(): Promise<void> {
  const index = new URL('../../src/index.ts', import.meta.url).pathname;
  await promisify(execFile)(process.execPath, ['--import', 'tsx', '-e', `import { run } from ${JSON.stringify(index)}; await run({ image: 'host', command: ['true'] });`]);
}

test.after.always(async () => {
  // Whatever a failed run left: kill it, then let an nsbox process collect the cgroups.
  for (const [i, token] of tokens.entries()) for (const pid of sandboxProcesses(deadHosts[i] ?? -1, token)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  if (deadHosts.some((pid) => cgroupsOf(pid).length > 0)) await nextNsboxProcess().catch(() => {});
});

test.serial(`${ITERATIONS} hosts killed with SIGKILL during setup leave no sandbox running, and the next nsbox process collects their cgroups`, async (t) => {
  t.timeout(300_000);
  const mounts = hostMounts();
  const seed = Number(process.env.NSBOX_CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));
  let state = seed;
  const random = () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state / 2 ** 32;
  };
  const problems: string[] = [];
  const killedAfter: number[] = [];
  const start = performance.now();
  for (let i = 0; i < ITERATIONS; i++) {
    const token = `crash-${process.pid}-${i}-${randomBytes(4).toString('hex')}`;
    const warm = i % 2 === 0;
    const host = startHost([fixture('crash-host.ts')], token, { NSBOX_CRASH_WARM: warm ? '1' : '0' });
    let spawned = 0;
    let stderr = '';
    host.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const ready = new Promise<boolean>((resolve) => {
      let out = '';
      host.stdout!.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes('ready\n')) resolve(true);
        spawned = out.split('\n').filter((line) => line === 'spawned').length;
      });
      host.once('exit', () => resolve(false));
    });
    if (!(await ready)) {
      problems.push(`host ${i} exited before it was ready: ${stderr.slice(0, 500)}`);
      deadHosts.push(host.pid!);
      continue;
    }
    const wait = Math.floor(random() * 31);
    await delay(wait);
    host.kill('SIGKILL');
    await exited(host);
    deadHosts.push(host.pid!);
    killedAfter.push(spawned);
    const left = await survivors(host.pid!, token);
    if (left.length > 0) {
      problems.push(`host ${i} (pid ${host.pid}, ${warm ? 'warm' : 'cold'}, killed ${wait} ms after ready, ${spawned} of 10 spawned): ${left.length} sandbox processes outlived it by ${GRACE_MS} ms:\n    ${left.map(describe).join('\n    ')}`);
      for (const pid of left) process.kill(pid, 'SIGKILL');
    }
  }
  // The hosts collected each other's leftovers as they started; one more collects the last one's.
  await nextNsboxProcess();
  const leftover = deadHosts.flatMap(cgroupsOf);
  const seconds = (performance.now() - start) / 1000;
  const histogram = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((n) => killedAfter.filter((k) => k === n).length);
  t.log(`seed ${seed}: ${ITERATIONS} hosts killed in ${seconds.toFixed(1)} s; sandboxes spawned (of 10) when the kill came: ${histogram.map((c, n) => `${n}:${c}`).filter((s) => !s.endsWith(':0')).join(' ')}`);
  t.deepEqual(problems, [], `seed ${seed} (NSBOX_CRASH_SEED reproduces the kill delays)`);
  t.deepEqual(leftover, [], 'every cgroup of a dead host was collected');
  // The host's namespace is shared with the rest of the machine: only nsbox's places count.
  const ours = (line: string) => !foreignNetnsMount(line) && (line.includes(runDir()) || line.includes(stateDir()) || line.includes('nsbox'));
  t.deepEqual(hostMounts().filter(ours), mounts.filter(ours), 'no mount appeared or vanished where nsbox works');
  t.deepEqual(readdirSync(scratchDir()), [], 'the scratch directory stays empty on the host');
});

for (const mode of ['data', 'then', 'spawn'] as const) {
  const where = { data: "a stream 'data' handler", then: 'a .then callback', spawn: "a 'spawn' listener" }[mode];
  test.serial(`an exception thrown in ${where} brings the host down, and its sandboxes with it`, async (t) => {
    const token = `throw-${mode}-${process.pid}-${randomBytes(4).toString('hex')}`;
    const host = startHost([fixture('throwing-host.ts'), mode], token);
    let stderr = '';
    host.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    host.stdout!.resume();
    const timer = setTimeout(() => host.kill('SIGKILL'), 60_000);
    const { code, signal } = await exited(host);
    clearTimeout(timer);
    deadHosts.push(host.pid!);
    t.is(signal, null, stderr);
    t.not(code, 0, 'the uncaught exception ended the host');
    const message = { data: 'a data handler', then: 'a then callback', spawn: 'a spawn listener' }[mode];
    t.true(stderr.includes(`user code threw in ${message}`), stderr);
    const left = await survivors(host.pid!, token);
    t.deepEqual(left.map(describe), [], 'no sandbox outlived its host');
    await nextNsboxProcess();
    t.deepEqual(cgroupsOf(host.pid!), [], 'its cgroups were removed or collected');
  });

  test.serial(`an exception thrown in ${where}, caught by the host's handler, leaks no sandbox`, async (t) => {
    const token = `handled-${mode}-${process.pid}-${randomBytes(4).toString('hex')}`;
    const host = startHost([fixture('throwing-host.ts'), `${mode}-handled`], token);
    let stdout = '';
    let stderr = '';
    host.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    host.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => host.kill('SIGKILL'), 60_000);
    const { code } = await exited(host);
    clearTimeout(timer);
    deadHosts.push(host.pid!);
    t.is(code, 0, stderr);
    const report = JSON.parse(stdout.trim().split('\n').at(-1)!) as { exitCode: number; stdout: string; live: number; cgroups: string[]; caught: string[] };
    t.is(report.exitCode, 0, 'the sandbox ran to its end');
    t.is(report.stdout, 'one\ntwo\nthree\n', 'with all of its output');
    t.is(report.live, 0, 'and was untracked');
    t.deepEqual(report.cgroups, [], 'and its cgroup removed');
    t.true(report.caught.length > 0, 'the host saw its own exception');
    t.true(report.caught.every((line) => line.includes('user code threw')), report.caught.join('\n'));
    t.deepEqual(await survivors(host.pid!, token), []);
  });
}
