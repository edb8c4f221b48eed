// SPDX-License-Identifier: Apache-2.0
// Child: capability sets and no_new_privs.
#ifndef NSBOX_CAPS_H_
#define NSBOX_CAPS_H_

#include "child_util.h"

namespace sbx::caps {

// Drops every capability outside the plan's set from the bounding set (needs CAP_SETPCAP,
// so it runs before the switch to the workload's user).
int stageBoundingSet(const Plan& plan, const child::Failure& fail);

// After the user switch: permitted = effective = the plan's set for uid 0 (empty for any
// other uid, as the kernel already made it), inheritable and ambient empty.
int stageCapabilities(const Plan& plan, const child::Failure& fail);

int stageNoNewPrivs(const Plan& plan, const child::Failure& fail);

// Installs the plan's seccomp filter. Last before execve: every earlier stage may need
// system calls the filter forbids, and no_new_privs must already be set.
int stageSeccomp(const Plan& plan, const child::Failure& fail);

}  // namespace sbx::caps

#endif  // NSBOX_CAPS_H_
