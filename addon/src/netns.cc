// SPDX-License-Identifier: Apache-2.0
// Creates a named network namespace the way iproute2's `ip netns add` does, without the
// `ip` binary and without moving any Node thread: a short-lived thread unshares
// CLONE_NEWNET (the net namespace is per task, so only that thread moves) and bind-mounts
// its /proc/thread-self/ns/net onto a file, which keeps the namespace alive with no process
// in it. Failures come back as {syscall, errno} for TypeScript to turn into typed errors.
#include "netns.h"

#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <thread>

namespace sbx::netns {
namespace {

struct Failure {
  const char* syscall = nullptr;
  int err = 0;
};

std::string stringArg(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsString()) throw Napi::TypeError::New(info.Env(), "expected a string argument");
  std::string s = info[i].As<Napi::String>().Utf8Value();
  if (s.empty() || s.find('\0') != std::string::npos) throw Napi::TypeError::New(info.Env(), "empty string or NUL byte in argument");
  return s;
}

Napi::Value result(Napi::Env env, const Failure& failure) {
  if (failure.syscall == nullptr) return env.Null();
  Napi::Object out = Napi::Object::New(env);
  out.Set("syscall", failure.syscall);
  out.Set("errno", failure.err);
  return out;
}

/* The directory becomes a mount point of its own with shared propagation, as iproute2 does for
   /run/netns: a mount namespace copied from the host later (a sandbox's, before it pivots away)
   gets the namespace mounts as peers, so removing one here removes it there too instead of
   pinning the namespace. Bind it onto itself only once: MS_SHARED on a non-mount-point is EINVAL. */
Failure makeSharedMountPoint(const std::string& dir) {
  bool bound = false;
  while (mount("", dir.c_str(), "none", MS_SHARED | MS_REC, nullptr) != 0) {
    if (errno != EINVAL || bound) return {"mount", errno};
    if (mount(dir.c_str(), dir.c_str(), "none", MS_BIND | MS_REC, nullptr) != 0) return {"mount", errno};
    bound = true;
  }
  return {};
}

// In the new namespace (the socket is made there): loopback comes up, as in every sandbox.
Failure loopbackUp() {
  int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) return {"socket", errno};
  ifreq request;
  memset(&request, 0, sizeof(request));
  strncpy(request.ifr_name, "lo", IFNAMSIZ - 1);
  Failure failure;
  if (ioctl(sock, SIOCGIFFLAGS, &request) != 0) {
    failure = {"ioctl", errno};
  } else {
    request.ifr_flags |= IFF_UP;
    if (ioctl(sock, SIOCSIFFLAGS, &request) != 0) failure = {"ioctl", errno};
  }
  close(sock);
  return failure;
}

}  // namespace

// create(dir, path): dir must exist; path (inside dir) must not. The namespace has loopback up.
Napi::Value Create(const Napi::CallbackInfo& info) {
  std::string dir = stringArg(info, 0);
  std::string path = stringArg(info, 1);
  Failure failure = makeSharedMountPoint(dir);
  if (failure.syscall != nullptr) return result(info.Env(), failure);

  int fd = open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
  if (fd < 0) return result(info.Env(), {"open", errno});
  close(fd);

  /* A thread of its own: unshare(CLONE_NEWNET) moves only the calling task, and this one
     exits right after the bind, so no Node thread ever changes namespace. */
  std::thread worker([&failure, &path] {
    if (unshare(CLONE_NEWNET) != 0) {
      failure = {"unshare", errno};
      return;
    }
    failure = loopbackUp();
    if (failure.syscall != nullptr) return;
    if (mount("/proc/thread-self/ns/net", path.c_str(), "none", MS_BIND, nullptr) != 0) failure = {"mount", errno};
  });
  worker.join();
  if (failure.syscall != nullptr) unlink(path.c_str());
  return result(info.Env(), failure);
}

// remove(path): detach the bind mount (the namespace goes when nothing else holds it) and unlink the file.
// Missing or already unmounted is fine, so removal can be repeated after a crash.
Napi::Value Remove(const Napi::CallbackInfo& info) {
  std::string path = stringArg(info, 0);
  if (umount2(path.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) != 0 && errno != EINVAL && errno != ENOENT)
    return result(info.Env(), {"umount2", errno});
  if (unlink(path.c_str()) != 0 && errno != ENOENT) return result(info.Env(), {"unlink", errno});
  return info.Env().Null();
}

// deleteLink(name): RTM_DELLINK by name in the host's network namespace. Returns 0 or -errno (-ENODEV: no such link).
Napi::Value DeleteLink(const Napi::CallbackInfo& info) {
  std::string name = stringArg(info, 0);
  if (name.size() >= IFNAMSIZ) throw Napi::TypeError::New(info.Env(), "interface name too long");
  int sock = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (sock < 0) return Napi::Number::New(info.Env(), -errno);

  struct {
    nlmsghdr header;
    ifinfomsg link;
    char attrs[RTA_SPACE(IFNAMSIZ)];
  } request;
  memset(&request, 0, sizeof(request));
  auto* attr = reinterpret_cast<rtattr*>(request.attrs);
  attr->rta_type = IFLA_IFNAME;
  attr->rta_len = RTA_LENGTH(name.size() + 1);
  memcpy(RTA_DATA(attr), name.c_str(), name.size() + 1);
  request.header.nlmsg_type = RTM_DELLINK;
  request.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  request.header.nlmsg_seq = 1;
  request.header.nlmsg_len = NLMSG_LENGTH(sizeof(ifinfomsg)) + RTA_ALIGN(attr->rta_len);
  request.link.ifi_family = AF_UNSPEC;

  int status = 0;
  if (send(sock, &request, request.header.nlmsg_len, 0) < 0) {
    status = -errno;
  } else {
    char reply[4096];
    ssize_t n;
    do n = recv(sock, reply, sizeof(reply), 0);
    while (n < 0 && errno == EINTR);
    auto* header = reinterpret_cast<nlmsghdr*>(reply);
    if (n < 0) status = -errno;
    else if (n < static_cast<ssize_t>(NLMSG_LENGTH(sizeof(nlmsgerr))) || header->nlmsg_type != NLMSG_ERROR) status = -EPROTO;
    else status = reinterpret_cast<nlmsgerr*>(NLMSG_DATA(header))->error;  // 0 (the ack) or -errno
  }
  close(sock);
  return Napi::Number::New(info.Env(), status);
}

}  // namespace sbx::netns
