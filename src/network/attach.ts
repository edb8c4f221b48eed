// SPDX-License-Identifier: Apache-2.0
// A sandbox joins a bridged network before it starts: a network namespace of its own, a veth on
// the network's bridge with a leased address (CNI bridge + host-local), its nft rules, its hosts
// file and resolv.conf. The sandbox's child only has to setns() into the namespace.
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import ow from 'ow';
import { SandboxError } from '../errors.js';
import { isRoot, runDir } from '../paths.js';
import { withLock } from '../store/lock.js';
import { runCniDelSync, runCniPlugin } from './cni.js';
import { collectLeftoverNetworks } from './collect.js';
import { egressShape, type EgressPolicy } from './egress.js';
import { hostNameservers, membersDir, readMembers, refreshHostsFiles, removeSandboxFiles, writeSandboxFiles } from './hosts.js';
import { activateNetwork, DEFAULT_NETWORK, ensureDir, getNetwork, ipamDir, networkRunDir, type NetworkDefinition } from './networks.js';
import { parseAddress } from './ipv4.js';
import { createNetns, removeNetns } from './netns.js';
import { portMappingShape, reservePorts, resolveMappings, type PortMapping, type PortReservation, type ResolvedPortMapping } from './publish.js';
import { addSandboxRules, removeRulesOf, removeSandboxRules, removeSandboxRulesSync, type SandboxRules } from './rules.js';
import { check, networkNamePattern } from './validate.js';

/**
 * What {@link attachSandbox} needs.
 *
 * @example
 * ```ts
 * const options: AttachOptions = {
 *   id: '48213x9f3c0a7be41d2c55',
 *   name: 'db',
 *   network: 'compose-1',
 *   publish: [{ host: 15432, container: 5432 }],
 *   egress: { default: 'deny' },
 * };
 * ```
 */
export interface AttachOptions {
  /** The sandbox id, `<host pid>x<16 hex digits>` (names every host object, so a crashed host's leftovers are found). */
  id: string;
  /** The name the network's other members reach this sandbox by (its hostname). Unique on the network. */
  name: string;
  /** The network to join. Default 'nsbox0', made on first use. */
  network?: string;
  /** Host ports forwarded to the sandbox. */
  publish?: PortMapping[];
  /** What the sandbox may reach. Default: everything but the host. */
  egress?: EgressPolicy;
}

/**
 * A sandbox's place on a network. Start the sandbox in `netnsPath` and bind `hostsFile` and
 * `resolvConf` read-only onto /etc/hosts and /etc/resolv.conf; call `release()` when it is gone.
 *
 * @example
 * ```ts
 * import { attachSandbox } from 'nsbox';
 * const attachment: NetworkAttachment = await attachSandbox({ id, name: 'web', publish: [{ host: 8080, container: 80 }] });
 * try {
 *   // … start the sandbox with setns(open(attachment.netnsPath), CLONE_NEWNET) …
 * } finally {
 *   await attachment.release();
 * }
 * ```
 */
export interface NetworkAttachment {
  /** The network's name. */
  network: string;
  /** The persistent network namespace to join. */
  netnsPath: string;
  /** The sandbox's IPv4 address (eth0). */
  address: string;
  /** The prefix length of its subnet. */
  prefixLength: number;
  /** Its default gateway: the bridge. */
  gateway: string;
  /** A hosts file listing every member of the network, kept current while members come and go. */
  hostsFile: string;
  /** A resolv.conf with the host's (non-loopback) nameservers. */
  resolvConf: string;
  /** The host ports published, with defaults filled in. */
  publish: ResolvedPortMapping[];
  /** Removes everything the attachment made: rules, veth, address lease, namespace, files, held ports. Idempotent. */
  release(): Promise<void>;
}

/** @internal What a crashed host leaves for the next one to undo, kept in `<run dir>/networks/sandboxes/<id>.json`. */
export interface AttachmentRecord {
  id: string;
  network: string;
  netns?: string;
  netconf?: NetconfBridge;
  /** Once added: what the sandbox's nft objects were made from, to delete exactly those. */
  rules?: SandboxRules;
}

type NetconfBridge = Record<string, unknown> & { type: 'bridge'; name: string };

const idPattern = /^[1-9][0-9]{0,9}x[0-9a-f]{16}$/;
const hostnamePattern = /^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,62})$/;

const attachShape = ow.object.exactShape({
  id: ow.string.matches(idPattern),
  name: ow.string.matches(hostnamePattern),
  network: ow.optional.string.matches(networkNamePattern),
  publish: ow.optional.array.maxLength(1024).ofType(portMappingShape),
  egress: ow.optional.object,
});

/** @internal */
export function recordsDir(): string {
  return join(runDir(), 'networks', 'sandboxes');
}

function writeRecord(record: AttachmentRecord): void {
  writeFileSync(join(ensureDir(recordsDir()), `${record.id}.json`), JSON.stringify(record));
}

/** @internal */
export function readRecord(file: string): AttachmentRecord | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as AttachmentRecord;
  } catch {
    return undefined;
  }
}

