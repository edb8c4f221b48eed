// SPDX-License-Identifier: Apache-2.0
// Turns OCI whiteouts into the markers overlayfs honours in a lower directory, rootful or rootless.

import { closeSync, constants, openSync } from 'node:fs';
import { join } from 'node:path';
import { getXattr, mknod, setXattr } from './native-fs.js';

/** OCI whiteout prefix: an entry `.wh.NAME` deletes NAME of the layers below. */
export const whiteoutPrefix = '.wh.';

/** OCI opaque whiteout: this entry in directory D hides what the layers below have in D. */
export const opaqueWhiteout = '.wh..wh..opq';

/**
 * Makes `dir/name` hide `name` of the layers below `dir`'s layer.
 *
 * Rootful: a character device 0:0, overlayfs's own whiteout. Rootless (an unprivileged user
 * cannot mknod a device; the overlay is mounted with `userxattr`): an empty regular file with
 * `user.overlay.whiteout`, and `user.overlay.opaque` = `x` on `dir`. That is the "xwhiteout" as
 * Documentation/filesystems/overlayfs.rst describes it: overlayfs only looks for xattr whiteouts
 * in directories marked `x`. (6.7.0 used an `overlay.whiteouts` marker instead; 6.8 and the 6.7
 * stable updates replaced it with `opaque=x`. Checked on 6.18: with `whiteouts` only, readdir
 * still lists the whiteout.) A directory already opaque (`y`) keeps `y`: it hides everything
 * below anyway.
 *
 * `dir` must be a real directory in the layer being written and `dir/name` must not exist.
 *
 * @example
 * ```ts
 * writeWhiteout('/cache/layers/.tmp-x/etc', 'motd', false); // etc/motd: char 0:0
 * ```
 */
export function writeWhiteout(dir: string, name: string, rootless: boolean): void {
  const path = join(dir, name);
  if (!rootless) {
    mknod(path, constants.S_IFCHR, 0, 0);
    return;
  }
  closeSync(openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644));
  setXattr(path, 'user.overlay.whiteout', 'y');
  if (getXattr(dir, 'user.overlay.opaque') !== 'y') setXattr(dir, 'user.overlay.opaque', 'x');
}

/**
 * Makes directory `dir` opaque: overlayfs then ignores the same directory in the layers below.
 * Rootful: `trusted.overlay.opaque` = `y`; rootless (`userxattr`): `user.overlay.opaque` = `y`.
 *
 * @example
 * ```ts
 * markOpaque('/cache/layers/.tmp-x/data', false);
 * ```
 */
export function markOpaque(dir: string, rootless: boolean): void {
  setXattr(dir, rootless ? 'user.overlay.opaque' : 'trusted.overlay.opaque', 'y');
}
