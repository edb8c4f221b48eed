// SPDX-License-Identifier: Apache-2.0
// The child's stage list, from clone to execve. It runs in a copy of a multi-threaded
// Node process that still shares the parent's memory (CLONE_VM): raw syscalls on the
// plan only — no allocation, no exceptions, no locks, no libc errno.
#include "child.h"

#include <signal.h>
#include <sys/prctl.h>
#include <poll.h>

#include "caps.h"
#include "child_util.h"
#include "fds.h"
#include "mount.h"
#include "ns.h"
#include "rootfs.h"
#include "user.h"

namespace sbx::child {
namespace {

using sys::sc;

// Node installs handlers and ignores SIGPIPE; the workload must start from the defaults.
// Signals stay blocked (as the parent blocked them across clone) until just before exec.
void resetSignals() {
  struct {
    void* handler;
    unsigned long flags;
    void* restorer;
    uint64_t mask;
  } action = {nullptr, 0, nullptr, 0};  // SIG_DFL is 0
  for (int sig = 1; sig < 65; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    sc(SYS_rt_sigaction, sig, &action, nullptr, 8);
  }
}

// Arms the parent-death signal, then checks that the host did not die before it was armed.
// Not the sync socket's hang-up: this child (and any sibling cloned meanwhile) holds a copy
// of the parent's end until exec, so it never hangs up. The host's pidfd turns readable once
// its last thread is gone; a death after the prctl is the signal's to report.
int armParentDeath(const Failure& fail, int hostPidfd) {
  long r = sc(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  if (r < 0) return fail(NSBOX_STAGE_PARENT_DEATH, "prctl(PR_SET_PDEATHSIG)", r);
  struct pollfd p = {hostPidfd, POLLIN, 0};
  r = sc(SYS_poll, &p, 1, 0);
  if (r > 0 && (p.revents & POLLIN)) return fail(NSBOX_STAGE_PARENT_DEATH, "poll", -ESRCH);
  return 0;
}

int stageParentDeath(const Plan&, const Failure& fail, int hostPidfd) {
  // Again after the user switch: changing credentials clears the parent-death signal.
  return armParentDeath(fail, hostPidfd);
}

// execvp without allocation: PATH comes from the workload's environment.
int execWorkload(const Plan& plan, const Failure& fail) {
  const char* file = plan.argv[0];
  char* const* argv = const_cast<char* const*>(plan.argv.data());
  char* const* envp = const_cast<char* const*>(plan.envp.data());
  if (strchr(file, '/')) {
    long r = sc(SYS_execve, file, argv, envp);
    return fail(NSBOX_STAGE_EXEC, "execve", r, file);
  }
  const char* path = plan.path[0] ? plan.path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  long firstError = -ENOENT;
  char candidate[4096];
  size_t fileLen = strlen(file);
  for (const char* p = path;; p++) {
    const char* end = strchr(p, ':');
    size_t dirLen = end ? static_cast<size_t>(end - p) : strlen(p);
    if (dirLen + 1 + fileLen + 1 <= sizeof candidate) {
      memcpy(candidate, p, dirLen);
      size_t n = dirLen;
      if (n == 0) candidate[n++] = '.';
      candidate[n++] = '/';
      memcpy(candidate + n, file, fileLen + 1);
      long r = sc(SYS_execve, candidate, argv, envp);
      if (r == -EACCES) firstError = r;
      else if (r != -ENOENT && r != -ENOTDIR) return fail(NSBOX_STAGE_EXEC, "execve", r, file);
    }
    if (!end) break;
    p = end;
  }
  return fail(NSBOX_STAGE_EXEC, "execve", firstError, file);
}

int run(const Context& ctx) {
  const Plan& plan = *ctx.plan;
  int syncFd = ctx.syncFd;
  Failure fail{syncFd};
  int rootFd = -1;

  resetSignals();
  // At once: a host killed during setup must take this child with it (not a STAGE: the
  // failStage hook keeps its one place per stage, after the user switch).
  if (armParentDeath(fail, ctx.hostPidfd)) return 1;
  // One line per stage. failStage (tests only) makes a stage report EPERM instead of running,
  // to pin down the error contract for stages no input can make fail.
#define STAGE(number, call)                                                   \
  if (plan.failStage == (number)) return fail((number), "forced", -EPERM, ""); \
  if (call) return 1;

  // The order matters:
  //   id maps first: until they exist the child has no uid inside, so nothing else works;
  //   then the host's network setup (pasta joins this user and network namespace);
  //   cgroup before anything allocates; a prepared network namespace before /proc shows it;
  //   cgroup namespace after joining the cgroup; an exec's terminal is given to its user once
  //   the sandbox's user namespace is joined and before the user switch drops CAP_CHOWN;
  //   mounts while the host's paths are still reachable; pivot_root after every mount;
  //   hostname/loopback/cwd need the new namespaces and root but not privilege;
  //   bounding set while CAP_SETPCAP remains, then the user switch, then the final sets;
  //   parent-death signal after the user switch (which clears it); stdio; rlimits after the
  //   fd shuffle (a low RLIMIT_NOFILE would refuse it: the host's fds are still open until
  //   exec); seccomp last.
  if (ctx.joinPidfd >= 0) {
    // exec in a running sandbox: its cgroup, then its namespaces; its root is already set up.
    STAGE(NSBOX_STAGE_CGROUP_ATTACH, ns::stageCgroupAttach(plan, fail, ctx.cgroupProcsFds, ctx.cgroupProcsCount))
    STAGE(NSBOX_STAGE_JOIN_NAMESPACES, ns::stageJoinNamespaces(plan, fail, ctx.joinPidfd))
    // After the join: the sandbox's user namespace grants CAP_CHOWN over the sandbox's ids (a
    // rootless host's own capabilities could not chown to them); before the user switch drops it.
    STAGE(NSBOX_STAGE_TERMINAL, fds::stageTerminalOwner(plan, fail, ctx.stdio[0]))
    STAGE(NSBOX_STAGE_CWD, rootfs::stageCwd(plan, fail))
  } else {
    STAGE(NSBOX_STAGE_ID_MAP, user::stageIdMap(plan, fail, syncFd))
    STAGE(NSBOX_STAGE_NETWORK_SETUP, ns::stageNetworkSetup(plan, fail, syncFd))
    STAGE(NSBOX_STAGE_CGROUP_ATTACH, ns::stageCgroupAttach(plan, fail, ctx.cgroupProcsFds, ctx.cgroupProcsCount))
    STAGE(NSBOX_STAGE_JOIN_NETWORK, ns::stageJoinNetwork(plan, fail, ctx.netnsFd))
    STAGE(NSBOX_STAGE_CGROUP_NAMESPACE, ns::stageCgroupNamespace(plan, fail))
    STAGE(NSBOX_STAGE_MOUNT_PRIVATE, mount::stageMountPrivate(plan, fail))
    STAGE(NSBOX_STAGE_SCRATCH_MOUNT, mount::stageRootfs(plan, fail, &rootFd))
    STAGE(NSBOX_STAGE_BIND_MOUNT, mount::stageSteps(plan, fail, rootFd))
    STAGE(NSBOX_STAGE_PIVOT_ROOT, rootfs::stagePivotRoot(plan, fail, rootFd))
    STAGE(NSBOX_STAGE_READONLY_ROOT, rootfs::stageReadonlyRoot(plan, fail))
    STAGE(NSBOX_STAGE_HOSTNAME, ns::stageHostname(plan, fail))
    STAGE(NSBOX_STAGE_LOOPBACK, ns::stageLoopback(plan, fail))
    STAGE(NSBOX_STAGE_CWD, rootfs::stageCwd(plan, fail))
  }
  STAGE(NSBOX_STAGE_CAPABILITIES, caps::stageBoundingSet(plan, fail))
  STAGE(NSBOX_STAGE_USER, user::stageUser(plan, fail))
  STAGE(NSBOX_STAGE_CAPABILITIES, caps::stageCapabilities(plan, fail))
  STAGE(NSBOX_STAGE_NO_NEW_PRIVS, caps::stageNoNewPrivs(plan, fail))
  STAGE(NSBOX_STAGE_PARENT_DEATH, stageParentDeath(plan, fail, ctx.hostPidfd))
  STAGE(NSBOX_STAGE_STDIO, fds::stageStdio(plan, fail, ctx.stdio, &syncFd))
  fail.syncFd = syncFd;
  STAGE(NSBOX_STAGE_RLIMITS, fds::stageRlimits(plan, fail))
  STAGE(NSBOX_STAGE_SECCOMP, caps::stageSeccomp(plan, fail))
#undef STAGE

  if (plan.useInit) {
    // Signals stay blocked through this exec: nsbox-init waits for them with sigwaitinfo.
    long r = sc(SYS_execveat, ctx.initFd, "", plan.initArgv.data(), plan.envp.data(), AT_EMPTY_PATH);
    return fail(NSBOX_STAGE_EXEC, "execveat", r, plan.initPath);
  }
  uint64_t none = 0;
  sc(SYS_rt_sigprocmask, SIG_SETMASK, &none, nullptr, 8);
  return execWorkload(plan, fail);
}

// The sandbox's pid 1 under a network keeper: waits until the intermediate has told the
// parent its pid (which the parent's network setup needs), then runs the usual stages.
int nestedRun(void* context) {
  Context ctx = *static_cast<const Context*>(context);
  // Its own copy of the write end first: an intermediate that dies before it writes must
  // read as EOF here, and then this child ends before it does anything.
  sc(SYS_close, ctx.gateWriteFd);
  char go;
  long r = sc(SYS_read, ctx.gateReadFd, &go, 1);
  sc(SYS_close, ctx.gateReadFd);
  if (r != 1) return 1;
  run(ctx);
  return 127;
}

// The intermediate of a sandbox on a rootless named network. Entering the keeper's user
// namespace first (as its owner) makes every namespace cloned next belong to a user namespace
// nested in it, over which the keeper's plumbing (CNI, inside the keeper) has capabilities.
// CLONE_PARENT makes the new pid 1 the host's own child, as a sandbox's pid 1 always is.
int intermediate(const Context& ctx) {
  const Plan& plan = *ctx.plan;
  Failure fail{ctx.syncFd};
  long r = sc(SYS_setns, ctx.keeperUsernsFd, CLONE_NEWUSER);
  if (r < 0) return fail(NSBOX_STAGE_JOIN_NAMESPACES, "setns", r, plan.keeperUsernsPath);
  sc(SYS_close, ctx.keeperUsernsFd);
  struct clone_args args;
  memset(&args, 0, sizeof args);
  args.flags = CLONE_VM | CLONE_PARENT | CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC;
  if (plan.newNet) args.flags |= CLONE_NEWNET;
  args.stack = reinterpret_cast<uint64_t>(ctx.nestedStack);
  args.stack_size = ctx.nestedStackSize;
  long pid = sys::clone3Run(&args, nestedRun, const_cast<Context*>(ctx.nestedContext));
  if (pid < 0) return fail(NSBOX_STAGE_CLONE, "clone3", pid);
  nsbox_msg msg;
  memset(&msg, 0, sizeof msg);
  msg.type = NSBOX_MSG_NESTED_PID;
  msg.err = static_cast<int32_t>(pid);
  r = sys::call(SYS_sendto, ctx.syncFd, reinterpret_cast<long>(&msg), sizeof msg, MSG_NOSIGNAL, 0, 0);
  if (r < 0) {
    // The parent does not know this child: it must not start.
    sc(SYS_kill, pid, SIGKILL);
    return -1;
  }
  sc(SYS_write, ctx.gateWriteFd, "x", 1);
  return 0;
}

}  // namespace

int main(void* context) {
  // Copy the context onto this stack: the parent's memory is shared and not ours to write.
  Context ctx = *static_cast<const Context*>(context);
  if (ctx.keeperUsernsFd >= 0) return intermediate(ctx) < 0 ? 1 : 0;
  run(ctx);
  return 127;
}

}  // namespace sbx::child
