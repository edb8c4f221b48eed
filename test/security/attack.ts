// SPDX-License-Identifier: Apache-2.0
// The escape suite's tools: run one probe attack in a default sandbox, read its verdicts, and host-side witnesses.
//
// Every attack is one `probe ATTACK ARGS…` run as the sandbox's pid 2 under a hostname only
// this run uses (the probe's guard), with default options unless the attack is about a limit.
// The probe prints one line per attempt (see the attack section of test/fixtures/probe.c):
//   blocked WHAT errno=ENAME | blocked WHAT killed-by=SIGSYS | contained WHAT … | ESCAPED WHAT …
// A test asserts the exact refusal it expects, that nothing ESCAPED, and that the host did not
// change (a file, a process, a server, a sysctl…), which the witnesses below observe.
//
// NSBOX_SECURITY_SECCOMP=off runs every attack with `seccomp: false`: the suite then shows which
// defences rest on the system-call filter alone (those tests fail in that mode).
import { execFileSync, spawn as hostSpawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { run, spawn, type RunResult, type SandboxOptions, type SandboxProcess } from '../../src/index.js';
import { guardEnv, processesInPidNamespace, probeRootfs } from '../helpers/sandbox.js';

/** What the default seccomp filter answers: EPERM for named denials, ENOSYS for unknown calls, SIGSYS for foreign ABIs. */
export const SECCOMP = ['EPERM', 'ENOSYS', 'SIGSYS'] as const;

export interface Verdict {
  kind: 'blocked' | 'contained' | 'ESCAPED';
  /** The attempt's name as the probe prints it, e.g. `add_key` or `read /proc/1/root/etc`. */
  what: string;
  /** For `blocked`: the errno name, or the signal that killed the attempt. */
  errno: string | undefined;
  line: string;
}

export interface Attack {
  result: RunResult<string>;
  verdicts: Verdict[];
  escapes: Verdict[];
  /** stdout and stderr, for failure messages. */
  output: string;
}

/** The probe's verdict lines. */
export function parseVerdicts(stdout: string): Verdict[] {
  const verdicts: Verdict[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^(blocked|contained|ESCAPED) (.*)$/.exec(line);
    if (!m) continue;
    const rest = m[2]!;
    const cut = /^(.*?) (?:errno|killed-by)=(\S+)/.exec(rest);
    verdicts.push({ kind: m[1] as Verdict['kind'], what: cut ? cut[1]! : rest, errno: cut ? cut[2] : undefined, line });
  }
  return verdicts;
}

let counter = 0;

/** A hostname (and guard value) no other sandbox uses. */
export function uniqueHostname(): string {
  return `sec${process.pid}x${++counter}`;
}

function seccompOverride(): Record<string, unknown> {
  return process.env.NSBOX_SECURITY_SECCOMP === 'off' ? { seccomp: false } : {};
}

/** Options for an attack sandbox: the probe image, the guard, and `extra` (limits, mounts…). */
export async function attackOptions(extra: Partial<SandboxOptions> = {}): Promise<SandboxOptions & { hostname: string }> {
  const hostname = uniqueHostname();
  return {
    image: await probeRootfs(),
    hostname,
    ...extra,
    env: { ...guardEnv(hostname), ...extra.env },
    ...seccompOverride(),
  } as SandboxOptions & { hostname: string };
}

/** Runs `probe ...args` in a fresh default sandbox and reads its verdicts. */
export async function attack(args: string[], extra: Partial<SandboxOptions> = {}): Promise<Attack> {
  const options = await attackOptions(extra);
  const result = (await run({ ...options, command: ['probe', ...args], reject: false })) as RunResult<string>;
  const verdicts = parseVerdicts(result.stdout);
  return { result, verdicts, escapes: verdicts.filter((v) => v.kind === 'ESCAPED'), output: `stdout:\n${result.stdout}\nstderr:\n${result.stderr}` };
}

/** The attack ran to its end (not refused by the guard, not killed) and nothing escaped. */
export function assertNoEscape(t: ExecutionContext, attempt: Attack): void {
  t.is(attempt.result.exitCode, 0, attempt.output);
  t.deepEqual(attempt.escapes.map((v) => v.line), [], attempt.output);
}

/** The verdict on the attempt named `what` (its line may add details after the name). */
export function verdictOf(attempt: Attack, what: string): Verdict | undefined {
  return attempt.verdicts.find((v) => v.what === what) ?? attempt.verdicts.find((v) => v.what.startsWith(`${what} `));
}

/** The attempt named `what` was refused with one of `errnos`. */
export function assertBlocked(t: ExecutionContext, attempt: Attack, what: string, errnos: readonly string[]): void {
  const verdict = verdictOf(attempt, what);
  if (!verdict) {
    t.fail(`no verdict for \`${what}\`\n${attempt.output}`);
    return;
  }
  t.is(verdict.kind, 'blocked', verdict.line);
  t.true(errnos.includes(verdict.errno ?? ''), `\`${what}\`: ${verdict.errno} is not one of ${errnos.join(', ')}\n${attempt.output}`);
}

/** Every attempt of the attack was refused with one of `errnos`, and there was at least one. */
export function assertAllBlocked(t: ExecutionContext, attempt: Attack, errnos: readonly string[]): void {
  assertNoEscape(t, attempt);
  t.true(attempt.verdicts.length > 0, attempt.output);
  for (const verdict of attempt.verdicts) assertBlocked(t, attempt, verdict.what, errnos);
}

// ── host-side witnesses ────────────────────────────────────────────────────────────────────

/** A host file no sandbox should reach: in a fresh directory under the host's /tmp. */
export interface HostSecret {
  dir: string;
  file: string;
  text: string;
  /** The file still holds exactly its text. */
  intact(): boolean;
  remove(): void;
}

export function hostSecret(t: ExecutionContext): HostSecret {
  const dir = mkdtempSync(join(tmpdir(), 'nsbox-secret-'));
  const file = join(dir, 'secret.txt');
  const text = `host-secret-${randomBytes(8).toString('hex')}\n`;
  writeFileSync(file, text, { mode: 0o600 });
  const secret = {
    dir,
    file,
    text,
    intact: () => existsSync(file) && readFileSync(file, 'utf8') === text,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
  t.teardown(secret.remove);
  return secret;
}

/** A host process (a `sleep`) to aim signals and ptrace at. */
export interface HostProcess {
  pid: number;
  /** Alive, not a zombie, not stopped, and traced by no one. */
  untouched(): boolean;
}

export async function hostProcess(t: ExecutionContext): Promise<HostProcess> {
  const child: ChildProcess = hostSpawn('sleep', ['120'], { stdio: 'ignore' });
  await new Promise((resolve, reject) => child.once('spawn', resolve).once('error', reject));
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  const pid = child.pid!;
  return {
    pid,
    untouched() {
      try {
        const status = readFileSync(`/proc/${pid}/status`, 'utf8');
        return /^State:\s+S/m.test(status) && /^TracerPid:\s+0$/m.test(status) && child.exitCode === null && child.signalCode === null;
      } catch {
        return false;
      }
    },
  };
}

/** A TCP server on the host that counts its connections. */
export interface HostServer {
  port: number;
  connections(): number;
}

export async function hostTcpServer(t: ExecutionContext, host: string): Promise<HostServer> {
  let count = 0;
  const server = net.createServer((socket) => {
    count++;
    socket.destroy();
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, host, resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { port: (server.address() as net.AddressInfo).port, connections: () => count };
}

/** A unix socket server in the host's abstract namespace (`@name`). */
export async function hostAbstractServer(t: ExecutionContext): Promise<{ name: string; connections(): number }> {
  const name = `nsbox-sec-${randomBytes(6).toString('hex')}`;
  let count = 0;
  const server = net.createServer((socket) => {
    count++;
    socket.destroy();
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen({ path: `\0${name}` }, resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { name, connections: () => count };
}

/** A UDP socket on the host that counts datagrams. */
export async function hostUdpServer(t: ExecutionContext, host: string): Promise<HostServer> {
  let count = 0;
  const socket = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  socket.on('message', () => count++);
  await new Promise<void>((resolve, reject) => socket.once('error', reject).bind(0, host, resolve));
  t.teardown(() => new Promise<void>((resolve) => socket.close(() => resolve())));
  return { port: socket.address().port, connections: () => count };
}

/** A /proc/sys value of the host. */
export function sysctl(name: string): string {
  return readFileSync(`/proc/sys/${name.replaceAll('.', '/')}`, 'utf8');
}

/** The host's kernel log (root may read /dev/kmsg; non-blocking, from the start). */
export function hostKernelLog(): string {
  try {
    return execFileSync('dmesg', [], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  } catch {
    return '';
  }
}

/** A second, concurrent sandbox: files written into its root and /tmp, a TCP listener on its loopback. */
export interface Neighbour {
  child: SandboxProcess<string>;
  /** Host pids of its processes (init first). */
  pids: number[];
  secret: string;
  port: number;
  /** Still running, all its processes present. */
  alive(): boolean;
  /** Stops it and returns how many connections its listener accepted. */
  stop(): Promise<number>;
}

export async function neighbour(t: ExecutionContext): Promise<Neighbour> {
  const secret = `neighbour-secret-${randomBytes(8).toString('hex')}`;
  const port = 20000 + Math.floor(Math.random() * 20000);
  const options = await attackOptions();
  const child = spawn({
    ...options,
    command: ['sh', '-c', `echo ${secret} > /neighbour-secret && echo ${secret} > /tmp/neighbour-secret && exec probe listen 127.0.0.1 ${port} 30`],
    reject: false,
  }) as SandboxProcess<string>;
  let stdout = '';
  let exited = false;
  const done = child.then(() => {
    exited = true;
  });
  child.stdout.setEncoding('utf8');
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: string) => {
      stdout += chunk;
      if (stdout.includes('listening')) resolve();
    });
    void done.then(() => reject(new Error(`the neighbour sandbox exited early: ${stdout}`)));
  });
  const pidns = readlinkSync(`/proc/${child.pid}/ns/pid`);
  const pids = processesInPidNamespace(pidns).sort((a, b) => (a === child.pid ? -1 : b === child.pid ? 1 : a - b));
  t.teardown(() => {
    if (!exited) child.kill('SIGKILL');
  });
  return {
    child,
    pids,
    secret,
    port,
    alive: () => !exited && pids.every((pid) => processesInPidNamespace(pidns).includes(pid)),
    async stop() {
      child.kill('SIGTERM');
      await done;
      const accepted = /accepted (\d+)/.exec(stdout);
      if (!accepted) throw new Error(`the neighbour's listener did not report: ${stdout}`);
      return Number(accepted[1]);
    },
  };
}
