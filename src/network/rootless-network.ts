// SPDX-License-Identifier: Apache-2.0
// Named networks for sandboxes in a user namespace (rootless). Members must reach each other,
// but each rootless sandbox's network namespace belongs to its own user namespace, and no
// unprivileged process holds CAP_NET_ADMIN over two sibling ones. So, as rootless Podman does,
// the network gets a keeper: a sandbox holding a user and network namespace of its own, with
// the network's bridge inside and pasta as its uplink. Members are started inside the keeper's
// user namespace (the addon's intermediate child enters it before it makes the member's
// namespaces), so CNI's bridge plugin, run inside the keeper, can give each its veth. Names
// resolve through the same member hosts files as on a rootful network. One keeper per network
// and host process: members started by another process are on a keeper of their own.
import { execFile } from 'node:child_process';
import { closeSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Sandbox, unlist } from '../box/sandbox.js';
import { SandboxError } from '../errors.js';
import { netconfPath } from '../native/binding.js';
import { withLock } from '../store/lock.js';
import { CNI_VERSION, cniPath, findPlugin } from './cni.js';
import { ownerIsDead } from './collect.js';
import type { EgressPolicy } from './egress.js';
import { hostNameservers, membersDir, readMembers, refreshHostsFiles, removeSandboxFiles, writeSandboxFiles } from './hosts.js';
import { formatAddress, nthAddress, parseAddress, parseCidr } from './ipv4.js';
import { ensureDir, getNetwork, networkRunDir, type NetworkDefinition } from './networks.js';
import { nftCommand } from './nft.js';
import { reservePorts, resolveMappings, type PortMapping } from './publish.js';
import { checkTun, collectLeftoverUserModeNetworks, DNS_FORWARD, egressCommand, pastaCarrier, pastaPath, userModeDir, type UserModeAttachment } from './user-mode.js';

/** @internal A member's attachment: also the keeper's user namespace to start it in. */
export interface RootlessMemberAttachment extends UserModeAttachment {
  keeperUsernsPath: string;
}

interface Keeper {
  box: Sandbox;
  members: number;
  // Its user and network namespaces, held open by this process and reached through
  // /proc/<this pid>/fd/N: a path that cannot come to name another process's namespaces
  // should the keeper's pid be reused.
  usernsPath: string;
  netnsPath: string;
  remove(): Promise<void>;
}

const keepers = new Map<string, Promise<Keeper>>();

function inKeeper(usernsPath: string, netnsPath: string, argv: string[], input: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = execFile(netconfPath(), [usernsPath, netnsPath, ...argv], { timeout: 30_000 }, (error, _stdout, stderr) =>
      error ? reject(new SandboxError('ERR_NETWORK', `Setting up the network keeper failed: ${stderr.trim() || error.message}`, { cause: error })) : resolve(),
    );
    child.stdin!.on('error', () => undefined); // a helper that failed early: its exit says why
    child.stdin!.end(input);
  });
}

async function startKeeper(network: NetworkDefinition): Promise<Keeper> {
  // A crashed host's keepers died with it, but not their pastas.
  collectLeftoverUserModeNetworks();
  // Its uplink is the user-mode network of network 'bridge'; members leave through it, masqueraded.
  const box = await Sandbox.create({ image: 'host', userns: true, network: 'bridge', cgroup: false, hostname: `keeper-${network.name}`.slice(0, 63) });
  unlist(box);
  const fds: number[] = [];
  const remove = async () => {
    fds.splice(0).forEach((fd) => closeSync(fd));
    await box.remove();
  };
  try {
    for (const ns of ['user', 'net']) fds.push(openSync(`/proc/${box.pid}/ns/${ns}`, 'r'));
    const [usernsPath, netnsPath] = fds.map((fd) => `/proc/${process.pid}/fd/${fd}`) as [string, string];
    const nat = ['table ip nsbox_nat {', '  chain postrouting {', '    type nat hook postrouting priority srcnat; policy accept;', `    ip saddr ${network.subnet} oifname "eth0" masquerade`, '  }', '}', ''].join('\n');
    await inKeeper(usernsPath, netnsPath, [nftCommand(), '-f', '-'], nat);
    return { box, members: 0, usernsPath, netnsPath, remove };
  } catch (error) {
    await remove();
    throw error;
  }
}

function keeperOf(network: NetworkDefinition): Promise<Keeper> {
  let keeper = keepers.get(network.name);
  if (!keeper) {
    keeper = startKeeper(network);
    keepers.set(network.name, keeper);
    keeper.catch(() => keepers.delete(network.name));
  }
  return keeper;
}

// The lowest address of the subnet that is neither the network's own, its gateway, its
// broadcast nor a member's.
function freeAddress(network: NetworkDefinition): string {
  const block = parseCidr(network.subnet)!;
  const taken = new Set(readMembers(network.name).map((m) => parseAddress(m.address)));
  taken.add(parseAddress(network.gateway));
  const size = 2 ** (32 - block.prefix);
  for (let n = 1; n < size - 1; n++) {
    const address = nthAddress(block, n);
    if (!taken.has(address)) return formatAddress(address);
  }
  throw new SandboxError('ERR_NETWORK', `Network "${network.name}" has no free address left in ${network.subnet}`);
}

