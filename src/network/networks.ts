// SPDX-License-Identifier: Apache-2.0
// Named networks: their definitions (kept in the state dir, so they outlive reboots) and their
// per-boot parts (a bridge made by the CNI bridge plugin on first use, nft set elements).
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import ow from 'ow';
import { SandboxError } from '../errors.js';
import { runDir, stateDir } from '../paths.js';
import { withLock } from '../store/lock.js';
import { formatAddress, formatCidr, hostRoutes, nthAddress, overlaps, parseCidr, type Ipv4Block } from './ipv4.js';
import { collectLeftoverNetworks } from './collect.js';
import { deleteLink } from './netns.js';
import { ensureTables, nftApply, nftList, TABLE } from './nft.js';
import { isRoot } from '../paths.js';
import { check, networkName } from './validate.js';

/** The network sandboxes join when they ask for a bridged network without naming one. */
export const DEFAULT_NETWORK = 'nsbox0';

/** Networks made without a subnet get the first free /24 of this block (rarely used by Docker, Podman, Kubernetes or libvirt). */
const subnetPool: Ipv4Block = { base: parseCidr('10.231.0.0/16')!.base, prefix: 16 };

/**
 * A named bridged network.
 *
 * @example
 * ```ts
 * import { createNetwork } from 'nsbox';
 * const net: NetworkInfo = await createNetwork('app', { subnet: '10.231.40.0/24' });
 * console.log(net.bridge, net.gateway); // nsb-1f2e3d4c 10.231.40.1
 * ```
 */
export interface NetworkInfo {
  /** The network's name. */
  name: string;
  /** Its IPv4 subnet, e.g. '10.231.0.0/24'. */
  subnet: string;
  /** The bridge's address in the subnet: the sandboxes' default route. */
  gateway: string;
  /** The Linux bridge's interface name. */
  bridge: string;
  /** The ids of the sandboxes attached now (from any process on this host). */
  sandboxes: string[];
}

/**
 * Options of {@link createNetwork}.
 *
 * @example
 * ```ts
 * const options: CreateNetworkOptions = { subnet: '10.231.40.0/24' };
 * ```
 */
export interface CreateNetworkOptions {
  /** An IPv4 subnet with a prefix of /8 to /28. Default: the first free /24 of 10.231.0.0/16. */
  subnet?: string;
}

/** @internal What is stored per network. */
export interface NetworkDefinition {
  name: string;
  subnet: string;
  gateway: string;
  bridge: string;
}

function subnetRule(text: string) {
  const block = parseCidr(text, true);
  return {
    validator: block !== undefined && block.prefix >= 8 && block.prefix <= 28,
    message: (label: string) => `Expected ${label} to be an IPv4 subnet from /8 to /28 with no host bits set, such as 10.231.5.0/24; got \`${text}\``,
  };
}

function definitionsDir(): string {
  return join(stateDir(), 'networks');
}

/** @internal Per-boot files of a network: members, lock, the sandboxes' hosts files. */
export function networkRunDir(name: string): string {
  return join(runDir(), 'networks', name);
}

/** @internal host-local's lease directory (it adds the network name). */
export function ipamDir(): string {
  return join(runDir(), 'networks', 'ipam');
}

function bridgeName(name: string): string {
  // IFNAMSIZ is 16: a hash keeps any name short and the prefix marks the bridge as nsbox's.
  return name === DEFAULT_NETWORK ? DEFAULT_NETWORK : `nsb-${createHash('sha256').update(name).digest('hex').slice(0, 8)}`;
}

function readDefinitions(): NetworkDefinition[] {
  let names: string[];
  try {
    names = readdirSync(definitionsDir()).filter((file) => file.endsWith('.json'));
  } catch {
    return [];
  }
  const definitions: NetworkDefinition[] = [];
  for (const file of names) {
    try {
      definitions.push(JSON.parse(readFileSync(join(definitionsDir(), file), 'utf8')) as NetworkDefinition);
    } catch {
      // A file being written, or not ours: skip it.
    }
  }
  return definitions;
}

