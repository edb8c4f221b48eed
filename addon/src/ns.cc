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
  if (!plan.newNet) return 0;
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
