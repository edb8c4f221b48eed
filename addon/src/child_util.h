// SPDX-License-Identifier: Apache-2.0
// Small helpers the child may use: no allocation, no errno, no locks.
#ifndef NSBOX_CHILD_UTIL_H_
#define NSBOX_CHILD_UTIL_H_

#include <fcntl.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstring>

#include "plan.h"
#include "sync_msg.h"
#include "syscalls.h"

namespace sbx::child {

// Copies at most size-1 bytes and always terminates.
inline void copyStr(char* dst, size_t size, const char* src) {
  size_t i = 0;
  for (; src && src[i] && i + 1 < size; i++) dst[i] = src[i];
  dst[i] = '\0';
}

// Writes the decimal form of v into buf (at least 21 bytes).
inline void formatUnsigned(char* buf, unsigned long v) {
  char tmp[24];
  int n = 0;
  do {
    tmp[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v);
  for (int i = 0; i < n; i++) buf[i] = tmp[n - 1 - i];
  buf[n] = '\0';
}

// "/proc/self/fd/N": the path through which mount(2) reaches a target the child resolved
// safely inside the new root (the mount follows the magic link to that very dentry).
inline void fdPath(char (&buf)[40], int fd) {
  static const char prefix[] = "/proc/self/fd/";
  memcpy(buf, prefix, sizeof(prefix) - 1);
  formatUnsigned(buf + sizeof(prefix) - 1, static_cast<unsigned long>(fd));
}

// What each stage returns: 0, or -1 after the failure record has been sent.
struct Failure {
  int syncFd;

  int operator()(int stage, const char* syscall, long negErrno, const char* path = "") const {
    nsbox_msg msg;
    memset(&msg, 0, sizeof msg);
    msg.type = NSBOX_MSG_ERROR;
    msg.stage = stage;
    msg.err = static_cast<int32_t>(-negErrno);
    copyStr(msg.syscall, sizeof msg.syscall, syscall);
    copyStr(msg.path, sizeof msg.path, path);
    sys::call(SYS_sendto, syncFd, reinterpret_cast<long>(&msg), sizeof msg, MSG_NOSIGNAL, 0, 0);
    return -1;
  }
};

// Asks the parent for a step the child waits for (NSBOX_MSG_NEED_IDMAP, NSBOX_MSG_NEED_NETWORK)
// and blocks until it answers NSBOX_MSG_GO; a failure is reported for `stage`.
inline int waitForParent(const Failure& fail, int syncFd, uint32_t request, int stage) {
  nsbox_msg msg;
  memset(&msg, 0, sizeof msg);
  msg.type = request;
  long r = sys::call(SYS_sendto, syncFd, reinterpret_cast<long>(&msg), sizeof msg, MSG_NOSIGNAL, 0, 0);
  if (r < 0) return fail(stage, "send", r);
  r = sys::call(SYS_recvfrom, syncFd, reinterpret_cast<long>(&msg), sizeof msg, 0, 0, 0);
  if (r != static_cast<long>(sizeof msg) || msg.type != NSBOX_MSG_GO) return fail(stage, "recv", r < 0 ? r : -EPROTO);
  return 0;
}

// Writes a whole string to a path (for /proc/self/uid_map and friends).
inline long writeFile(const char* path, const char* data) {
  long fd = sys::sc(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return fd;
  size_t len = strlen(data);
  long n = sys::sc(SYS_write, fd, data, len);
  sys::sc(SYS_close, fd);
  if (n < 0) return n;
  return n == static_cast<long>(len) ? 0 : -EIO;
}

}  // namespace sbx::child

#endif  // NSBOX_CHILD_UTIL_H_
