// SPDX-License-Identifier: Apache-2.0
// Child: capabilities and no_new_privs, with raw syscalls.
#include "caps.h"

#include <linux/capability.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>

namespace sbx::caps {

using sys::sc;

int stageBoundingSet(const Plan& plan, const child::Failure& fail) {
  for (int cap = 0; cap < 64; cap++) {
    uint32_t word = cap < 32 ? plan.capsLow : plan.capsHigh;
    if (word & (1U << (cap % 32))) continue;
    long r = sc(SYS_prctl, PR_CAPBSET_DROP, cap, 0, 0, 0);
    if (r == -EINVAL) break;  // past the kernel's last capability
    if (r < 0) return fail(NSBOX_STAGE_CAPABILITIES, "prctl(PR_CAPBSET_DROP)", r);
  }
  return 0;
}

int stageCapabilities(const Plan& plan, const child::Failure& fail) {
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  if (plan.uid == 0) {
    data[0].effective = data[0].permitted = plan.capsLow;
    data[1].effective = data[1].permitted = plan.capsHigh;
  }
  long r = sc(SYS_capset, &header, data);
  if (r < 0) return fail(NSBOX_STAGE_CAPABILITIES, "capset", r);
  r = sc(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  if (r < 0 && r != -EINVAL) return fail(NSBOX_STAGE_CAPABILITIES, "prctl(PR_CAP_AMBIENT)", r);
  return 0;
}

int stageNoNewPrivs(const Plan& plan, const child::Failure& fail) {
  if (!plan.noNewPrivs) return 0;
  long r = sc(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  return r < 0 ? fail(NSBOX_STAGE_NO_NEW_PRIVS, "prctl(PR_SET_NO_NEW_PRIVS)", r) : 0;
}

}  // namespace sbx::caps

namespace sbx::caps {

int stageSeccomp(const Plan& plan, const child::Failure& fail) {
  if (plan.seccomp.empty()) return 0;
  struct sock_fprog program = {static_cast<unsigned short>(plan.seccomp.size()), const_cast<sock_filter*>(plan.seccomp.data())};
  long r = sc(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program);
  return r < 0 ? fail(NSBOX_STAGE_SECCOMP, "seccomp", r) : 0;
}

}  // namespace sbx::caps
