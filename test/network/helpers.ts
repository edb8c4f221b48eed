// SPDX-License-Identifier: Apache-2.0
// Network test helpers: processes placed into a sandbox's network namespace with nsenter, HTTP
// servers and clients there (node), and test hosts in network namespaces the test makes itself.
// Every address used is on this machine: 127.0.0.1, the test's own bridges, or its test hosts.
import type { ExecutionContext } from 'ava';
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createNetwork, removeNetwork, type NetworkInfo, type Sandbox, type SandboxOptions } from '../../src/index.js';

const run = promisify(execFile);

/** A sandbox id owned by this test process. */
export function newId(): string {
  return `${process.pid}x${randomBytes(8).toString('hex')}`;
}

/** A network of its own for one test, removed in teardown (after the test's attachments, which tear down first). */
export async function testNetwork(t: ExecutionContext): Promise<NetworkInfo> {
  const name = `t${process.pid}-${randomBytes(3).toString('hex')}`;
  const network = await createNetwork(name);
  t.teardown(() => removeNetwork(name));
  return network;
}

/** A TCP port nothing listens on now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

const serverScript = `
const [port, body, proto] = process.argv.slice(1);
if (proto === 'udp') {
  const s = require('node:dgram').createSocket('udp4');
  s.on('message', (m, r) => s.send(body + ':' + m, r.port, r.address));
  s.bind(Number(port), () => console.log('ready'));
} else {
  require('node:http').createServer((req, res) => res.end(body)).listen(Number(port), () => console.log('ready'));
}`;

/** Starts a server (HTTP answering `body`, or a UDP echo) inside `netns` (or the host with undefined); stopped in teardown. */
export async function serveIn(t: ExecutionContext, netns: string | undefined, port: number, body: string, proto: 'tcp' | 'udp' = 'tcp'): Promise<ChildProcess> {
  const argv = [process.execPath, '-e', serverScript, String(port), body, proto];
  const child = netns ? spawn('nsenter', [`--net=${netns}`, ...argv]) : spawn(argv[0]!, argv.slice(1));
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  await new Promise<void>((resolve, reject) => {
    let err = '';
    child.stderr!.on('data', (d) => (err += d));
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`server exited ${code}: ${err}`)));
  });
  return child;
}

const fetchScript = `
const [url, timeout] = process.argv.slice(1);
fetch(url, { signal: AbortSignal.timeout(Number(timeout)) })
  .then((r) => r.text())
  .then((body) => console.log(JSON.stringify({ body })), (e) => console.log(JSON.stringify({ error: e.cause?.code ?? e.name })))
  // A connection attempt the firewall swallows would keep the process alive for its connect timeout.
  .finally(() => process.exit(0));`;

/**
 * GETs `url` from inside `netns` (undefined: from the host). With `files`, the process also gets
 * a private mount namespace with the sandbox's hosts file and resolv.conf bound over /etc's, as
 * the sandbox will see them.
 */
export async function fetchFrom(netns: string | undefined, url: string, options: { timeoutMs?: number; files?: { hosts: string; resolv: string } } = {}): Promise<{ body?: string; error?: string }> {
  const node = [process.execPath, '-e', fetchScript, url, String(options.timeoutMs ?? 3000)];
  let argv: string[];
  if (options.files) {
    const script = `mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/resolv.conf && shift 2 && exec nsenter --net="${netns}" "$@"`;
    argv = ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', options.files.hosts, options.files.resolv, ...node];
  } else {
    argv = netns ? ['nsenter', `--net=${netns}`, ...node] : node;
  }
  const { stdout } = await run(argv[0]!, argv.slice(1), { timeout: 20_000 });
  return JSON.parse(stdout) as { body?: string; error?: string };
}

const connectScript = `
const [host, port, localAddress] = process.argv.slice(1);
const socket = require('node:net').connect({ host, port: Number(port), localAddress, timeout: 1500 });
socket.on('connect', () => { console.log('connected'); process.exit(0); });
socket.on('timeout', () => { console.log('timeout'); process.exit(0); });
socket.on('error', (e) => { console.log(e.code); process.exit(0); });`;

/** Opens a TCP connection from inside `netns` with a chosen source address: 'connected', 'timeout' or the error code. */
export async function connectFrom(netns: string, host: string, port: number, localAddress: string): Promise<string> {
  const { stdout } = await run('nsenter', [`--net=${netns}`, process.execPath, '-e', connectScript, host, String(port), localAddress], { timeout: 20_000 });
  return stdout.trim();
}

/** Sends one UDP datagram from the host and returns the answer, or 'timeout'. */
export async function udpAsk(port: number, message: string): Promise<string> {
  const { createSocket } = await import('node:dgram');
  const socket = createSocket('udp4');
  try {
    return await new Promise<string>((resolve) => {
      const timer = setTimeout(() => resolve('timeout'), 2000);
      socket.on('message', (m) => {
        clearTimeout(timer);
        resolve(String(m));
      });
      socket.send(message, port, '127.0.0.1');
    });
  } finally {
    socket.close();
  }
}

function routedBlocks(): string[] {
  return readFileSync('/proc/net/route', 'utf8').split('\n').slice(1).map((line) => line.trim().split(/\s+/)[1] ?? '');
}

/**
 * A test host: a network namespace of the test's own, joined to the host by a veth, with an
 * address in TEST-NET-2 (198.51.100.0/24, a random /30 of it) and a default route back.
 */
