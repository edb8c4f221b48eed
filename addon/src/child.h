// SPDX-License-Identifier: Apache-2.0
// The child's side of a spawn: the ordered stage list from clone to execve.
#ifndef NSBOX_CHILD_H_
#define NSBOX_CHILD_H_

#include "plan.h"

namespace sbx::child {

constexpr int kMaxCgroupFds = 16;

// Prepared by the parent before clone. The child copies it onto its own stack first:
// it shares the parent's memory and must never write to it.
struct Context {
  const Plan* plan;
  int syncFd;
  int hostPidfd;  // the host process: readable once it has exited
  int stdio[3];
  int initFd;
  int netnsFd;    // the network namespace to join, or -1
  int joinPidfd;  // exec: pid 1 of the sandbox to join, or -1
  int cgroupProcsFds[kMaxCgroupFds];
  int cgroupProcsCount;
  // A rootless named network: the network keeper's user namespace, which this child enters
  // before it makes the sandbox's namespaces one level below (on `nestedStack`), and the
  // context of that next child (in the parent's frame, which outlives both: not on this
  // child's stack, which it goes on using). A pipe tells the next child to go once the parent
  // knows its pid. All -1/null otherwise.
  int keeperUsernsFd;
  void* nestedStack;
  unsigned long nestedStackSize;
  const Context* nestedContext;
  int gateReadFd;
  int gateWriteFd;
};

// The clone entry point. Returns only on failure (the exit status of the child).
int main(void* context);

}  // namespace sbx::child

#endif  // NSBOX_CHILD_H_
