// SPDX-License-Identifier: Apache-2.0
// Names of temp files and directories in the store and layer cache that say which process made them, so a crash's leftovers can be told from work in progress.

import { randomBytes } from 'node:crypto';
import { readlinkSync } from 'node:fs';

let owner: { pidNamespace: string; prefix: string } | undefined;

function ownerOf(): { pidNamespace: string; prefix: string } {
  const pidNamespace = /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/pid'))?.[1] ?? '0';
  owner ??= { pidNamespace, prefix: `.tmp-${pidNamespace}.${process.pid}-` };
  return owner;
}

/**
 * @internal `.tmp-<pid namespace inode>.<pid>-`: the start of every temp name this process
 * makes in a store or layer cache (a random part follows). A pid alone would not do: a store
 * may be shared by processes in several pid namespaces (containers), where pids repeat.
 */
export function tempPrefix(): string {
  return ownerOf().prefix;
}

/** @internal A fresh temp name: {@link tempPrefix}, an optional label, and random hex. */
export function tempName(label = ''): string {
  return `${tempPrefix()}${label}${randomBytes(8).toString('hex')}`;
}

/**
 * @internal The pid that made a temp entry, when it is a process of this pid namespace (so
 * its liveness can be checked); undefined for any other name.
 */
export function tempOwnerPid(name: string): number | undefined {
  const match = /^\.tmp-(\d+)\.(\d+)-/.exec(name);
  return match && match[1] === ownerOf().pidNamespace ? Number(match[2]) : undefined;
}
