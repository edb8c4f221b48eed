// SPDX-License-Identifier: Apache-2.0
// Child mount stages. Runs after clone in the child's own mount namespace; raw syscalls only.
#include "mount.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "sync_msg.h"

namespace sbx::mount {
namespace {

using sys::sc;
using child::copyStr;

long openInRoot(int rootFd, const char* rel, int flags) {
  struct open_how how;
  memset(&how, 0, sizeof how);
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  return sys::call(SYS_openat2, rootFd, reinterpret_cast<long>(rel), reinterpret_cast<long>(&how), sizeof how);
}

enum class Kind { kDir, kFile };

// Opens `path` (absolute inside the root) as O_PATH, creating missing components: every
// prefix is resolved from the root again, so symlinks in the image resolve inside it.
// Returns the fd or -errno.
long ensurePath(int rootFd, const char* path, Kind kind, int mode) {
  char buf[4096];
  while (*path == '/') path++;
  copyStr(buf, sizeof buf, path);
  if (buf[0] == '\0') return sc(SYS_fcntl, rootFd, F_DUPFD_CLOEXEC, 0);
  long fd = openInRoot(rootFd, buf, O_PATH);
  if (fd != -ENOENT) return fd;

  size_t len = strlen(buf);
  for (size_t end = 0; end <= len; end++) {
    if (buf[end] != '/' && buf[end] != '\0') continue;
    bool last = end == len;
    buf[end] = '\0';
    long cur = openInRoot(rootFd, buf, O_PATH);
    if (cur == -ENOENT) {
      // Create this component in its (already resolved) parent.
      char* slash = strrchr(buf, '/');
      const char* name = slash ? slash + 1 : buf;
      long parent;
      if (slash) {
        *slash = '\0';
        parent = openInRoot(rootFd, buf, O_PATH | O_DIRECTORY);
        *slash = '/';
      } else {
        parent = sc(SYS_fcntl, rootFd, F_DUPFD_CLOEXEC, 0);
      }
      if (parent < 0) return parent;
      long r;
      if (last && kind == Kind::kFile) {
        r = sc(SYS_openat, parent, name, O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, mode);
        if (r >= 0) sc(SYS_close, r);
      } else {
        r = sc(SYS_mkdirat, parent, name, last ? mode : 0755);
      }
      sc(SYS_close, parent);
      if (r < 0 && r != -EEXIST) return r;
      cur = openInRoot(rootFd, buf, O_PATH);
    }
    if (cur < 0) return cur;
    if (last) return cur;
    sc(SYS_close, cur);
    buf[end] = '/';
  }
  return -ENOENT;
}

long setAttr(int fd, int flags, bool recursive) {
  struct mount_attr attr;
  memset(&attr, 0, sizeof attr);
  if (flags & kFlagReadonly) attr.attr_set |= MOUNT_ATTR_RDONLY;
  if (flags & kFlagNoSuid) attr.attr_set |= MOUNT_ATTR_NOSUID;
  if (flags & kFlagNoDev) attr.attr_set |= MOUNT_ATTR_NODEV;
  if (flags & kFlagNoExec) attr.attr_set |= MOUNT_ATTR_NOEXEC;
  if (attr.attr_set == 0) return 0;
  return sys::call(SYS_mount_setattr, fd, reinterpret_cast<long>(""),
                   AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), reinterpret_cast<long>(&attr), sizeof attr);
}

// Attaches a detached tree (from open_tree) on top of target.
long attach(int treeFd, int targetFd) {
  return sc(SYS_move_mount, treeFd, "", targetFd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
}

unsigned long msFlags(int flags) {
  unsigned long ms = 0;
  if (flags & kFlagReadonly) ms |= MS_RDONLY;
  if (flags & kFlagNoSuid) ms |= MS_NOSUID;
  if (flags & kFlagNoDev) ms |= MS_NODEV;
  if (flags & kFlagNoExec) ms |= MS_NOEXEC;
  return ms;
}

// A bind mount gets its flags (read-only…) set on the detached copy, before it becomes
// visible: there is no window in which a read-only bind is writable.
// Parses "dev:ino" (decimal) as TypeScript wrote it when it validated the source.
bool parseIdentity(const char* text, unsigned long long* dev, unsigned long long* ino) {
  unsigned long long* out = dev;
  *dev = *ino = 0;
  bool digits = false;
  for (const char* p = text; *p; p++) {
    if (*p == ':' && out == dev && digits) {
      out = ino;
      digits = false;
    } else if (*p >= '0' && *p <= '9') {
      *out = *out * 10 + static_cast<unsigned long long>(*p - '0');
      digits = true;
    } else {
      return false;
    }
  }
  return out == ino && digits;
}

// Opens a bind source without following any symlink and checks it is still the file the
// options named: a source swapped for a symlink, or renamed away and replaced, between
// validation and now is refused, never followed. The mount then clones exactly that fd.
long openSource(const MountStep& s) {
  struct open_how how;
  memset(&how, 0, sizeof how);
  how.flags = O_PATH | O_CLOEXEC;
  how.resolve = RESOLVE_NO_SYMLINKS;
  long fd = sys::call(SYS_openat2, AT_FDCWD, reinterpret_cast<long>(s.src), reinterpret_cast<long>(&how), sizeof how);
  if (fd < 0 || !s.data[0]) return fd;
  struct stat st;
  unsigned long long dev, ino;
  long r = sc(SYS_newfstatat, fd, "", &st, AT_EMPTY_PATH);
  if (r == 0 && parseIdentity(s.data, &dev, &ino) && st.st_dev == dev && st.st_ino == ino) return fd;
  sc(SYS_close, fd);
  return r < 0 ? r : -ESTALE;
}

int bind(const MountStep& s, const child::Failure& fail, int rootFd) {
  bool recursive = s.flags & kFlagRecursive;
  long source = openSource(s);
  if (source < 0) return fail(NSBOX_STAGE_BIND_MOUNT, source == -ESTALE ? "fstat" : "openat2", source, s.src);
  long tree = sc(SYS_open_tree, source, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0));
  sc(SYS_close, source);
  if (tree < 0) return fail(NSBOX_STAGE_BIND_MOUNT, "open_tree", tree, s.src);
  struct stat st;
  long r = sc(SYS_newfstatat, tree, "", &st, AT_EMPTY_PATH);
  if (r < 0) return fail(NSBOX_STAGE_BIND_MOUNT, "fstat", r, s.src);
  long target = ensurePath(rootFd, s.dst, S_ISDIR(st.st_mode) ? Kind::kDir : Kind::kFile, S_ISDIR(st.st_mode) ? 0755 : 0644);
  if (target < 0) return fail(NSBOX_STAGE_BIND_MOUNT, "openat2", target, s.dst);
  r = setAttr(static_cast<int>(tree), s.flags, recursive);
  if (r < 0) return fail(NSBOX_STAGE_BIND_MOUNT, "mount_setattr", r, s.dst);
  r = attach(static_cast<int>(tree), static_cast<int>(target));
  sc(SYS_close, target);
  if (r < 0) {
    sc(SYS_close, tree);
    return fail(NSBOX_STAGE_BIND_MOUNT, "move_mount", r, s.dst);
  }
  // The clone is a slave of the host's mount (the namespace was made rslave): it stays one
  // only when asked (host mounts below the source then appear inside); otherwise private, so
  // nothing passes either way, as Docker's default rprivate.
  struct mount_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.propagation = (s.flags & kFlagSlave) ? MS_SLAVE : MS_PRIVATE;
  r = sys::call(SYS_mount_setattr, tree, reinterpret_cast<long>(""), AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), reinterpret_cast<long>(&attr), sizeof attr);
  sc(SYS_close, tree);
  return r < 0 ? fail(NSBOX_STAGE_BIND_MOUNT, "mount_setattr", r, s.dst) : 0;
}

