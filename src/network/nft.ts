// SPDX-License-Identifier: Apache-2.0
// nsbox's nftables tables: one `inet nsbox` and one `bridge nsbox` shared by every nsbox process on
// the host, whose per-network and per-sandbox parts are set/map elements and chains named after
// the sandbox id, so each change is one atomic `nft -f` transaction and leftovers are findable.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { SandboxError } from '../errors.js';

/** @internal The table name in both families. */
export const TABLE = 'nsbox';
// An empty set whose name says which layout of the table this is (table comments do not list in nft 1.0).
const schemaMarker = 'schema_3';

// By absolute path: PATH may find another `nft` first (npm's node_modules/.bin has @vercel/nft's).
const nftCandidates = ['/usr/sbin/nft', '/sbin/nft', '/usr/bin/nft', '/usr/local/sbin/nft'];
let nftPath: string | undefined;

/** @internal The absolute path of nft. @throws SandboxError ERR_UNSUPPORTED when nftables is not installed. */
export function nftCommand(): string {
  nftPath ??= nftCandidates.find((file) => existsSync(file));
  if (!nftPath) throw new SandboxError('ERR_UNSUPPORTED', `Bridged networks need nftables' nft command (looked in ${nftCandidates.join(', ')}; Debian/Ubuntu: apt-get install nftables)`);
  return nftPath;
}

/** @internal Runs an nft script as one transaction (all or nothing). */
export function nftApply(script: string): Promise<void> {
  const binary = nftCommand();
  return new Promise((resolve, reject) => {
    const child = execFile(binary, ['-f', '-'], { timeout: 30_000 }, (error, _stdout, stderr) => {
      if (!error) return resolve();
      reject(new NftError(stderr.trim() || error.message, script, error));
    });
    child.stdin!.end(script);
  });
}

/** @internal {@link nftApply} for process-exit handlers, where nothing asynchronous runs any more. */
export function nftApplySync(script: string): void {
  try {
    execFileSync(nftCommand(), ['-f', '-'], { input: script, timeout: 30_000, stdio: ['pipe', 'ignore', 'pipe'] });
  } catch (error) {
    throw new NftError(String((error as { stderr?: Buffer }).stderr ?? (error as Error).message).trim(), script, error);
  }
}

/** @internal A failed nft transaction; `exists` when it failed on an element or object that is already there. */
export class NftError extends SandboxError {
  readonly exists: boolean;
  constructor(stderr: string, script: string, cause: unknown) {
    super('ERR_NETWORK', `nft failed: ${stderr}\nwhile applying:\n${script}`, { cause });
    this.exists = /File exists/.test(stderr);
  }
}

/** @internal `nft -j list …` parsed: the list of objects after the metainfo. */
export function nftList(args: string[]): Promise<Array<Record<string, any>>> {
  const binary = nftCommand();
  return new Promise((resolve, reject) => {
    execFile(binary, ['-j', 'list', ...args], { timeout: 30_000, maxBuffer: 64 << 20 }, (error, stdout, stderr) => {
      if (error) {
        if (/No such file or directory/.test(stderr)) return resolve([]);
        return reject(new SandboxError('ERR_NETWORK', `nft list ${args.join(' ')} failed: ${stderr.trim() || error.message}`, { cause: error }));
      }
      if (stdout.trim() === '') return resolve([]);
      resolve((JSON.parse(stdout) as { nftables: Array<Record<string, any>> }).nftables.filter((item) => !('metainfo' in item)));
    });
  });
}

