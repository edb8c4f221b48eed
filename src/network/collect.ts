// SPDX-License-Identifier: Apache-2.0
// What a crashed host left on the network side, found by the host pid in each sandbox id and removed.
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { readRecord, recordsDir, releaseLeases, undo } from './attach.js';
import { membersDir, refreshHostsFiles, removeSandboxFiles } from './hosts.js';
import { ipamDir } from './networks.js';
import { listNetns, netnsDir, removeNetns } from './netns.js';
import { removeRulesOf } from './rules.js';
import { runDir } from '../paths.js';
import { isProcessAlive, SANDBOX_ID_PATTERN } from '../sandbox-id.js';
import { withLock } from '../store/lock.js';



/** @internal True for a sandbox id whose host process is gone. */
export function ownerIsDead(id: string): boolean {
  const owner = SANDBOX_ID_PATTERN.exec(id)?.[1];
  return owner !== undefined && Number(owner) !== process.pid && !isProcessAlive(Number(owner));
}

function list(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/**
 * Removes what sandboxes of crashed host processes left on the network side: their nft chains and
 * elements, veths (through CNI DEL or with their namespace), address leases, namespace files,
 * member entries in other sandboxes' hosts files. A sandbox belongs to a crashed host when the
 * host pid in its id (`<host pid>x<hex>`) is no longer alive. Runs once by itself before a
 * process attaches its first sandbox.
 *
 * @returns The number of sandboxes something was removed for.
 *
 * @example
 * ```ts
 * import { collectLeftoverNetworks } from 'nsbox';
 * const collected = await collectLeftoverNetworks();
 * if (collected > 0) console.warn(`cleaned the networks of ${collected} crashed sandboxes`);
 * ```
 */
export async function collectLeftoverNetworks(): Promise<number> {
  const collected = new Set<string>();
  const failures: unknown[] = [];
  // With a record, the whole attachment is undone as its owner would have (CNI DEL included).
  for (const file of list(recordsDir())) {
    const id = file.replace(/\.json$/, '');
    if (!ownerIsDead(id)) continue;
    const record = readRecord(join(recordsDir(), file));
    if (!record) {
      rmSync(join(recordsDir(), file), { force: true });
      continue;
    }
    collected.add(id);
    await undo(record, undefined, true).catch((error) => failures.push(error));
  }
  // Without one (a crash between steps, or a record lost), each kind of object on its own.
  for (const id of await removeRulesOf(ownerIsDead)) collected.add(id);
  for (const id of listNetns()) {
    if (!ownerIsDead(id)) continue;
    collected.add(id);
    try {
      removeNetns(join(netnsDir(), id));
    } catch (error) {
      failures.push(error);
    }
  }
  for (const network of list(ipamDir())) for (const id of releaseLeases(network, ownerIsDead)) collected.add(id);
  for (const network of list(join(runDir(), 'networks'))) {
    const dead = list(membersDir(network))
      .map((file) => file.replace(/\.json$/, ''))
      .filter(ownerIsDead);
    if (dead.length === 0) continue;
    await withLock(join(runDir(), 'networks', network), undefined, async () => {
      for (const id of dead) {
        collected.add(id);
        rmSync(join(membersDir(network), `${id}.json`), { force: true });
        removeSandboxFiles(network, id);
      }
      refreshHostsFiles(network);
    }).catch((error) => failures.push(error));
  }
  void failures; // What could not be removed now is tried again on the next call.
  return collected.size;
}