// tmpfs, proc and devpts: the classic mount(2) onto the safely resolved target.
int filesystem(const MountStep& s, const child::Failure& fail, int rootFd, int stage, const char* type) {
  long target = ensurePath(rootFd, s.dst, Kind::kDir, s.mode ? s.mode : 0755);
  if (target < 0) return fail(stage, "openat2", target, s.dst);
  char path[40];
  child::fdPath(path, static_cast<int>(target));
  const char* data = s.data[0] ? s.data : nullptr;
  long r = sc(SYS_mount, type, path, type, msFlags(s.flags), data);
  sc(SYS_close, target);
  return r < 0 ? fail(stage, "mount", r, s.dst) : 0;
}

int mkdir(const MountStep& s, const child::Failure& fail, int rootFd) {
  long fd = ensurePath(rootFd, s.dst, Kind::kDir, s.mode ? s.mode : 0755);
  if (fd < 0) return fail(NSBOX_STAGE_MKDIR, "mkdirat", fd, s.dst);
  sc(SYS_close, fd);
  return 0;
}

int symlink(const MountStep& s, const child::Failure& fail, int rootFd) {
  char parent[4096];
  copyStr(parent, sizeof parent, s.dst);
  char* slash = strrchr(parent, '/');
  if (!slash || slash[1] == '\0') return fail(NSBOX_STAGE_SYMLINK, "symlinkat", -EINVAL, s.dst);
  *slash = '\0';
  long dir = ensurePath(rootFd, parent, Kind::kDir, 0755);
  if (dir < 0) return fail(NSBOX_STAGE_SYMLINK, "openat2", dir, parent);
  long r = sc(SYS_symlinkat, s.src, dir, slash + 1);
  sc(SYS_close, dir);
  return r < 0 && r != -EEXIST ? fail(NSBOX_STAGE_SYMLINK, "symlinkat", r, s.dst) : 0;
}

