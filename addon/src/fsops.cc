// SPDX-License-Identifier: Apache-2.0
// mknod and xattrs for the layer unpacker (and the layer writer of commit), and path resolution
// confined to a sandbox's root for the host-side file access of long-lived sandboxes. They return
// -errno rather than throw: the caller turns them into typed errors with the entry's name.
#include "fsops.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include <cerrno>
#include <vector>

namespace sbx::fsops {
namespace {
std::string pathArg(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsString()) throw Napi::TypeError::New(info.Env(), "expected a string argument");
  std::string s = info[i].As<Napi::String>().Utf8Value();
  if (s.find('\0') != std::string::npos) throw Napi::TypeError::New(info.Env(), "NUL byte in argument");
  return s;
}
}  // namespace

Napi::Value Mknod(const Napi::CallbackInfo& info) {
  std::string path = pathArg(info, 0);
  mode_t mode = info[1].As<Napi::Number>().Uint32Value();
  dev_t dev = makedev(info[2].As<Napi::Number>().Uint32Value(), info[3].As<Napi::Number>().Uint32Value());
  int r = mknod(path.c_str(), mode, dev);
  return Napi::Number::New(info.Env(), r < 0 ? -errno : 0);
}

Napi::Value Lsetxattr(const Napi::CallbackInfo& info) {
  std::string path = pathArg(info, 0);
  std::string name = pathArg(info, 1);
  if (info.Length() < 3 || !info[2].IsBuffer()) throw Napi::TypeError::New(info.Env(), "lsetxattr: value must be a Buffer");
  auto value = info[2].As<Napi::Buffer<char>>();
  int r = lsetxattr(path.c_str(), name.c_str(), value.Data(), value.Length(), 0);
  return Napi::Number::New(info.Env(), r < 0 ? -errno : 0);
}

Napi::Value Lgetxattr(const Napi::CallbackInfo& info) {
  std::string path = pathArg(info, 0);
  std::string name = pathArg(info, 1);
  ssize_t size = lgetxattr(path.c_str(), name.c_str(), nullptr, 0);
  if (size < 0) return info.Env().Null();
  std::vector<char> buf(static_cast<size_t>(size));
  size = lgetxattr(path.c_str(), name.c_str(), buf.data(), buf.size());
  if (size < 0) return info.Env().Null();
  return Napi::Buffer<char>::Copy(info.Env(), buf.data(), static_cast<size_t>(size));
}

Napi::Value OpenInRoot(const Napi::CallbackInfo& info) {
  // openat2 with RESOLVE_IN_ROOT: "..", absolute paths and symlinks all resolve as if `dirfd`
  // were "/", so a sandbox's symlink cannot point the host's open outside of the sandbox's
  // root, however it is changed meanwhile; magic links (/proc/self/fd/…) are refused.
  int dirfd = info[0].As<Napi::Number>().Int32Value();
  std::string path = pathArg(info, 1);
  struct open_how how = {};
  how.flags = info[2].As<Napi::Number>().Uint32Value() | O_CLOEXEC;
  how.mode = (how.flags & (O_CREAT | O_TMPFILE)) ? info[3].As<Napi::Number>().Uint32Value() : 0;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  long fd = syscall(SYS_openat2, dirfd, path.c_str(), &how, sizeof how);
  return Napi::Number::New(info.Env(), fd < 0 ? -errno : fd);
}

Napi::Value LinkAt(const Napi::CallbackInfo& info) {
  // A hard link to what `fd` is open on, named `name` in directory `dirfd` (no path walk).
  int fd = info[0].As<Napi::Number>().Int32Value();
  int dirfd = info[1].As<Napi::Number>().Int32Value();
  std::string name = pathArg(info, 2);
  int r = linkat(fd, "", dirfd, name.c_str(), AT_EMPTY_PATH);
  return Napi::Number::New(info.Env(), r < 0 ? -errno : 0);
}

// The names of a file's extended attributes, as an array; a negative errno when they cannot be listed.
Napi::Value Llistxattr(const Napi::CallbackInfo& info) {
  std::string path = pathArg(info, 0);
  std::vector<char> buf;
  ssize_t size;
  // The list may grow between the two calls: ERANGE means ask again.
  do {
    size = llistxattr(path.c_str(), nullptr, 0);
    if (size < 0) return Napi::Number::New(info.Env(), -errno);
    buf.resize(static_cast<size_t>(size));
    size = size == 0 ? 0 : llistxattr(path.c_str(), buf.data(), buf.size());
  } while (size < 0 && errno == ERANGE);
  if (size < 0) return Napi::Number::New(info.Env(), -errno);
  Napi::Array names = Napi::Array::New(info.Env());
  uint32_t n = 0;
  for (size_t start = 0; start < static_cast<size_t>(size);) {
    size_t end = start;
    while (end < static_cast<size_t>(size) && buf[end] != '\0') end++;
    if (end > start) names.Set(n++, Napi::String::New(info.Env(), buf.data() + start, end - start));
    start = end + 1;
  }
  return names;
}

}  // namespace sbx::fsops
