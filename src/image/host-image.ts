// SPDX-License-Identifier: Apache-2.0
// The embedded 'host' image: the host's /usr (read-only) over a tiny synthetic base layer.
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MountFlag, MountOp, type NativeMountOp } from '../native/native.js';
import { stateDir } from '../paths.js';

// Bump when the base layer's content changes: a new directory is made, old ones stay valid.
const VERSION = 1;
const TOP_DIRS = ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32'];

const files: Record<string, string> = {
  'etc/passwd': 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n',
  'etc/group': 'root:x:0:\nnogroup:x:65534:\n',
  'etc/hosts': '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n',
  'etc/resolv.conf': '',
  'etc/nsswitch.conf': 'passwd: files\ngroup: files\nhosts: files dns\n',
};

let cached: { base: string; ops: NativeMountOp[] } | undefined;

/**
 * @internal The base layer directory (made once, atomically) and the read-only binds of the
 * host's /usr and of /bin, /lib… where they are real directories rather than usr-merge links.
 */
export function hostImage(): { base: string; ops: NativeMountOp[] } {
  if (cached) return cached;
  const hostDirs = TOP_DIRS.filter((d) => existsSync(`/${d}`));
  const links = hostDirs.filter((d) => lstatSync(`/${d}`).isSymbolicLink());
  const binds = ['usr', ...hostDirs.filter((d) => !links.includes(d))];
  const base = join(stateDir(), 'host-base', `v${VERSION}-${links.join('.') || 'split'}`);
  if (!existsSync(base)) {
    const tmp = `${base}.tmp-${randomBytes(6).toString('hex')}`;
    mkdirSync(tmp, { recursive: true, mode: 0o755 });
    for (const dir of ['etc', 'usr', 'proc', 'dev', 'tmp', 'root', 'home', 'run', 'var/tmp', ...binds]) mkdirSync(join(tmp, dir), { recursive: true, mode: 0o755 });
    for (const link of links) symlinkSync(readlinkSync(`/${link}`), join(tmp, link));
    for (const [path, text] of Object.entries(files)) writeFileSync(join(tmp, path), text, { mode: 0o644 });
    try {
      renameSync(tmp, base);
    } catch {
      rmSync(tmp, { recursive: true, force: true }); // another process made it first
    }
  }
  const flags = MountFlag.Readonly | MountFlag.Recursive | MountFlag.NoSuid | MountFlag.NoDev;
  cached = { base, ops: binds.map((dir) => ({ op: MountOp.Bind, src: `/${dir}`, dst: `/${dir}`, data: '', flags, mode: 0 })) };
  return cached;
}