// Hides a path the workload must not read (/proc/kcore…): /dev/null over a file, an empty
// read-only tmpfs over a directory. A path this kernel does not have needs no hiding.
int mask(const MountStep& s, const child::Failure& fail, int rootFd) {
  const char* rel = s.dst;
  while (*rel == '/') rel++;
  long target = openInRoot(rootFd, rel, O_PATH);
  if (target == -ENOENT) return 0;
  if (target < 0) return fail(NSBOX_STAGE_MASK, "openat2", target, s.dst);
  struct stat st;
  long r = sc(SYS_newfstatat, target, "", &st, AT_EMPTY_PATH);
  if (r >= 0) {
    if (S_ISDIR(st.st_mode)) {
      char path[40];
      child::fdPath(path, static_cast<int>(target));
      r = sc(SYS_mount, "tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0,mode=0555");
    } else {
      long tree = sc(SYS_open_tree, AT_FDCWD, "/dev/null", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
      r = tree < 0 ? tree : attach(static_cast<int>(tree), static_cast<int>(target));
      if (tree >= 0) sc(SYS_close, tree);
    }
  }
  sc(SYS_close, target);
  return r < 0 ? fail(NSBOX_STAGE_MASK, "mount", r, s.dst) : 0;
}

// Makes an existing path read-only by binding it over itself with the flag set first.
int readonly(const MountStep& s, const child::Failure& fail, int rootFd) {
  const char* rel = s.dst;
  while (*rel == '/') rel++;
  long target = openInRoot(rootFd, rel, O_PATH);
  if (target == -ENOENT) return 0;
  if (target < 0) return fail(NSBOX_STAGE_READONLY, "openat2", target, s.dst);
  long tree = sc(SYS_open_tree, target, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
  long r = tree;
  if (tree >= 0) r = setAttr(static_cast<int>(tree), s.flags | kFlagReadonly, true);
  if (r >= 0) r = attach(static_cast<int>(tree), static_cast<int>(target));
  if (tree >= 0) sc(SYS_close, tree);
  sc(SYS_close, target);
  return r < 0 ? fail(NSBOX_STAGE_READONLY, "mount", r, s.dst) : 0;
}

}  // namespace

int stageMountPrivate(const Plan&, const child::Failure& fail) {
  // Slave, not private: nothing of the sandbox's ever propagates to the host, while a bind that
  // asks for slave propagation can keep receiving the host's mounts (every other mount is made
  // private, or is new and private, or is detached with the old root at pivot_root).
  long r = sc(SYS_mount, nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr);
  return r < 0 ? fail(NSBOX_STAGE_MOUNT_PRIVATE, "mount", r, "/") : 0;
}

int stageRootfs(const Plan& plan, const child::Failure& fail, int* rootFd) {
  // The scratch tmpfs is mounted in this mount namespace only: upper, work and the root
  // mountpoint vanish with the namespace, so a crashed host leaves nothing to collect.
  long r = sc(SYS_mount, "tmpfs", plan.scratchDir, "tmpfs", MS_NOSUID | MS_NODEV, plan.scratchData);
  if (r < 0) return fail(NSBOX_STAGE_SCRATCH_MOUNT, "mount", r, plan.scratchDir);
  for (const char* dir : plan.scratchDirs) {
    r = sc(SYS_mkdirat, AT_FDCWD, dir, 0755);
    if (r < 0 && r != -EEXIST) return fail(NSBOX_STAGE_SCRATCH_MOUNT, "mkdir", r, dir);
  }
  // nodev: a device node shipped in an image must not open the host's device.
  r = sc(SYS_mount, "overlay", plan.rootDir, "overlay", MS_NODEV, plan.overlayData);
  if (r < 0) return fail(NSBOX_STAGE_OVERLAY_MOUNT, "mount", r, plan.rootDir);
  r = sc(SYS_openat, AT_FDCWD, plan.rootDir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (r < 0) return fail(NSBOX_STAGE_OVERLAY_MOUNT, "open", r, plan.rootDir);
  *rootFd = static_cast<int>(r);
  return 0;
}

int stageSteps(const Plan& plan, const child::Failure& fail, int rootFd) {
  for (const MountStep& s : plan.steps) {
    int r = 0;
    switch (s.op) {
      case MountOp::kBind: r = bind(s, fail, rootFd); break;
      case MountOp::kTmpfs: r = filesystem(s, fail, rootFd, NSBOX_STAGE_TMPFS_MOUNT, "tmpfs"); break;
      case MountOp::kProc: r = filesystem(s, fail, rootFd, NSBOX_STAGE_PROC_MOUNT, "proc"); break;
      case MountOp::kDevpts: r = filesystem(s, fail, rootFd, NSBOX_STAGE_DEVPTS_MOUNT, "devpts"); break;
      case MountOp::kMkdir: r = mkdir(s, fail, rootFd); break;
      case MountOp::kSymlink: r = symlink(s, fail, rootFd); break;
      case MountOp::kMask: r = mask(s, fail, rootFd); break;
      case MountOp::kReadonly: r = readonly(s, fail, rootFd); break;
      default: r = fail(NSBOX_STAGE_MKDIR, "plan", -EINVAL, s.dst);
    }
    if (r < 0) return r;
  }
  return 0;
}

}  // namespace sbx::mount
