// SPDX-License-Identifier: Apache-2.0
// Child: the root filesystem (scratch tmpfs + overlay) and the mount steps inside it.
#ifndef NSBOX_MOUNT_H_
#define NSBOX_MOUNT_H_

#include "child_util.h"
#include "plan.h"

namespace sbx::mount {

// Makes every mount private, so nothing the child mounts propagates to the host.
int stageMountPrivate(const Plan& plan, const child::Failure& fail);

// Mounts the private scratch tmpfs (upper, work and the root mountpoint live there) and
// the overlay of the image's layers on the future root. Returns an O_PATH fd of the root.
int stageRootfs(const Plan& plan, const child::Failure& fail, int* rootFd);

// Walks the plan's mount steps inside the new root, resolving every target with
// RESOLVE_IN_ROOT so that a symlink in the image can never point a mount at the host.
int stageSteps(const Plan& plan, const child::Failure& fail, int rootFd);

}  // namespace sbx::mount

#endif  // NSBOX_MOUNT_H_