function netconf(network: NetworkDefinition): NetconfBridge {
  return {
    name: network.name,
    type: 'bridge',
    bridge: network.bridge,
    isGateway: true,
    ipMasq: false, // nsbox's own nft table masquerades, once per network
    hairpinMode: true, // a sandbox reaches its own published port through a host address
    ipam: { type: 'host-local', ranges: [[{ subnet: network.subnet, gateway: network.gateway }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: ipamDir() },
  };
}

function lockNetwork<T>(network: string, fn: () => Promise<T>): Promise<T> {
  return withLock(ensureDir(networkRunDir(network)), undefined, fn);
}

let leftovers: Promise<unknown> | undefined;

/**
 * Puts a sandbox on a bridged network before it starts. Nothing is left behind when it throws.
 *
 * @throws SandboxError ERR_INVALID_OPTION for bad options or a name another member has;
 * ERR_NETWORK_NOT_FOUND for an unknown network; ERR_PORT_IN_USE when a host port is taken;
 * ERR_UNSUPPORTED when the CNI plugins or nft are missing; ERR_NETWORK when the plumbing fails.
 *
 * @example
 * ```ts
 * import { attachSandbox, createNetwork } from 'nsbox';
 * await createNetwork('compose-1');
 * const db = await attachSandbox({ id: dbId, name: 'db', network: 'compose-1' });
 * const app = await attachSandbox({ id: appId, name: 'app', network: 'compose-1', publish: [{ host: 8080, container: 80 }] });
 * // app reaches db as http://db:5432 through app.hostsFile; the host reaches app on 127.0.0.1:8080.
 * await app.release();
 * await db.release();
 * ```
 */
export async function attachSandbox(options: AttachOptions): Promise<NetworkAttachment> {
  check(options, 'options', attachShape);
  if (options.egress !== undefined) check(options.egress, 'options.egress', egressShape);
  const { id, name } = options;
  const networkName = options.network ?? DEFAULT_NETWORK;
  const mappings = resolveMappings(options.publish ?? []);
  if (!isRoot()) {
    throw new SandboxError(
      'ERR_UNSUPPORTED',
      'Bridged networks need root (a bridge, veths and nftables rules in the host namespace); rootless networking (pasta/slirp4netns) is not implemented yet: use network \'none\' or \'host\'',
    );
  }
  if (options.egress && !bridgedTrafficIsFiltered()) {
    throw new SandboxError(
      'ERR_UNSUPPORTED',
      'Egress rules need the kernel to pass bridged traffic through the IP hooks, or sandboxes on one network would bypass them: load br_netfilter and set net.bridge.bridge-nf-call-iptables=1',
    );
  }
  leftovers ??= collectLeftoverNetworks().catch(() => 0);
  await leftovers;
  const network = await getNetwork(networkName);
  const resolv = hostNameservers();
  const record: AttachmentRecord = { id, network: network.name };
  const ports = await reservePorts(mappings);
  let joined = false;
  try {
    await lockNetwork(network.name, async () => {
      // Names resolve case-insensitively.
      const taken = readMembers(network.name).find((member) => member.name.toLowerCase() === name.toLowerCase());
      if (taken) throw new SandboxError('ERR_INVALID_OPTION', `Invalid network option: the name "${name}" is already used on network "${network.name}" by sandbox ${taken.id}`);
      // Before anything is written: undoing a second attach of one id would undo the first.
      if (existsSync(join(recordsDir(), `${id}.json`))) throw new SandboxError('ERR_INVALID_OPTION', `Invalid network option: sandbox ${id} is already attached to a network`);
      writeRecord(record);
      writeFileSync(join(ensureDir(membersDir(network.name)), `${id}.json`), JSON.stringify({ id, name, address: '' }), { flag: 'wx' });
      joined = true;
    });
    await activateNetwork(network);
    record.netns = createNetns(id);
    record.netconf = netconf(network);
    writeRecord(record);
    // Loopback is already up (the addon brings it up): one plugin run, not two.
    const result = await runCniPlugin('ADD', record.netconf, { containerId: id, netns: record.netns, ifname: 'eth0' });
    const [address, prefix] = (result?.ips?.[0]?.address ?? '').split('/');
    const veth = result?.interfaces?.find((i) => !i.sandbox && i.name !== network.bridge)?.name;
    if (!address || !prefix || !veth) throw new SandboxError('ERR_NETWORK', `The CNI bridge plugin returned no address or host veth: ${JSON.stringify(result)}`);
    // Ports published on 127.0.0.1 reach the bridge with a loopback source until masqueraded.
    writeFileSync(`/proc/sys/net/ipv4/conf/${network.bridge}/route_localnet`, '1');
    record.rules = { id, address, veth, publish: mappings, egress: options.egress, nameservers: resolv.nameservers };
    await addSandboxRules(record.rules);
    writeRecord(record);
    const files = await lockNetwork(network.name, async () => {
      writeFileSync(join(membersDir(network.name), `${id}.json`), JSON.stringify({ id, name, address }));
      const written = writeSandboxFiles(network.name, id, resolv);
      refreshHostsFiles(network.name);
      return written;
    });
    let released: Promise<void> | undefined;
    watchExit();
    live.set(id, record);
    return {
      network: network.name,
      netnsPath: record.netns,
      address,
      prefixLength: Number(prefix),
      gateway: network.gateway,
      hostsFile: files.hostsFile,
      resolvConf: files.resolvConf,
      publish: mappings,
      release: () =>
        (released ??= (async () => {
          live.delete(id);
          await undo(record, ports, true);
        })()),
    };
  } catch (error) {
    if (joined) await undo(record, ports, true).catch(() => undefined);
    else await ports.release();
    throw error;
  }
}

// Attachments of this process not yet released: undone synchronously if the process exits first
// (sandboxes die with their host; their networks should not wait for the next start's collection).
const live = new Map<string, AttachmentRecord>();
let exitWatched = false;

function watchExit(): void {
  if (exitWatched) return;
  exitWatched = true;
  process.once('exit', () => {
    for (const record of live.values()) undoSync(record);
  });
}

// Best effort, without the network lock (nothing asynchronous runs in an exit handler); what
// fails stays recorded for collectLeftoverNetworks().
function undoSync(record: AttachmentRecord): void {
  const { id, network } = record;
  const attempt = (step: () => unknown) => {
    try {
      step();
      return true;
    } catch {
      return false;
    }
  };
  let clean = !record.rules || attempt(() => removeSandboxRulesSync(record.rules!));
  if (record.netns && record.netconf && existsSync(record.netns)) clean = attempt(() => runCniDelSync(record.netconf!, { containerId: id, netns: record.netns!, ifname: 'eth0' })) && clean;
  clean = attempt(() => releaseLeases(network, (owner) => owner === id)) && clean;
  if (record.netns) clean = attempt(() => removeNetns(record.netns!)) && clean;
  clean =
    attempt(() => {
      rmSync(join(membersDir(network), `${id}.json`), { force: true });
      removeSandboxFiles(network, id);
      refreshHostsFiles(network);
    }) && clean;
  if (clean) rmSync(join(recordsDir(), `${id}.json`), { force: true });
}

function bridgedTrafficIsFiltered(): boolean {
  try {
    return readFileSync('/proc/sys/net/bridge/bridge-nf-call-iptables', 'utf8').trim() === '1';
  } catch {
    return false;
  }
}

/**
 * @internal Undoes an attachment, in the reverse order of making it: rules first (so a released
 * address never meets the old rules), then the veth and the lease, the namespace, the member.
 */
export async function undo(record: AttachmentRecord, ports: PortReservation | undefined, member: boolean): Promise<void> {
  const { id, network } = record;
  const errors: unknown[] = [];
  const attempt = async (step: () => unknown) => {
    try {
      await step();
    } catch (error) {
      errors.push(error);
    }
  };
  await attempt(async () => {
    // What was added, deleted by name in one transaction; if anything is amiss, found by listing.
    if (!record.rules || !(await removeSandboxRules(record.rules).then(() => true, () => false))) await removeRulesOf((owner) => owner === id);
  });
  if (record.netns && record.netconf && existsSync(record.netns)) {
    await attempt(() => runCniPlugin('DEL', record.netconf!, { containerId: id, netns: record.netns!, ifname: 'eth0' }));
  }
  // A DEL that failed (or never ran) must not keep the address: host-local's lease files hold the id.
  await attempt(() => releaseLeases(network, (owner) => owner === id));
  if (record.netns) await attempt(() => removeNetns(record.netns!));
  await attempt(() => ports?.release());
  if (member) {
    await attempt(() =>
      lockNetwork(network, async () => {
        rmSync(join(membersDir(network), `${id}.json`), { force: true });
        removeSandboxFiles(network, id);
        refreshHostsFiles(network);
      }),
    );
  } else {
    await attempt(() => removeSandboxFiles(network, id));
  }
  if (errors.length === 0) rmSync(join(recordsDir(), `${id}.json`), { force: true });
  if (errors.length > 0) throw new SandboxError('ERR_NETWORK', `Releasing the network of sandbox ${id} failed: ${errors.map((e) => (e as Error).message).join('; ')}`, { cause: errors[0] });
}

/**
 * @internal Removes host-local lease files whose holder `owned` accepts, and returns the holders. A
 * lease file is named by the address and holds "<container id>\r\n<ifname>"; `lock` and
 * `last_reserved_ip.*` are not leases.
 */
export function releaseLeases(network: string, owned: (id: string) => boolean): string[] {
  const dir = join(ipamDir(), network);
  const holders: string[] = [];
  let files: string[];
  try {
    files = readdirSync(dir);
  } catch {
    return holders;
  }
  for (const file of files) {
    if (parseAddress(file) === undefined) continue;
    let holder: string;
    try {
      holder = readFileSync(join(dir, file), 'utf8').split(/\r?\n/)[0]!.trim();
    } catch {
      continue;
    }
    if (!owned(holder)) continue;
    rmSync(join(dir, file), { force: true });
    holders.push(holder);
  }
  return holders;
}
