// SPDX-License-Identifier: Apache-2.0
// Mounts a read-only overlay of layer directories in a throwaway mount namespace and runs a shell script in it.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { dir } from 'tmp-promise';

const execFileAsync = promisify(execFile);

/**
 * Runs `script` (sh) with the overlay of `layers` (bottom first) as its working directory and
 * returns its stdout. Rootful: `unshare -m` and a plain overlay. Rootless: `unshare -Urm` (a
 * user namespace, root mapped to us) and `userxattr`, as an unprivileged user would mount it.
 * The mount dies with its namespace, so nothing needs unmounting; needs root or unprivileged
 * user namespaces.
 *
 * @example
 * const motd = await inOverlay([base, top], false, 'cat etc/motd');
 */
export async function inOverlay(layers: string[], rootless: boolean, script: string): Promise<string> {
  const target = await dir({ prefix: 'nsbox-overlay-' });
  try {
    const options = `lowerdir=${layers.toReversed().join(':')}${rootless ? ',userxattr' : ''}`;
    const { stdout } = await execFileAsync('unshare', [
      rootless ? '-Urm' : '-m',
      'sh', '-ec', `mount -t overlay overlay -o "$1" "$2"; cd "$2"; ${script}`, 'sh', options, target.path,
    ]);
    return stdout;
  } finally {
    await target.cleanup();
  }
}