// The fixed part. Everything per network is an element of `bridges`, `same_network` and `subnets`;
// everything per sandbox is an element of the maps plus chains named `…-<sandbox id>`.
const inetTable = `
table inet ${TABLE} {
  set ${schemaMarker} { type ifname; }
  # Bridges of nsbox networks, and bridge . bridge pairs (traffic between two networks is dropped).
  set bridges { type ifname; }
  set same_network { type ifname . ifname; }
  set subnets { type ipv4_addr; flags interval; }
  # Sandbox address → jump to its egress chain (forwarded traffic) / its host-access chain.
  map egress { type ipv4_addr : verdict; }
  map host_access { type ipv4_addr : verdict; }
  # Published ports: host address . protocol . port → sandbox address . port; publish_any for every host address.
  map publish { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; }
  map publish_any { type inet_proto . inet_service : ipv4_addr . inet_service; }

  chain raw_prerouting {
    type filter hook prerouting priority raw; policy accept;
    # route_localnet is on for the bridges (for ports published on 127.0.0.1), so a sandbox's packet to
    # 127.0.0.0/8 would be taken as local: never (CVE-2020-8558). Sandboxes get no IPv6.
    iifname @bridges ip daddr 127.0.0.0/8 drop
    iifname @bridges meta nfproto ipv6 drop
  }
  chain input {
    type filter hook input priority filter; policy accept;
    iifname @bridges jump sandbox_to_host
  }
  chain sandbox_to_host {
    ct state established,related accept
    ip saddr vmap @host_access
    drop
  }
  chain forward {
    type filter hook forward priority filter; policy accept;
    ct state established,related accept
    # From outside into a network: only published ports.
    oifname @bridges iifname != @bridges ct status dnat accept
    oifname @bridges iifname != @bridges drop
    iifname @bridges oifname @bridges iifname . oifname != @same_network reject with icmpx admin-prohibited
    ip saddr vmap @egress
    # No sandbox has that source address (the bridge ports drop spoofed ones too).
    iifname @bridges drop
  }
  chain nat_prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    meta l4proto { tcp, udp } dnat ip to ip daddr . meta l4proto . th dport map @publish
    meta l4proto { tcp, udp } fib daddr type local dnat ip to meta l4proto . th dport map @publish_any
  }
  chain nat_output {
    type nat hook output priority -100; policy accept;
    meta l4proto { tcp, udp } dnat ip to ip daddr . meta l4proto . th dport map @publish
    meta l4proto { tcp, udp } fib daddr type local dnat ip to meta l4proto . th dport map @publish_any
  }
  chain nat_postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr @subnets ip daddr != @subnets oifname != @bridges masquerade
    # A published port reached from the host's loopback, or from a sandbox through a host address.
    oifname @bridges ip saddr 127.0.0.0/8 masquerade
    oifname @bridges ct status dnat ip saddr @subnets masquerade
  }
}
`;

const bridgeTable = `
table bridge ${TABLE} {
  # Host-side veth → jump to its port chain, which drops frames with any other source address.
  map ports { type ifname : verdict; }
  chain prerouting {
    type filter hook prerouting priority filter; policy accept;
    iifname vmap @ports
  }
}
`;

let ready: Promise<void> | undefined;

// `create` fails if another process made the table first: then it is there, which is all we need.
async function createTable(script: string): Promise<void> {
  try {
    await nftApply(script);
  } catch (error) {
    if (!(error instanceof NftError && error.exists)) throw error;
  }
}

/** @internal Creates both tables unless they exist (another nsbox process may create them at the same moment). */
export function ensureTables(): Promise<void> {
  ready ??= (async () => {
    const inet = await nftList(['table', 'inet', TABLE]);
    if (!inet.some((item) => 'table' in item)) await createTable(`create table inet ${TABLE}\n${inetTable}`);
    else if (!inet.some((item) => item.set?.name === schemaMarker))
      throw new SandboxError('ERR_NETWORK', `The nftables table inet ${TABLE} exists but was not made by this nsbox version; remove it with \`nft delete table inet ${TABLE}\` when no sandbox runs`);
    const bridge = await nftList(['table', 'bridge', TABLE]);
    if (!bridge.some((item) => 'table' in item)) await createTable(`create table bridge ${TABLE}\n${bridgeTable}`);
  })();
  ready.catch(() => {
    ready = undefined;
  });
  return ready;
}
