// SPDX-License-Identifier: Apache-2.0
// The busybox root filesystem every system in the suite runs from, built once per busybox binary.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { which } from './host.js';

const execFileAsync = promisify(execFile);

// Bumped when the layout below changes, so an old cache entry is not reused.
const LAYOUT_VERSION = '1';

/** Whether a 64-bit ELF file names a program interpreter (PT_INTERP), i.e. is dynamically linked. */
function hasInterpreter(elf: Buffer): boolean {
  if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2) return false;
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const phentsize = elf.readUInt16LE(0x36);
  const phnum = elf.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) {
    const offset = phoff + i * phentsize;
    if (offset + 4 <= elf.length && elf.readUInt32LE(offset) === 3) return true;
  }
  return false;
}

async function staticBusybox(): Promise<string> {
  const found = which('busybox');
  if (!found) throw new Error('busybox is not installed (apt-get install busybox-static)');
  const real = await fs.realpath(found);
  // A dynamically linked busybox cannot run inside a root that has no libc.
  if (hasInterpreter(await fs.readFile(real))) throw new Error(`${real} is dynamically linked; the benchmark needs a static busybox (apt-get install busybox-static)`);
  return real;
}

/**
 * A plain root filesystem directory: static busybox with /bin/<applet> symlinks, /etc/passwd and
 * /etc/group, empty /proc /dev /sys /tmp. Cached under $TMPDIR/nsbox-bench-rootfs/<hash>; never written to.
 */
export async function benchRootfs(): Promise<string> {
  const busybox = await staticBusybox();
  const binary = await fs.readFile(busybox);
  const key = createHash('sha256').update(LAYOUT_VERSION).update('\0').update(binary).digest('hex').slice(0, 16);
  const cache = path.join(os.tmpdir(), 'nsbox-bench-rootfs');
  const root = path.join(cache, key);
  try {
    await fs.access(path.join(root, 'bin', 'true'));
    return root;
  } catch {
    // not built yet
  }
  await fs.mkdir(cache, { recursive: true });
  const building = await fs.mkdtemp(path.join(cache, `.tmp-${key}-`));
  try {
    await fs.chmod(building, 0o755);
    for (const [dir, mode] of [['bin', 0o755], ['etc', 0o755], ['tmp', 0o1777], ['root', 0o700], ['proc', 0o555], ['dev', 0o755], ['sys', 0o555]] as const) {
      await fs.mkdir(path.join(building, dir));
      await fs.chmod(path.join(building, dir), mode);
    }
    await fs.writeFile(path.join(building, 'bin', 'busybox'), binary, { mode: 0o755 });
    const { stdout } = await execFileAsync(busybox, ['--list']);
    for (const applet of stdout.split('\n').filter((name) => name && name !== 'busybox' && !name.includes('/'))) {
      await fs.symlink('busybox', path.join(building, 'bin', applet));
    }
    await fs.writeFile(path.join(building, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n', { mode: 0o644 });
    await fs.writeFile(path.join(building, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n', { mode: 0o644 });
    await fs.rename(building, root).catch(async (error: NodeJS.ErrnoException) => {
      // Another process built it meanwhile: use theirs.
      if (error.code !== 'ENOTEMPTY' && error.code !== 'EEXIST') throw error;
      await fs.rm(building, { recursive: true, force: true });
    });
    return root;
  } catch (error) {
    await fs.rm(building, { recursive: true, force: true });
    throw error;
  }
}
