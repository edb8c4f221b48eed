// SPDX-License-Identifier: Apache-2.0
// Bridged networking for sandboxes in a user namespace (rootless, or `userns: true`): the host
// cannot give them a veth (their network namespace belongs to their own user namespace), so
// pasta, from Debian's passt, connects the sandbox's own network namespace to the host's
// network in user mode, the way rootless Podman does. Published ports are pasta's forwards on
// the host; egress rules are nft rules inside the sandbox's namespace, loaded before its
// workload starts (nsbox-netconf), out of reach of a workload without CAP_NET_ADMIN.
//
// The child waits in its `network-setup` stage while the addon runs the commands made here.
import { accessSync, constants, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { SandboxError } from '../errors.js';
import { netconfPath } from '../native/binding.js';
import { isRoot, runDir } from '../paths.js';
import { SANDBOX_ID_PATTERN, isProcessAlive } from '../sandbox-id.js';
import type { NetworkAttachment } from './attach.js';
import { egressChains, type EgressPolicy } from './egress.js';
import { hostNameservers } from './hosts.js';
import { nftCommand } from './nft.js';
import { reservePorts, resolveMappings, type PortMapping, type ResolvedPortMapping } from './publish.js';

/** @internal A sandbox's user-mode network: a {@link NetworkAttachment} plus the commands the addon runs. */
export interface UserModeAttachment extends NetworkAttachment {
  setupCommands: Array<{ argv: string[]; input: string }>;
}

// pasta answers DNS sent here with the host's own resolver (even one on the host's loopback,
// such as systemd-resolved's stub): the address rootless Podman uses for the same purpose.
export const DNS_FORWARD = '169.254.1.1';
const pastaCandidates = ['/usr/bin/pasta', '/usr/sbin/pasta', '/usr/local/bin/pasta'];

export function pastaPath(): string {
  const found = pastaCandidates.find((file) => existsSync(file));
  if (!found) {
    throw new SandboxError(
      'ERR_UNSUPPORTED',
      `A bridged network in a user namespace (rootless) needs pasta (looked in ${pastaCandidates.join(', ')}; Debian/Ubuntu: apt-get install passt)`,
    );
  }
  return found;
}

export function checkTun(): void {
  try {
    accessSync('/dev/net/tun', constants.R_OK | constants.W_OK);
  } catch (error) {
    throw new SandboxError(
      'ERR_UNSUPPORTED',
      `A bridged network in a user namespace needs /dev/net/tun readable and writable by uid ${process.geteuid?.()} (pasta makes the sandbox's interface with it): ${(error as NodeJS.ErrnoException).code}. Most distributions make it 0666; here: chmod 0666 /dev/net/tun`,
      { cause: error },
    );
  }
}

/** @internal Where a user-mode sandbox's files live: hosts, resolv.conf, pasta's pid file. */
export function userModeDir(id?: string): string {
  return id === undefined ? join(runDir(), 'user-net') : join(runDir(), 'user-net', id);
}

// The host's own addresses, which pasta would connect to from the host side: a sandbox reaches
// none of them unless an egress rule allows it by name (as on a rootful bridge). From the
// kernel's table of local routes, which also has the addresses of interfaces that are down (an
// empty bridge still answers on its address; os.networkInterfaces() lists only running ones).
// Not 127.0.0.0/8: that is the sandbox's own loopback. Taken when the sandbox starts.
export function hostAddresses(): string[] {
  const addresses = new Set<string>();
  let trie = '';
  try {
    trie = readFileSync('/proc/net/fib_trie', 'utf8');
  } catch {
    // No procfs view of the routes: fall back to the running interfaces.
  }
  let last = '';
  for (const line of trie.split('\n')) {
    const leaf = /\|-- ([0-9.]+)$/.exec(line);
    if (leaf) last = leaf[1]!;
    else if (/\/32 host LOCAL/.test(line) && last && !last.startsWith('127.')) addresses.add(last);
  }
  for (const list of Object.values(networkInterfaces())) {
    for (const info of list ?? []) if (info.family === 'IPv4' && !info.internal) addresses.add(info.address);
  }
  return [...addresses].sort();
}

// What pasta copies into the sandbox: the address and gateway of the host's default route.
function outboundInterface(): { address: string; prefixLength: number; gateway: string } {
  let iface: string | undefined;
  let gateway = '';
  try {
    for (const line of readFileSync('/proc/net/route', 'utf8').split('\n').slice(1)) {
      const [name, destination, gw] = line.trim().split(/\s+/);
      if (destination === '00000000' && name && gw) {
        iface = name;
        const n = Number.parseInt(gw, 16);
        gateway = [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, n >>> 24].join('.');
        break;
      }
    }
  } catch {
    // No /proc/net/route: no default route to copy.
  }
  const info = (iface ? networkInterfaces()[iface] : undefined)?.find((i) => i.family === 'IPv4');
  const prefixLength = info?.cidr ? Number(info.cidr.split('/')[1]) : 0;
  return { address: info?.address ?? '', prefixLength, gateway };
}

/**
 * @internal The setup command that loads the sandbox's egress rules (and closes the host's own
 * addresses) in its own namespace before its workload starts.
 */
export function egressCommand(policy: EgressPolicy | undefined): { argv: string[]; input: string } {
  return { argv: [netconfPath(), '/proc/{pid}/ns/user', '/proc/{pid}/ns/net', nftCommand(), '-f', '-'], input: userModeRuleset(policy, hostAddresses()) };
}

/** @internal The nft ruleset loaded in the sandbox's namespace: its egress policy, the host kept out. */
export function userModeRuleset(policy: EgressPolicy | undefined, host: string[]): string {
  const chains = egressChains(policy, [DNS_FORWARD]);
  return [
    'table inet nsbox {',
    `  set host { type ipv4_addr; ${host.length > 0 ? `elements = { ${host.join(', ')} }` : ''} }`,
    '  chain egress {',
    ...chains.forward.map((rule) => `    ${rule}`),
    '  }',
    '  chain host {',
    ...chains.host.map((rule) => `    ${rule}`),
    '  }',
    '  chain output {',
    '    type filter hook output priority filter; policy accept;',
    // The sandbox's own traffic (its loopback, its own address) and answers to connections
    // made to it (published ports) are not egress.
    '    oif "lo" accept',
    '    ct state established,related accept',
    // pasta runs IPv4 only (-4): nothing of IPv6 leaves, so no rule needs a v6 twin.
    '    meta nfproto ipv6 drop',
    '    ip daddr @host jump host',
    '    jump egress',
    '  }',
    '}',
    '',
  ].join('\n');
}

// `uplink`: pasta configures the namespace's interface and routes (its way out). Without, it
// only carries the published ports, by splicing host-loopback connections to the namespace's
// loopback (a member of a rootless named network, whose way out is the network's bridge).
function pastaArgv(pasta: string, pidFile: string, publish: ResolvedPortMapping[], uplink: boolean): string[] {
  const forwards = (protocol: 'tcp' | 'udp') => {
    // One spec per port: pasta gives up only when no port of a spec can be bound.
    const specs = publish.filter((m) => m.protocol === protocol).map((m) => (m.hostIp === '0.0.0.0' ? `${m.host}:${m.container}` : `${m.hostIp}/${m.host}:${m.container}`));
    const flag = protocol === 'tcp' ? '-t' : '-u';
    return specs.length === 0 ? [flag, 'none'] : specs.flatMap((spec) => [flag, spec]);
  };
  return [
    pasta,
    '--quiet',
    ...(uplink ? ['--config-net'] : []),
    '--ipv4-only',
    '--netns', '/proc/{pid}/ns/net',
    '--userns', '/proc/{pid}/ns/user',
    '--ns-ifname', uplink ? 'eth0' : 'pasta0',
    // Without this, the gateway address would be the host's loopback.
    '--no-map-gw',
    '--dns-forward', DNS_FORWARD,
    // Nothing from the sandbox to the host's ports: only the forwards the caller published.
    '-T', 'none',
    '-U', 'none',
    ...forwards('tcp'),
    ...forwards('udp'),
    '--pid', pidFile,
    // pasta refuses to stay root and would become nobody, who may not enter a user namespace
    // root made; it drops its capabilities and sandboxes itself once set up.
    ...(isRoot() ? ['--runas', '0'] : []),
  ];
}

// pasta's pid, if the pid file's process is still that pasta (its arguments name the pid file).
function pastaPid(dir: string): number | undefined {
  const pidFile = join(dir, 'pasta.pid');
  let pid: number;
  try {
    pid = Number(readFileSync(pidFile, 'utf8').trim());
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 1) return undefined;
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return argv.includes(pidFile) ? pid : undefined;
  } catch {
    return undefined;
  }
}

