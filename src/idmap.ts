// SPDX-License-Identifier: Apache-2.0
// Which user namespace a sandbox gets and how its uid/gid maps read.
import { existsSync, readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { UsernsMode } from './native/native.js';

/** @internal */
export interface IdMapping {
  mode: UsernsMode;
  uidMap: string;
  gidMap: string;
  newuidmapPath: string;
  newgidmapPath: string;
}

const HELPERS = ['/usr/bin/newuidmap', '/usr/bin/newgidmap'] as const;
// Container ids 1..65536 come from the subordinate range (as rootless Podman maps them).
const SUB_IDS = 65536;

/** @internal The first subordinate range /etc/subuid (or subgid) grants this user, by name or id. */
export function subordinateRange(file: string, name: string, id: number): { start: number; count: number } | undefined {
  if (!existsSync(file)) return undefined;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const [owner, start, count] = line.trim().split(':');
    if ((owner === name || owner === String(id)) && /^\d+$/.test(start ?? '') && /^\d+$/.test(count ?? '') && Number(count) > 0)
      return { start: Number(start), count: Number(count) };
  }
  return undefined;
}

/**
 * @internal
 * - root without `userns`: no user namespace (capabilities are dropped instead, as Docker does);
 * - root with `userns`: the identity map, written by the parent: ids unchanged, capabilities
 *   confined to the sandbox's namespaces;
 * - another user with /etc/subuid and /etc/subgid ranges and newuidmap installed: container
 *   root = the user, ids 1…65536 from the ranges (newuidmap/newgidmap);
 * - otherwise: a one-id map, container uid/gid = the workload's, mapped to the user's own ids.
 */
export function idMapping(userns: boolean, targetUid: number, targetGid: number): IdMapping {
  const none = { newuidmapPath: '', newgidmapPath: '' };
  const uid = process.geteuid!();
  const gid = process.getegid!();
  if (uid === 0) {
    if (!userns) return { mode: UsernsMode.None, uidMap: '', gidMap: '', ...none };
    return { mode: UsernsMode.ParentWrite, uidMap: '0 0 4294967295\n', gidMap: '0 0 4294967295\n', ...none };
  }
  const name = userInfo().username;
  const subUid = subordinateRange('/etc/subuid', name, uid);
  const subGid = subordinateRange('/etc/subgid', name, uid);
  if (subUid && subGid && HELPERS.every((h) => existsSync(h))) {
    return {
      mode: UsernsMode.ParentHelper,
      uidMap: `0 ${uid} 1\n1 ${subUid.start} ${Math.min(subUid.count, SUB_IDS)}\n`,
      gidMap: `0 ${gid} 1\n1 ${subGid.start} ${Math.min(subGid.count, SUB_IDS)}\n`,
      newuidmapPath: HELPERS[0],
      newgidmapPath: HELPERS[1],
    };
  }
  return { mode: UsernsMode.Self, uidMap: `${targetUid} ${uid} 1\n`, gidMap: `${targetGid} ${gid} 1\n`, ...none };
}
