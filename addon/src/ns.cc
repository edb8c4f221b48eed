// SPDX-License-Identifier: Apache-2.0
// Child: join the v1 cgroups, enter a cgroup namespace, name the host, bring up loopback.
#include "ns.h"

#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>

namespace sbx::ns {

using sys::sc;

int stageCgroupAttach(const Plan&, const child::Failure& fail, const int* procsFds, int count) {
  // cgroup v1 has no CLONE_INTO_CGROUP: writing "0" moves the writer itself. The parent
  // opened these files; this runs before the child allocates anything in the sandbox.
  for (int i = 0; i < count; i++) {
    long r = sc(SYS_write, procsFds[i], "0", 1);
    if (r < 0) return fail(NSBOX_STAGE_CGROUP_ATTACH, "write", r, "cgroup.procs");
    sc(SYS_close, procsFds[i]);
  }
  return 0;
}

int stageJoinNamespaces(const Plan& plan, const child::Failure& fail, int pidfd) {
  // One setns(2) with a pidfd enters every namespace of the sandbox's pid 1 at once, or none
  // (Linux 5.8). The user namespace first in the kernel's own order, so the others are entered
  // with the capabilities it grants. This child is its own single-threaded process with its
  // own fs_struct (no CLONE_THREAD, no CLONE_FS), which setns of a user or mount namespace
  // requires. The pid namespace applies to the children only: nsbox-init, exec'd next, forks
  // the workload into it. The mount namespace moves root and cwd to the sandbox's root.
  long flags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWCGROUP;
  if (plan.joinUserns) flags |= CLONE_NEWUSER;
  long r = sc(SYS_setns, pidfd, flags);
  if (r < 0) return fail(NSBOX_STAGE_JOIN_NAMESPACES, "setns", r);
  sc(SYS_close, pidfd);
  return 0;
}

int stageNetworkSetup(const Plan& plan, const child::Failure& fail, int syncFd) {
  // User-mode networking (pasta) attaches to this child's own network namespace from the
  // host, which needs the namespace to exist and the id maps to be written: so right after
  // the id maps, and before anything of the workload can run and see a half-made network.
  if (plan.setupCommands.empty()) return 0;
  return child::waitForParent(fail, syncFd, NSBOX_MSG_NEED_NETWORK, NSBOX_STAGE_NETWORK_SETUP);
}

int stageJoinNetwork(const Plan& plan, const child::Failure& fail, int netnsFd) {
  // A bridged network: the host made and wired this namespace before the sandbox started.
  if (netnsFd < 0) return 0;
  long r = sc(SYS_setns, netnsFd, CLONE_NEWNET);
  if (r < 0) return fail(NSBOX_STAGE_JOIN_NETWORK, "setns", r, plan.netnsPath);
  sc(SYS_close, netnsFd);
  return 0;
}

int stageCgroupNamespace(const Plan&, const child::Failure& fail) {
  // After the child is in its own cgroup: the namespace's root becomes that cgroup, so
  // /proc/self/cgroup inside shows "/" and nothing of the host's hierarchy.
  long r = sc(SYS_unshare, CLONE_NEWCGROUP);
  return r < 0 ? fail(NSBOX_STAGE_CGROUP_NAMESPACE, "unshare", r) : 0;
}

int stageHostname(const Plan& plan, const child::Failure& fail) {
  long r = sc(SYS_sethostname, plan.hostname, strlen(plan.hostname));
  return r < 0 ? fail(NSBOX_STAGE_HOSTNAME, "sethostname", r, plan.hostname) : 0;
}

int stageLoopback(const Plan& plan, const child::Failure& fail) {
  if (!plan.newNet && !plan.netnsPath[0]) return 0;
  long s = sc(SYS_socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return fail(NSBOX_STAGE_LOOPBACK, "socket", s);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, "lo", 3);
  ifr.ifr_flags = IFF_UP | IFF_RUNNING;
  long r = sc(SYS_ioctl, s, SIOCSIFFLAGS, &ifr);
  sc(SYS_close, s);
  return r < 0 ? fail(NSBOX_STAGE_LOOPBACK, "ioctl(SIOCSIFFLAGS)", r, "lo") : 0;
}

}  // namespace sbx::ns
