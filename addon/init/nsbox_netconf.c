/* SPDX-License-Identifier: Apache-2.0 */
/* nsbox-netconf USERNS NETNS PROGRAM [ARG...]
 *
 * Runs PROGRAM (nft) inside a starting sandbox's user and network namespaces with
 * CAP_NET_ADMIN, so the host can load the sandbox's egress rules before its workload runs.
 *
 * Why a program of its own: a multi-threaded process (Node) may not enter a user namespace,
 * and nsenter's exec keeps no capability when the caller's uid inside is not 0 — a one-id
 * rootless map gives the host user the image user's uid inside (say 1000). Entering the
 * namespace gives this process every capability there; an ambient CAP_NET_ADMIN is the one
 * that survives the exec. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static int die(const char *what, const char *arg) {
  fprintf(stderr, "nsbox-netconf: %s %s: %s\n", what, arg, strerror(errno));
  return 126;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: nsbox-netconf USERNS NETNS PROGRAM [ARG...]\n");
    return 2;
  }
  /* Both opened before either is entered: the paths are the host's /proc. */
  int userns = open(argv[1], O_RDONLY | O_CLOEXEC);
  if (userns < 0) return die("open", argv[1]);
  int netns = open(argv[2], O_RDONLY | O_CLOEXEC);
  if (netns < 0) return die("open", argv[2]);
  /* The user namespace first: entering the network namespace needs CAP_SYS_ADMIN over it,
   * which only the user namespace that owns it gives. */
  if (setns(userns, CLONE_NEWUSER) < 0) return die("setns", argv[1]);
  if (setns(netns, CLONE_NEWNET) < 0) return die("setns", argv[2]);

  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  if (syscall(SYS_capget, &header, data) < 0) return die("capget", "");
  /* An ambient capability must be permitted and inheritable first. */
  data[CAP_NET_ADMIN / 32].inheritable |= 1u << (CAP_NET_ADMIN % 32);
  if (syscall(SYS_capset, &header, data) < 0) return die("capset", "");
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_ADMIN, 0, 0) < 0) return die("prctl", "PR_CAP_AMBIENT_RAISE");

  execv(argv[3], argv + 3);
  return die("execv", argv[3]);
}