function pickSubnet(taken: Ipv4Block[]): Ipv4Block {
  for (let i = 0; i < 256; i++) {
    const candidate = { base: (subnetPool.base + i * 256) >>> 0, prefix: 24 };
    if (!taken.some((block) => overlaps(block, candidate))) return candidate;
  }
  throw new SandboxError('ERR_NETWORK', `No free /24 left in ${formatCidr(subnetPool)}: pass a subnet`);
}

function define(name: string, subnet: string | undefined): NetworkDefinition {
  const existing = readDefinitions();
  if (existing.some((network) => network.name === name)) throw new SandboxError('ERR_INVALID_OPTION', `The network "${name}" already exists`);
  const bridge = bridgeName(name);
  const others = existing.map((network) => ({ name: network.name, block: parseCidr(network.subnet)! }));
  // The host's routes, except the network's own bridge (still up from an earlier definition).
  const routes = hostRoutes().filter((route) => route.device !== bridge);
  let block: Ipv4Block;
  if (subnet === undefined) {
    block = pickSubnet([...others.map((o) => o.block), ...routes.map((r) => r.block)]);
  } else {
    block = parseCidr(subnet, true)!;
    const clash = others.find((o) => overlaps(o.block, block));
    if (clash) throw new SandboxError('ERR_INVALID_OPTION', `Invalid network option: subnet ${subnet} overlaps network "${clash.name}" (${formatCidr(clash.block)})`);
    const route = routes.find((r) => overlaps(r.block, block));
    if (route) throw new SandboxError('ERR_INVALID_OPTION', `Invalid network option: subnet ${subnet} overlaps ${formatCidr(route.block)}, routed by the host on ${route.device}`);
  }
  const definition = { name, subnet: formatCidr(block), gateway: formatAddress(nthAddress(block, 1)), bridge };
  mkdirSync(definitionsDir(), { recursive: true, mode: 0o755 });
  writeFileSync(join(definitionsDir(), `${name}.json`), `${JSON.stringify(definition, null, 2)}\n`, { flag: 'wx' });
  return definition;
}

function withDefinitionsLock<T>(fn: () => Promise<T>): Promise<T> {
  mkdirSync(definitionsDir(), { recursive: true, mode: 0o755 });
  return withLock(definitionsDir(), undefined, fn);
}

/**
 * Defines a named bridged network. Its bridge is created when the first sandbox joins.
 *
 * @throws SandboxError ERR_INVALID_OPTION for a bad name or subnet, a subnet that overlaps another
 * network or a route of the host, or a name already taken.
 *
 * @example
 * ```ts
 * import { createNetwork } from 'nsbox';
 * await createNetwork('compose-1');                             // next free /24 of 10.231.0.0/16
 * await createNetwork('lab', { subnet: '10.231.200.0/24' });
 * ```
 */
export async function createNetwork(name: string, options: CreateNetworkOptions = {}): Promise<NetworkInfo> {
  check(name, 'name', networkName);
  check(options, 'options', ow.object.exactShape({ subnet: ow.optional.string.validate(subnetRule) }));
  const definition = await withDefinitionsLock(async () => define(name, options.subnet));
  return { ...definition, sandboxes: [] };
}

/**
 * @internal The network's definition; the default network is defined on first use.
 * @throws SandboxError ERR_NETWORK_NOT_FOUND
 */
export async function getNetwork(name: string): Promise<NetworkDefinition> {
  const found = readDefinitions().find((network) => network.name === name);
  if (found) return found;
  if (name !== DEFAULT_NETWORK) throw new SandboxError('ERR_NETWORK_NOT_FOUND', `No network named "${name}": create it with createNetwork() or \`nsbox network create ${name}\``);
  return withDefinitionsLock(async () => readDefinitions().find((network) => network.name === name) ?? define(name, undefined));
}

