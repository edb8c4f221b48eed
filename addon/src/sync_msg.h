/* SPDX-License-Identifier: Apache-2.0 */
/* The record the child (and nsbox-init) sends to the parent over the sync socket.
 * Plain C so that addon/init/nsbox_init.c shares it. One fixed-size record per
 * SOCK_SEQPACKET message: a short read is a protocol error, never a partial record. */
#ifndef NSBOX_SYNC_MSG_H_
#define NSBOX_SYNC_MSG_H_

#include <stdint.h>

/* Message types. Child→parent unless noted. */
enum {
  NSBOX_MSG_ERROR = 1,     /* a setup stage failed: stage, err, syscall, path */
  NSBOX_MSG_NEED_IDMAP = 2,/* child is in its user namespace and waits for uid_map/gid_map */
  NSBOX_MSG_GO = 3,        /* parent→child: id maps written, continue */
  NSBOX_MSG_EXEC_OK = 4,   /* nsbox-init: the workload's execve succeeded */
  NSBOX_MSG_EXIT = 5,      /* nsbox-init: the workload's raw wait status (in err), sent just before init exits */
  NSBOX_MSG_NEED_NETWORK = 6, /* child has its namespaces and id maps and waits while the host configures its network */
  NSBOX_MSG_NESTED_PID = 7    /* the child that entered a network keeper's user namespace started the sandbox's pid 1 (pid in err) */
};

/* Setup stages, in the order the child runs them. src/native/stages.ts mirrors this list. */
enum {
  NSBOX_STAGE_NONE = 0,
  NSBOX_STAGE_CLONE,
  NSBOX_STAGE_PARENT_SETUP,
  NSBOX_STAGE_ID_MAP,
  NSBOX_STAGE_NETWORK_SETUP,
  NSBOX_STAGE_CGROUP_ATTACH,
  NSBOX_STAGE_JOIN_NAMESPACES,
  NSBOX_STAGE_TERMINAL,
  NSBOX_STAGE_JOIN_NETWORK,
  NSBOX_STAGE_CGROUP_NAMESPACE,
  NSBOX_STAGE_MOUNT_PRIVATE,
  NSBOX_STAGE_SCRATCH_MOUNT,
  NSBOX_STAGE_OVERLAY_MOUNT,
  NSBOX_STAGE_BIND_MOUNT,
  NSBOX_STAGE_TMPFS_MOUNT,
  NSBOX_STAGE_PROC_MOUNT,
  NSBOX_STAGE_DEVPTS_MOUNT,
  NSBOX_STAGE_MKDIR,
  NSBOX_STAGE_SYMLINK,
  NSBOX_STAGE_MASK,
  NSBOX_STAGE_READONLY,
  NSBOX_STAGE_PIVOT_ROOT,
  NSBOX_STAGE_READONLY_ROOT,
  NSBOX_STAGE_HOSTNAME,
  NSBOX_STAGE_LOOPBACK,
  NSBOX_STAGE_CWD,
  NSBOX_STAGE_USER,
  NSBOX_STAGE_CAPABILITIES,
  NSBOX_STAGE_NO_NEW_PRIVS,
  NSBOX_STAGE_PARENT_DEATH,
  NSBOX_STAGE_STDIO,
  NSBOX_STAGE_RLIMITS,
  NSBOX_STAGE_SECCOMP,
  NSBOX_STAGE_EXEC,
  NSBOX_STAGE_COUNT
};

/* nsbox-init always finds its end of the sync socket on this fd. */
#define NSBOX_INIT_SYNC_FD 3

struct nsbox_msg {
  uint32_t type;
  int32_t stage;
  int32_t err;          /* errno, or the wait status for NSBOX_MSG_EXIT */
  char syscall[32];
  char path[256];
};

#endif /* NSBOX_SYNC_MSG_H_ */
