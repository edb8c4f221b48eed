// SPDX-License-Identifier: Apache-2.0
// Child: pivot_root into the overlay, then detach the old root.
#include "rootfs.h"

#include <sys/mount.h>

namespace sbx::rootfs {

using sys::sc;

int stagePivotRoot(const Plan& plan, const child::Failure& fail, int rootFd) {
  // pivot_root(".", ".") stacks the old root on top of the new one at "/"; detaching "."
  // then removes it without needing a directory for it inside the image (crun's do_pivot).
  long r = sc(SYS_fchdir, rootFd);
  if (r < 0) return fail(NSBOX_STAGE_PIVOT_ROOT, "fchdir", r, plan.rootDir);
  r = sc(SYS_pivot_root, ".", ".");
  if (r < 0) return fail(NSBOX_STAGE_PIVOT_ROOT, "pivot_root", r, plan.rootDir);
  r = sc(SYS_umount2, ".", MNT_DETACH);
  if (r < 0) return fail(NSBOX_STAGE_PIVOT_ROOT, "umount2", r, plan.rootDir);
  r = sc(SYS_chdir, "/");
  if (r < 0) return fail(NSBOX_STAGE_PIVOT_ROOT, "chdir", r, "/");
  sc(SYS_close, rootFd);
  return 0;
}

int stageReadonlyRoot(const Plan& plan, const child::Failure& fail) {
  if (!plan.readonlyRoot) return 0;
  // After every other mount: only the root mount itself turns read-only; /tmp, /dev and
  // writable volumes stay as they were asked for.
  struct mount_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.attr_set = MOUNT_ATTR_RDONLY;
  long r = sys::call(SYS_mount_setattr, AT_FDCWD, reinterpret_cast<long>("/"), 0, reinterpret_cast<long>(&attr), sizeof attr);
  return r < 0 ? fail(NSBOX_STAGE_READONLY_ROOT, "mount_setattr", r, "/") : 0;
}

int stageCwd(const Plan& plan, const child::Failure& fail) {
  long r = sc(SYS_chdir, plan.cwd);
  return r < 0 ? fail(NSBOX_STAGE_CWD, "chdir", r, plan.cwd) : 0;
}

}  // namespace sbx::rootfs