export async function testHost(t: ExecutionContext): Promise<{ address: string; hostSide: string; netns: string }> {
  const tag = randomBytes(3).toString('hex');
  const name = `nsbt-${tag}`;
  let base = 0;
  for (;;) {
    base = 4 * (1 + Math.floor(Math.random() * 62));
    const hex = Buffer.from([198, 51, 100, base]).readUInt32LE(0).toString(16).toUpperCase().padStart(8, '0');
    if (!routedBlocks().includes(hex)) break;
  }
  const hostSide = `198.51.100.${base + 1}`;
  const address = `198.51.100.${base + 2}`;
  const ip = (...args: string[]) => run('ip', args);
  t.teardown(async () => {
    if (existsSync(`/sys/class/net/${name}`)) await ip('link', 'del', name);
    await ip('netns', 'del', name).catch(() => undefined);
  });
  await ip('netns', 'add', name);
  await ip('link', 'add', name, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', name);
  await ip('addr', 'add', `${hostSide}/30`, 'dev', name);
  await ip('link', 'set', name, 'up');
  await ip('-n', name, 'addr', 'add', `${address}/30`, 'dev', 'eth0');
  await ip('-n', name, 'link', 'set', 'eth0', 'up');
  await ip('-n', name, 'link', 'set', 'lo', 'up');
  await ip('-n', name, 'route', 'add', 'default', 'via', hostSide);
  return { address, hostSide, netns: `/run/netns/${name}` };
}

/** Everything on the host that names sandbox `id`: nft objects, netns file, leases, member and record files. */
export function tracesOf(id: string): string[] {
  const found: string[] = [];
  for (const family of ['inet', 'bridge']) {
    try {
      const listing = execFileSync('/usr/sbin/nft', ['list', 'table', family, 'nsbox'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      for (const line of listing.split('\n')) if (line.includes(id)) found.push(`nft ${family}: ${line.trim()}`);
    } catch {
      // no table: nothing of it
    }
  }
  const walk = (dir: string) => {
    if (!existsSync(dir)) return;
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.name.includes(id)) found.push(path);
      else if (entry.isDirectory()) walk(path);
      else if (entry.isFile() && /^\d+\.\d+\.\d+\.\d+$/.test(entry.name) && readFileSync(path, 'utf8').includes(id)) found.push(`lease ${path}`);
    }
  };
  walk('/run/nsbox');
  return found;
}

/** The host-side veths on a bridge. */
export function bridgePorts(bridge: string): string[] {
  try {
    return readdirSync(`/sys/class/net/${bridge}/brif`);
  } catch {
    return [];
  }
}

/**
 * Serves `body` as /index.html from busybox httpd on port 8080 inside a running sandbox and
 * returns what the host gets from 127.0.0.1:`hostPort` (its published port) once it answers
 * ('' if it never does within 5 s).
 */
export async function serveAndFetch(box: Sandbox, hostPort: number, body: string): Promise<string> {
  await box.writeFile('/tmp/index.html', body);
  await box.exec(['httpd', '-p', '8080', '-h', '/tmp']);
  let fetched = '';
  for (let attempt = 0; attempt < 50 && !fetched; attempt++) {
    fetched = await fetch(`http://127.0.0.1:${hostPort}/index.html`).then((r) => r.text(), () => '');
    if (!fetched) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return fetched;
}

/**
 * A test host that answers HTTP on two ports: /index.html is `allowed` on 8081 and `denied` on
 * 8082 (busybox httpd in its namespace; stopped in teardown).
 */
export async function testHostServingTwoPorts(t: ExecutionContext): Promise<{ address: string; hostSide: string; netns: string }> {
  const host = await testHost(t);
  for (const [port, body] of [[8081, 'allowed'], [8082, 'denied']] as const) {
    const child = spawn('nsenter', [`--net=${host.netns}`, 'busybox', 'sh', '-c', `mkdir -p /tmp/www-${port} && echo ${body} > /tmp/www-${port}/index.html && exec busybox httpd -f -p ${port} -h /tmp/www-${port}`]);
    t.teardown(() => {
      child.kill('SIGKILL');
    });
  }
  await new Promise((resolve) => setTimeout(resolve, 300));
  return host;
}

/**
 * Another host process that starts one long-lived sandbox with `options` and then idles: its
 * sandbox id, and `crash()`, which SIGKILLs it and resolves once it is gone.
 */
export async function hostWithSandbox(t: ExecutionContext, options: SandboxOptions): Promise<{ id: string; crash(): Promise<void> }> {
  const script = `
    import { Sandbox } from ${JSON.stringify(new URL('../../src/index.ts', import.meta.url).pathname)};
    const box = await Sandbox.create(${JSON.stringify(options)});
    console.log(box.id);
    setInterval(() => {}, 1000);`;
  const host = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => {
    host.kill('SIGKILL');
  });
  const id = await new Promise<string>((resolve, reject) => {
    host.stdout!.once('data', (d) => resolve(String(d).trim()));
    host.once('exit', (code) => reject(new Error(`host exited early: ${code}`)));
  });
  return {
    id,
    crash: async () => {
      const gone = new Promise((resolve) => host.once('exit', resolve));
      host.kill('SIGKILL');
      await gone;
    },
  };
}
