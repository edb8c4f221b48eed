/* SPDX-License-Identifier: Apache-2.0 */
/* nsbox-init: pid 1 of a sandbox. Forks the workload, tells the parent whether its execve
 * worked, forwards signals to it, reaps every orphan, and reports the workload's own wait
 * status before exiting with it. A static binary, exec'd from the host through an fd, so
 * it needs nothing from the image.
 *
 * Two more roles, same binary:
 * - as pid 1 named nsbox-init-hold, with no workload, it holds a long-lived sandbox open: it reaps, and on SIGTERM,
 *   SIGINT or SIGHUP asks every process of the namespace to stop and exits once none is left;
 * - for an exec into a running sandbox it runs outside the sandbox's pid namespace (it joined
 *   the others) and forks the workload into it. The workload leads a process group of its own
 *   (on a terminal, a session of its own) that what it starts inherits, and init hands the
 *   host a pidfd of it with its exec report: the host signals an exec through that process
 *   group, which reaches processes that changed their uid too (a uid change clears the
 *   parent-death signal) and no process of another exec. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../src/sync_msg.h"

/* One record; with fd >= 0 the fd travels with it (SCM_RIGHTS). */
static void reportWithFd(uint32_t type, int stage, int err, const char* syscall, const char* path, int fd) {
  struct nsbox_msg msg;
  memset(&msg, 0, sizeof msg);
  msg.type = type;
  msg.stage = stage;
  msg.err = err;
  if (syscall) strncpy(msg.syscall, syscall, sizeof msg.syscall - 1);
  if (path) strncpy(msg.path, path, sizeof msg.path - 1);
  struct iovec iov = {&msg, sizeof msg};
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int))];
  } control;
  memset(&control, 0, sizeof control);
  struct msghdr header;
  memset(&header, 0, sizeof header);
  header.msg_iov = &iov;
  header.msg_iovlen = 1;
  if (fd >= 0) {
    header.msg_control = control.buf;
    header.msg_controllen = sizeof control.buf;
    struct cmsghdr* c = CMSG_FIRSTHDR(&header);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
  }
  sendmsg(NSBOX_INIT_SYNC_FD, &header, MSG_NOSIGNAL);
}

static void report(uint32_t type, int stage, int err, const char* syscall, const char* path) {
  reportWithFd(type, stage, err, syscall, path, -1);
}

/* Holds the sandbox open: pid 1 with no workload of its own. The processes of execs are not
 * its children (their own init, outside the namespace, forked them), so stopping waits until
 * kill(-1, 0) finds no process left in the namespace rather than for ECHILD. */
static int hold(sigset_t* all) {
  report(NSBOX_MSG_EXEC_OK, 0, 0, NULL, NULL);
  int stopping = 0;
  const struct timespec poll = {0, 20 * 1000 * 1000};
  for (;;) {
    siginfo_t info;
    int sig = stopping ? sigtimedwait(all, &info, &poll) : sigwaitinfo(all, &info);
    if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP) {
      /* From pid 1, -1 reaches every other process of the namespace. */
      stopping = 1;
      kill(-1, SIGTERM);
    }
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
    if (stopping && kill(-1, 0) < 0 && errno == ESRCH) {
      report(NSBOX_MSG_EXIT, 0, 0, NULL, NULL);
      return 0;
    }
  }
}

int main(int argc, char** argv) {
  /* Signals arrive blocked from the nsbox child; keep them so, and take them with
   * sigwaitinfo. A blocked signal is not "ignored", so even a pid 1 receives it. */
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &all, NULL);
  /* Not dumpable: a workload running as the same uid cannot ptrace init or open its fds. */
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  if (argc == 1 && strcmp(argv[0], "nsbox-init-hold") == 0 && getpid() == 1) return hold(&all);
  if (argc < 2) return 127;

  int execPipe[2];
  if (pipe2(execPipe, O_CLOEXEC) < 0) {
    report(NSBOX_MSG_ERROR, NSBOX_STAGE_EXEC, errno, "pipe2", "");
    return 127;
  }
  int isPid1 = getpid() == 1;
  pid_t child = fork();
  if (child < 0) {
    report(NSBOX_MSG_ERROR, NSBOX_STAGE_EXEC, errno, "fork", "");
    return 127;
  }
  if (child == 0) {
    fcntl(NSBOX_INIT_SYNC_FD, F_SETFD, FD_CLOEXEC);
    /* An exec's workload must not outlive the init the host watches and kills. */
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    /* For an exec, this init lives outside the pid namespace, so getppid() reads 0 while it
     * lives; anything else means it died before the signal was armed. */
    if (!isPid1 && getppid() != 0) _exit(127);
    /* On a terminal (an exec with tty): a session of its own with the terminal as its
     * controlling one, so a shell has job control, ^C and ^Z. Else, for an exec, a process
     * group of its own: the one the host signals to reach everything the exec started. */
    if (isatty(0)) {
      setsid();
      ioctl(0, TIOCSCTTY, 0);
    } else if (!isPid1) {
      setpgid(0, 0);
    }
    sigprocmask(SIG_SETMASK, &none, NULL);
    execvp(argv[1], argv + 1);
    int err = errno;
    (void)!write(execPipe[1], &err, sizeof err);
    _exit(err == ENOENT ? 127 : 126);
  }
  close(execPipe[1]);
  int err = 0;
  ssize_t n;
  do n = read(execPipe[0], &err, sizeof err);
  while (n < 0 && errno == EINTR);
  close(execPipe[0]);
  if (n == (ssize_t)sizeof err) {
    report(NSBOX_MSG_ERROR, NSBOX_STAGE_EXEC, err, "execve", argv[1]);
    waitpid(child, NULL, 0);
    return err == ENOENT ? 127 : 126;
  }
  /* For an exec: a pidfd of the workload, opened while it cannot have been reaped (only this
   * process reaps it), so the host can signal its process group without racing pid reuse. */
  int workload = isPid1 ? -1 : (int)syscall(SYS_pidfd_open, child, 0);
  reportWithFd(NSBOX_MSG_EXEC_OK, 0, 0, NULL, NULL, workload);
  if (workload >= 0) close(workload);

  for (;;) {
    siginfo_t info;
    int sig = sigwaitinfo(&all, &info);
    if (sig < 0) continue;
    if (sig != SIGCHLD) {
      kill(child, sig);
      continue;
    }
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
      if (pid != child) continue;
      /* When pid 1 exits the kernel kills everything left in the namespace. */
      report(NSBOX_MSG_EXIT, 0, status, NULL, NULL);
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
  }
}
