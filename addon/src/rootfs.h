// SPDX-License-Identifier: Apache-2.0
// Child: switch to the new root and drop every trace of the host's.
#ifndef NSBOX_ROOTFS_H_
#define NSBOX_ROOTFS_H_

#include "child_util.h"

namespace sbx::rootfs {

int stagePivotRoot(const Plan& plan, const child::Failure& fail, int rootFd);
int stageReadonlyRoot(const Plan& plan, const child::Failure& fail);
int stageCwd(const Plan& plan, const child::Failure& fail);

}  // namespace sbx::rootfs

#endif  // NSBOX_ROOTFS_H_