/**
 * @internal Puts a sandbox in a user namespace on a named network. Its namespaces are made
 * inside the keeper's user namespace (`keeperUsernsPath`); the addon runs `setupCommands` (its
 * egress rules, then CNI bridge ADD from inside the keeper) while its child waits.
 */
export async function attachRootlessMember(options: { id: string; name: string; network: string; egress?: EgressPolicy; publish: PortMapping[] }): Promise<RootlessMemberAttachment> {
  const { id, name } = options;
  const publish = resolveMappings(options.publish);
  const remote = publish.find((m) => !m.hostIp.startsWith('127.'));
  if (remote) {
    throw new SandboxError(
      'ERR_UNSUPPORTED',
      `A sandbox on a named network in a user namespace publishes on the host's loopback only (pasta splices those connections into it); ${remote.hostIp}:${remote.host} is not: run as root to publish on other addresses`,
    );
  }
  const network = await getNetwork(options.network);
  let carrier: ReturnType<typeof pastaCarrier> | undefined;
  if (publish.length > 0) {
    checkTun();
    await (await reservePorts(publish)).release();
    carrier = pastaCarrier(userModeDir(id), pastaPath(), publish, false);
  }
  const bridgePlugin = findPlugin('bridge');
  findPlugin('static');
  nftCommand(); // ERR_UNSUPPORTED before anything is made
  // Counted in the same turn as the check that this keeper is still the network's: a last
  // member's release may be taking it down meanwhile (then start over with a new one).
  let keeperPromise: Promise<Keeper>;
  let keeper: Keeper;
  for (;;) {
    keeperPromise = keeperOf(network);
    keeper = await keeperPromise;
    if (keepers.get(network.name) !== keeperPromise) continue;
    if (keeper.box.state === 'running') break;
    // Its pid 1 ended (killed from outside): the network went with its uplink; a new keeper.
    keepers.delete(network.name);
    await keeper.remove().catch(() => undefined);
  }
  keeper.members++;
  const resolv = hostNameservers();
  let address = '';
  let joined = false;
  let released: Promise<void> | undefined;
  const release = () =>
    (released ??= (async () => {
      try {
        await carrier?.stop();
        if (joined) {
          await withLock(ensureDir(networkRunDir(network.name)), undefined, async () => {
            rmSync(join(membersDir(network.name), `${id}.json`), { force: true });
            removeSandboxFiles(network.name, id);
            refreshHostsFiles(network.name);
          });
        }
      } finally {
        if (--keeper.members === 0 && keepers.get(network.name) === keeperPromise) {
          keepers.delete(network.name);
          await keeper.remove();
        }
      }
    })());
  try {
    const files = await withLock(ensureDir(networkRunDir(network.name)), undefined, async () => {
      // Members of crashed hosts (their sandboxes died with them) give up their names and addresses.
      for (const member of readMembers(network.name).filter((m) => ownerIsDead(m.id))) {
        rmSync(join(membersDir(network.name), `${member.id}.json`), { force: true });
        removeSandboxFiles(network.name, member.id);
      }
      const taken = readMembers(network.name).find((member) => member.name.toLowerCase() === name.toLowerCase());
      if (taken) throw new SandboxError('ERR_INVALID_OPTION', `Invalid network option: the name "${name}" is already used on network "${network.name}" by sandbox ${taken.id}`);
      address = freeAddress(network);
      writeFileSync(join(ensureDir(membersDir(network.name)), `${id}.json`), JSON.stringify({ id, name, address }), { flag: 'wx' });
      joined = true;
      const written = writeSandboxFiles(network.name, id, { ...resolv, nameservers: [DNS_FORWARD], note: undefined });
      refreshHostsFiles(network.name);
      return written;
    });
    const prefix = parseCidr(network.subnet)!.prefix;
    const netconf = {
      cniVersion: CNI_VERSION,
      name: network.name,
      type: 'bridge',
      bridge: network.bridge,
      isGateway: true,
      ipMasq: false, // the keeper's own nft rule masquerades
      hairpinMode: true,
      ipam: { type: 'static', addresses: [{ address: `${address}/${prefix}`, gateway: network.gateway }], routes: [{ dst: '0.0.0.0/0' }] },
    };
    const cniEnv = [`CNI_COMMAND=ADD`, `CNI_CONTAINERID=${id}`, 'CNI_NETNS=/proc/{pid}/ns/net', 'CNI_IFNAME=eth0', `CNI_PATH=${cniPath()}`, `PATH=${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}`];
    return {
      network: network.name,
      netnsPath: '',
      address,
      prefixLength: prefix,
      gateway: network.gateway,
      hostsFile: files.hostsFile,
      resolvConf: files.resolvConf,
      publish,
      keeperUsernsPath: keeper.usernsPath,
      setupCommands: [
        egressCommand(options.egress),
        // CNI's bridge plugin inside the keeper: the bridge and the member's veth, from there.
        { argv: [netconfPath(), keeper.usernsPath, keeper.netnsPath, '/usr/bin/env', '-i', ...cniEnv, bridgePlugin], input: JSON.stringify(netconf) },
        ...(carrier ? [carrier.command] : []),
      ],
      release,
    };
  } catch (error) {
    await release();
    throw error;
  }
}
