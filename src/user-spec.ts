// SPDX-License-Identifier: Apache-2.0
// Resolves a Docker-style user spec ('1000', '1000:1000', 'app', 'app:staff') against the image.
import { SandboxError } from './errors.js';

/** @internal */
export interface ResolvedUser {
  uid: number;
  gid: number;
  groups: number[];
  home: string;
}

interface Entry {
  name: string;
  id: number;
  fields: string[];
}

function parse(text: string | undefined): Entry[] {
  return (text ?? '')
    .split('\n')
    .map((line) => line.split(':'))
    .filter((f) => f.length >= 3 && /^\d+$/.test(f[2]!))
    .map((f) => ({ name: f[0]!, id: Number(f[2]), fields: f }));
}

const isId = (s: string) => /^\d+$/.test(s);

/**
 * @internal Like Docker: a numeric uid need not exist in /etc/passwd (gid then defaults to
 * the passwd entry's, else to the uid); a name must exist. Supplementary groups are the
 * groups in /etc/group that list the user by name.
 */
export function resolveUser(spec: string, passwd: string | undefined, group: string | undefined): ResolvedUser {
  const [userPart, groupPart] = spec.split(':') as [string, string | undefined];
  const users = parse(passwd);
  const groups = parse(group);
  const entry = isId(userPart) ? users.find((u) => u.id === Number(userPart)) : users.find((u) => u.name === userPart);
  if (!entry && !isId(userPart))
    throw new SandboxError('ERR_INVALID_OPTION', `Invalid sandbox option: user \`${userPart}\` is not in the image's /etc/passwd`);
  const uid = isId(userPart) ? Number(userPart) : entry!.id;
  let gid = entry ? Number(entry.fields[3]) : uid;
  if (groupPart !== undefined) {
    const g = isId(groupPart) ? { id: Number(groupPart) } : groups.find((x) => x.name === groupPart);
    if (!g) throw new SandboxError('ERR_INVALID_OPTION', `Invalid sandbox option: group \`${groupPart}\` is not in the image's /etc/group`);
    gid = g.id;
  }
  if (uid > 0xfffffffe || gid > 0xfffffffe) throw new SandboxError('ERR_INVALID_OPTION', `Invalid sandbox option: user \`${spec}\` is out of range`);
  const name = entry?.name;
  const supplementary = name ? groups.filter((g) => (g.fields[3] ?? '').split(',').includes(name)).map((g) => g.id) : [];
  return { uid, gid, groups: [...new Set([gid, ...supplementary])], home: entry?.fields[5] || '/' };
}