// pasta holds the sandbox's network namespace open and keeps serving it until it is told to stop.
function stopPasta(dir: string): number | undefined {
  const pid = pastaPid(dir);
  if (pid !== undefined) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone meanwhile.
    }
  }
  rmSync(dir, { recursive: true, force: true });
  return pid;
}

// Until the killed pasta is gone (its parent, the host's init or a subreaper, reaps it), so that
// a released sandbox has no process left once release() resolves. At most about a second.
async function exited(pid: number | undefined): Promise<void> {
  for (let i = 0; pid !== undefined && i < 100; i++) {
    let state = '';
    try {
      state = /^State:\s+(\S)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '';
    } catch {
      return;
    }
    if (state === 'Z' || state === 'X') return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const live = new Set<string>();
let exitWatched = false;
let collected = false;

/**
 * @internal Stops the pasta of every user-mode sandbox whose host process is gone (a crash),
 * and removes its files. Runs once per process, before its first user-mode sandbox.
 * @returns How many were removed.
 */
export function collectLeftoverUserModeNetworks(): number {
  let removed = 0;
  let ids: string[];
  try {
    ids = readdirSync(userModeDir());
  } catch {
    return 0;
  }
  for (const id of ids) {
    const owner = SANDBOX_ID_PATTERN.exec(id)?.[1];
    if (owner === undefined || Number(owner) === process.pid || isProcessAlive(Number(owner))) continue;
    stopPasta(userModeDir(id));
    removed++;
  }
  return removed;
}

/**
 * @internal pasta's command for a sandbox whose files live in `dir`, and `stop()`, which ends
 * that pasta (waiting until it is gone) and removes `dir`; also done if the process exits.
 */
export function pastaCarrier(dir: string, pasta: string, publish: ResolvedPortMapping[], uplink: boolean): { command: { argv: string[]; input: string }; stop(): Promise<void> } {
  if (!collected) {
    collected = true;
    collectLeftoverUserModeNetworks();
  }
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  live.add(dir);
  if (!exitWatched) {
    exitWatched = true;
    process.once('exit', () => live.forEach(stopPasta));
  }
  return {
    command: { argv: pastaArgv(pasta, join(dir, 'pasta.pid'), publish, uplink), input: '' },
    async stop() {
      live.delete(dir);
      await exited(stopPasta(dir));
    },
  };
}

/**
 * @internal Prepares user-mode networking for a sandbox about to start: its hosts and
 * resolv.conf, the nft ruleset and pasta's command line for the addon to run while the child
 * waits. `release()` stops pasta and removes the files; it also runs if the process exits.
 * @throws SandboxError ERR_UNSUPPORTED when pasta, nft or a usable /dev/net/tun is missing;
 * ERR_PORT_IN_USE when a published host port is taken.
 */
export async function attachUserMode(options: { id: string; name: string; publish?: PortMapping[]; egress?: EgressPolicy }): Promise<UserModeAttachment> {
  const { id, name } = options;
  const pasta = pastaPath();
  nftCommand(); // ERR_UNSUPPORTED before anything is made
  checkTun();
  const publish = resolveMappings(options.publish ?? []);
  // A clear error for a taken port before pasta's own ("Failed to bind any port"), which the
  // launch turns into the same error should a race get there first.
  await (await reservePorts(publish)).release();

  const dir = userModeDir(id);
  const carrier = pastaCarrier(dir, pasta, publish, true);
  const hostsFile = join(dir, 'hosts');
  const resolvConf = join(dir, 'resolv.conf');
  const resolv = hostNameservers();
  writeFileSync(hostsFile, ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback', `127.0.1.1\t${name}`, ''].join('\n'), { mode: 0o644 });
  writeFileSync(
    resolvConf,
    [
      "# Written by nsbox: pasta forwards these queries to the host's resolver.",
      `nameserver ${DNS_FORWARD}`,
      ...(resolv.search.length > 0 ? [`search ${resolv.search.join(' ')}`] : []),
      ...(resolv.options.length > 0 ? [`options ${resolv.options.join(' ')}`] : []),
      '',
    ].join('\n'),
    { mode: 0o644 },
  );

  const outbound = outboundInterface();
  let released = false;
  return {
    network: 'bridge',
    netnsPath: '',
    address: outbound.address,
    prefixLength: outbound.prefixLength,
    gateway: outbound.gateway,
    hostsFile,
    resolvConf,
    publish,
    setupCommands: [
      // The rules first: a namespace is never connected without them.
      egressCommand(options.egress),
      carrier.command,
    ],
    async release() {
      if (released) return;
      released = true;
      await carrier.stop();
    },
  };
}
