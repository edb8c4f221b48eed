// SPDX-License-Identifier: Apache-2.0
// Child: cgroup membership, the namespaces that are set up from inside, and the wait for the
// host-side network setup.
#ifndef NSBOX_NS_H_
#define NSBOX_NS_H_

#include "child_util.h"

namespace sbx::ns {

int stageCgroupAttach(const Plan& plan, const child::Failure& fail, const int* procsFds, int count);
int stageJoinNamespaces(const Plan& plan, const child::Failure& fail, int pidfd);
int stageNetworkSetup(const Plan& plan, const child::Failure& fail, int syncFd);
int stageJoinNetwork(const Plan& plan, const child::Failure& fail, int netnsFd);
int stageCgroupNamespace(const Plan& plan, const child::Failure& fail);
int stageHostname(const Plan& plan, const child::Failure& fail);
int stageLoopback(const Plan& plan, const child::Failure& fail);

}  // namespace sbx::ns

#endif  // NSBOX_NS_H_
