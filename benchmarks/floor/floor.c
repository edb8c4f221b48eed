// SPDX-License-Identifier: Apache-2.0
// The kernel's floor for a sandbox start, with no runtime around it: clone into new mount, pid,
// uts, ipc, cgroup and (unless --no-net) network namespaces, mount a tmpfs scratch, an overlay of
// ROOTFS on it and /proc, pivot_root, exec /bin/true; the parent waits. One line per timed run
// (milliseconds) on stdout. The same kernel work as an nsbox full sandbox, minus everything nsbox
// adds on top (cgroup limits, init, /dev, masked paths, capabilities, seccomp, Node).
//
// Usage: floor ROOTFS SCRATCH RUNS WARMUP [--no-net]   (as root; SCRATCH an empty directory)
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *rootfs, *scratch;

// Any failure exits with a code naming the step; the parent reports it.
#define CHECK(step, call) \
  if ((call) < 0) {       \
    _exit(step);          \
  }

static int child(void) {
  char upper[4096], work[4096], root[4096], proc[4096], options[8192 + 64];
  snprintf(upper, sizeof upper, "%s/upper", scratch);
  snprintf(work, sizeof work, "%s/work", scratch);
  snprintf(root, sizeof root, "%s/root", scratch);
  snprintf(proc, sizeof proc, "%s/root/proc", scratch);
  snprintf(options, sizeof options, "lowerdir=%s,upperdir=%s,workdir=%s", rootfs, upper, work);
  CHECK(10, mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL));
  CHECK(11, mount("tmpfs", scratch, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755"));
  CHECK(12, mkdir(upper, 0755));
  CHECK(13, mkdir(work, 0755));
  CHECK(14, mkdir(root, 0755));
  CHECK(15, mount("overlay", root, "overlay", 0, options));
  CHECK(16, mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL));
  CHECK(17, chdir(root));
  CHECK(18, syscall(SYS_pivot_root, ".", "."));
  CHECK(19, umount2(".", MNT_DETACH));
  CHECK(20, chdir("/"));
  char *argv[] = {"/bin/true", NULL};
  char *envp[] = {NULL};
  execve(argv[0], argv, envp);
  _exit(21);
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: %s ROOTFS SCRATCH RUNS WARMUP [--no-net]\n", argv[0]);
    return 2;
  }
  rootfs = argv[1];
  scratch = argv[2];
  int runs = atoi(argv[3]), warmup = atoi(argv[4]);
  unsigned long flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWCGROUP | SIGCHLD;
  if (!(argc > 5 && strcmp(argv[5], "--no-net") == 0)) flags |= CLONE_NEWNET;
  for (int i = 0; i < warmup + runs; i++) {
    double start = now_ms();
    // A plain clone of this small process (as fork, no CLONE_VM): it has almost no pages to copy.
    long pid = syscall(SYS_clone, flags, NULL, NULL, NULL, NULL);
    if (pid == 0) _exit(child());
    if (pid < 0) {
      fprintf(stderr, "clone: %s\n", strerror(errno));
      return 1;
    }
    int status;
    while (waitpid((pid_t)pid, &status, 0) < 0) {
      if (errno != EINTR) {
        fprintf(stderr, "waitpid: %s\n", strerror(errno));
        return 1;
      }
    }
    double elapsed = now_ms() - start;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fprintf(stderr, "run %d failed: %s %d (exit codes 10-21 name the step in floor.c)\n", i, WIFEXITED(status) ? "exit" : "signal",
              WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
      return 1;
    }
    if (i >= warmup) printf("%.4f\n", elapsed);
  }
  return 0;
}
