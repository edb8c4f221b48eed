// SPDX-License-Identifier: Apache-2.0
// Name resolution for bridged sandboxes: a hosts file per sandbox listing every member of its
// network (rewritten in place as members come and go, since sandboxes see it through a bind
// mount of that inode), and a resolv.conf with the host's nameservers.
import { closeSync, existsSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { parseAddress } from './ipv4.js';
import { networkRunDir } from './networks.js';

/** @internal One member of a network, as its member file stores it. */
export interface Member {
  id: string;
  name: string;
  address: string;
}

/** @internal */
export function membersDir(network: string): string {
  return join(networkRunDir(network), 'members');
}

/** @internal The sandbox's hosts file and resolv.conf live here. */
export function filesDir(network: string, id: string): string {
  return join(networkRunDir(network), 'files', id);
}

/** @internal */
export function readMembers(network: string): Member[] {
  let files: string[];
  try {
    files = readdirSync(membersDir(network)).filter((file) => file.endsWith('.json'));
  } catch {
    return [];
  }
  const members: Member[] = [];
  for (const file of files) {
    try {
      members.push(JSON.parse(readFileSync(join(membersDir(network), file), 'utf8')) as Member);
    } catch {
      // Removed meanwhile.
    }
  }
  return members.sort((a, b) => a.name.localeCompare(b.name));
}

function hostsContent(members: Member[]): string {
  const lines = ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback', ...members.filter((m) => m.address).map((m) => `${m.address}\t${m.name}`)];
  return `${lines.join('\n')}\n`;
}

// In place, never by rename: a sandbox's bind mount holds the inode. Written whole, then cut to
// length, so a reader sees the old or the new list (at worst with the old tail), never an empty file.
function rewriteInPlace(path: string, content: string): void {
  let fd: number;
  try {
    fd = openSync(path, 'r+');
  } catch {
    return; // Its sandbox is being released.
  }
  try {
    const bytes = Buffer.from(content);
    writeSync(fd, bytes, 0, bytes.length, 0);
    ftruncateSync(fd, bytes.length);
  } finally {
    closeSync(fd);
  }
}

/** @internal Rewrites every member's hosts file. Call with the network's lock held. */
export function refreshHostsFiles(network: string): void {
  const members = readMembers(network);
  const content = hostsContent(members);
  for (const member of members) rewriteInPlace(join(filesDir(network, member.id), 'hosts'), content);
}

/** @internal The nameservers the sandbox can use: the host's, without loopback ones (they would be the sandbox's own loopback). */
export function hostNameservers(): { nameservers: string[]; search: string[]; options: string[]; note?: string } {
  const read = (file: string) => {
    try {
      return readFileSync(file, 'utf8');
    } catch {
      return '';
    }
  };
  const parse = (text: string) => {
    const nameservers: string[] = [];
    const search: string[] = [];
    const options: string[] = [];
    for (const line of text.split('\n')) {
      const [key, ...values] = line.trim().split(/\s+/);
      if (key === 'nameserver' && values[0] && parseAddress(values[0]) !== undefined) nameservers.push(values[0]);
      else if (key === 'search' || key === 'domain') search.push(...values);
      else if (key === 'options') options.push(...values);
    }
    return { nameservers, search, options };
  };
  const host = parse(read('/etc/resolv.conf'));
  const isLoopback = (address: string) => address.startsWith('127.');
  let usable = host.nameservers.filter((address) => !isLoopback(address));
  if (usable.length === 0 && host.nameservers.length > 0) {
    // systemd-resolved's stub (127.0.0.53) is unreachable from a sandbox; its upstream list is not.
    const upstream = parse(read('/run/systemd/resolve/resolv.conf'));
    usable = upstream.nameservers.filter((address) => !isLoopback(address));
    if (usable.length === 0)
      return { ...host, nameservers: [], note: `the host resolves names through ${host.nameservers.join(', ')} on its loopback, which a sandbox cannot reach; pass nameservers to use` };
  }
  return { ...host, nameservers: usable };
}

/** @internal Writes the sandbox's two files (hosts starts with the current members; refreshed later). */
export function writeSandboxFiles(network: string, id: string, resolv: ReturnType<typeof hostNameservers>): { hostsFile: string; resolvConf: string } {
  const dir = filesDir(network, id);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const hostsFile = join(dir, 'hosts');
  const resolvConf = join(dir, 'resolv.conf');
  writeFileSync(hostsFile, hostsContent(readMembers(network)), { mode: 0o644 });
  const lines = [
    '# Written by nsbox from the host\'s resolv.conf.',
    ...(resolv.note ? [`# No nameserver: ${resolv.note}.`] : []),
    ...resolv.nameservers.map((address) => `nameserver ${address}`),
    ...(resolv.search.length > 0 ? [`search ${resolv.search.join(' ')}`] : []),
    ...(resolv.options.length > 0 ? [`options ${resolv.options.join(' ')}`] : []),
  ];
  writeFileSync(resolvConf, `${lines.join('\n')}\n`, { mode: 0o644 });
  return { hostsFile, resolvConf };
}

/** @internal */
export function removeSandboxFiles(network: string, id: string): void {
  if (existsSync(filesDir(network, id))) rmSync(filesDir(network, id), { recursive: true, force: true });
}
