// SPDX-License-Identifier: Apache-2.0
// Parent: the host programs that configure a starting sandbox's network while its child
// waits (rootless networking: pasta, then nft through nsbox-netconf).
#ifndef NSBOX_NETWORK_SETUP_H_
#define NSBOX_NETWORK_SETUP_H_

#include "plan.h"
#include "sync_msg.h"

namespace sbx::network_setup {

// Runs plan.setupCommands in order for the child `pid`. On the first failure fills `failure`
// (stage network-setup, the program's name, errno or 0, and the first line it wrote to
// stderr) and returns false.
bool run(const Plan& plan, int pid, nsbox_msg* failure);

}  // namespace sbx::network_setup

#endif  // NSBOX_NETWORK_SETUP_H_