/** @internal The ids of the sandboxes attached to a network (member files). */
export function networkMembers(name: string): string[] {
  try {
    return readdirSync(join(networkRunDir(name), 'members'))
      .filter((file) => file.endsWith('.json'))
      .map((file) => file.slice(0, -'.json'.length));
  } catch {
    return [];
  }
}

/**
 * Every defined network with the sandboxes attached to it now.
 *
 * @example
 * ```ts
 * import { listNetworks } from 'nsbox';
 * for (const net of await listNetworks()) console.log(net.name, net.subnet, net.sandboxes.length);
 * ```
 */
export async function listNetworks(): Promise<NetworkInfo[]> {
  return readDefinitions()
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((definition) => ({ ...definition, sandboxes: networkMembers(definition.name) }));
}

/** @internal The nft elements that make a network's bridge known to the rules. Idempotent (`add` of set elements). */
export async function activateNetwork(network: NetworkDefinition): Promise<void> {
  await ensureTables();
  await nftApply(
    `add element inet ${TABLE} bridges { "${network.bridge}" }\n` +
      `add element inet ${TABLE} same_network { "${network.bridge}" . "${network.bridge}" }\n` +
      `add element inet ${TABLE} subnets { ${network.subnet} }\n`,
  );
}

/** @internal Removes the network's nft elements, whichever exist. */
async function deactivateNetwork(network: NetworkDefinition): Promise<void> {
  const lines: string[] = [];
  const has = async (set: string, match: (element: unknown) => boolean) => {
    const [item] = await nftList(['set', 'inet', TABLE, set]);
    return ((item?.set?.elem ?? []) as unknown[]).some(match);
  };
  if (await has('bridges', (e) => e === network.bridge)) lines.push(`delete element inet ${TABLE} bridges { "${network.bridge}" }`);
  if (await has('same_network', (e) => JSON.stringify(e) === JSON.stringify({ concat: [network.bridge, network.bridge] })))
    lines.push(`delete element inet ${TABLE} same_network { "${network.bridge}" . "${network.bridge}" }`);
  const block = parseCidr(network.subnet)!;
  if (await has('subnets', (e) => JSON.stringify(e) === JSON.stringify({ prefix: { addr: formatAddress(block.base), len: block.prefix } })))
    lines.push(`delete element inet ${TABLE} subnets { ${network.subnet} }`);
  if (lines.length > 0) await nftApply(`${lines.join('\n')}\n`);
}

/**
 * Removes a network: its bridge, its nft elements, its address leases and its definition.
 *
 * @throws SandboxError ERR_NETWORK_NOT_FOUND when there is no such network; ERR_NETWORK while
 * sandboxes are attached to it.
 *
 * @example
 * ```ts
 * import { removeNetwork } from 'nsbox';
 * await removeNetwork('compose-1');
 * ```
 */
export async function removeNetwork(name: string): Promise<void> {
  check(name, 'name', networkName);
  // The host-side plumbing (bridge, nft) is root's; a rootless network lives in its keeper.
  if (isRoot()) await collectLeftoverNetworks();
  await withDefinitionsLock(async () => {
    const network = readDefinitions().find((n) => n.name === name);
    if (!network) throw new SandboxError('ERR_NETWORK_NOT_FOUND', `No network named "${name}"`);
    await withLock(ensureDir(networkRunDir(name)), undefined, async () => {
      const members = networkMembers(name);
      if (members.length > 0) throw new SandboxError('ERR_NETWORK', `The network "${name}" is in use by ${members.length} sandbox(es): ${members.join(', ')}`);
      if (isRoot()) {
        deleteLink(network.bridge);
        if (await tablesExist()) await deactivateNetwork(network);
      }
      rmSync(join(ipamDir(), name), { recursive: true, force: true });
      rmSync(join(definitionsDir(), `${name}.json`), { force: true });
    });
    rmSync(networkRunDir(name), { recursive: true, force: true });
  });
}

async function tablesExist(): Promise<boolean> {
  return (await nftList(['table', 'inet', TABLE])).length > 0;
}

/** @internal */
export function ensureDir(dir: string): string {
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  return dir;
}
