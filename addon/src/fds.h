// SPDX-License-Identifier: Apache-2.0
// Child: resource limits, stdio, and closing everything else the host had open.
#ifndef NSBOX_FDS_H_
#define NSBOX_FDS_H_

#include "child_util.h"

namespace sbx::fds {

// With a terminal: gives it to the exec's user (mode 0620, as runc gives the console to the
// process user), while the capabilities to do so remain.
int stageTerminalOwner(const Plan& plan, const child::Failure& fail, int terminal);

int stageRlimits(const Plan& plan, const child::Failure& fail);

// Puts the stdio fds on 0..2 and, when nsbox-init follows, the sync socket on fd 3; marks
// every other fd close-on-exec. Updates *syncFd to the socket's new number.
int stageStdio(const Plan& plan, const child::Failure& fail, const int (&stdio)[3], int* syncFd);

}  // namespace sbx::fds

#endif  // NSBOX_FDS_H_
