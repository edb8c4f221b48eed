// SPDX-License-Identifier: Apache-2.0
// User namespace id maps (child and parent side) and the switch to the workload's user.
#ifndef NSBOX_USER_H_
#define NSBOX_USER_H_

#include <sys/types.h>

#include "child_util.h"

namespace sbx::user {

// Child: get uid_map/gid_map written, by itself (one-id map) or by the parent.
int stageIdMap(const Plan& plan, const child::Failure& fail, int syncFd);

// Child: supplementary groups, gid, uid — in that order, while it may still change them.
int stageUser(const Plan& plan, const child::Failure& fail);

// Parent: writes the maps for a child that asked (NSBOX_MSG_NEED_IDMAP). Returns 0 or -errno;
// `what` names the failing call.
int parentWriteIdMaps(const Plan& plan, pid_t pid, const char** what);

}  // namespace sbx::user

#endif  // NSBOX_USER_H_
