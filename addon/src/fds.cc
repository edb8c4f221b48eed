// SPDX-License-Identifier: Apache-2.0
// Child: rlimits and the fd table the workload starts with.
#include "fds.h"

#include <sys/resource.h>

namespace sbx::fds {

using sys::sc;

int stageTerminalOwner(const Plan& plan, const child::Failure& fail, int terminal) {
  if (plan.ptyMaster < 0) return 0;
  // The slave was created owned by whoever opened the master (the host). Programs that check
  // their terminal (mesg, write, sshd-style ownership checks) expect it to be the user's own,
  // group-writable only (group tty when the image has one).
  long r = sc(SYS_fchown, terminal, plan.ttyUid, plan.ttyGid);
  if (r < 0) return fail(NSBOX_STAGE_TERMINAL, "fchown", r, "terminal");
  r = sc(SYS_fchmod, terminal, 0620);
  return r < 0 ? fail(NSBOX_STAGE_TERMINAL, "fchmod", r, "terminal") : 0;
}

int stageRlimits(const Plan& plan, const child::Failure& fail) {
  for (const Rlimit& l : plan.rlimits) {
    struct rlimit value = {l.soft, l.hard};
    long r = sc(SYS_prlimit64, 0, l.resource, &value, nullptr);
    if (r < 0) return fail(NSBOX_STAGE_RLIMITS, "prlimit64", r);
  }
  return 0;
}

int stageStdio(const Plan& plan, const child::Failure& fail, const int (&stdio)[3], int* syncFd) {
  // A new session: the workload has no controlling terminal, so /dev/tty cannot reach the
  // host's terminal (TIOCSTI, job control, reading keystrokes). With a terminal (an exec with
  // tty), nsbox-init's child takes the sandbox's pty as its controlling terminal in a session of
  // its own, inside the pid namespace, where a shell can hand the terminal back to its own
  // process group (this session's would be invisible there).
  long session = sc(SYS_setsid);
  if (session < 0) return fail(NSBOX_STAGE_STDIO, "setsid", session);
  // First lift every fd we keep above the targets, so a dup onto 0..3 never clobbers
  // another one we still need (the host may have started with 0..2 closed).
  int high[4];
  for (int i = 0; i < 4; i++) {
    int fd = i < 3 ? stdio[i] : *syncFd;
    long r = sc(SYS_fcntl, fd, F_DUPFD_CLOEXEC, 10);
    if (r < 0) return fail(NSBOX_STAGE_STDIO, "fcntl(F_DUPFD)", r);
    high[i] = static_cast<int>(r);
  }
  *syncFd = high[3];
  for (int i = 0; i < 3; i++) {
    long r = sc(SYS_dup3, high[i], i, 0);
    if (r < 0) return fail(NSBOX_STAGE_STDIO, "dup3", r);
  }
  int first = 3;
  if (plan.useInit) {
    long r = sc(SYS_dup3, high[3], NSBOX_INIT_SYNC_FD, 0);
    if (r < 0) return fail(NSBOX_STAGE_STDIO, "dup3", r);
    *syncFd = NSBOX_INIT_SYNC_FD;
    first = NSBOX_INIT_SYNC_FD + 1;
  }
  // Close-on-exec rather than close: failures after this point still reach the parent
  // through the high copy of the sync socket.
  long r = sc(SYS_close_range, first, ~0U, CLOSE_RANGE_CLOEXEC);
  return r < 0 ? fail(NSBOX_STAGE_STDIO, "close_range", r) : 0;
}

}  // namespace sbx::fds
