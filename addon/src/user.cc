// SPDX-License-Identifier: Apache-2.0
// Id maps and credentials. Child functions use raw syscalls; parent functions run on the
// spawn worker thread and may use libc.
#include "user.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <sstream>
#include <string>
#include <vector>

extern char** environ;

namespace sbx::user {

using sys::sc;

int stageIdMap(const Plan& plan, const child::Failure& fail, int syncFd) {
  if (plan.usernsMode == UsernsMode::kNone) return 0;
  if (plan.usernsMode == UsernsMode::kSelf) {
    // An unprivileged process may map only its own ids, and must deny setgroups first.
    long r = child::writeFile("/proc/self/setgroups", "deny");
    if (r < 0) return fail(NSBOX_STAGE_ID_MAP, "write", r, "/proc/self/setgroups");
    r = child::writeFile("/proc/self/uid_map", plan.uidMap);
    if (r < 0) return fail(NSBOX_STAGE_ID_MAP, "write", r, "/proc/self/uid_map");
    r = child::writeFile("/proc/self/gid_map", plan.gidMap);
    if (r < 0) return fail(NSBOX_STAGE_ID_MAP, "write", r, "/proc/self/gid_map");
    return 0;
  }
  return child::waitForParent(fail, syncFd, NSBOX_MSG_NEED_IDMAP, NSBOX_STAGE_ID_MAP);
}

int stageUser(const Plan& plan, const child::Failure& fail) {
  // A one-id map came with setgroups denied: there are no groups to set.
  if (plan.usernsMode != UsernsMode::kSelf) {
    long r = sc(SYS_setgroups, plan.groups.size(), plan.groups.data());
    if (r < 0) return fail(NSBOX_STAGE_USER, "setgroups", r);
  }
  long r = sc(SYS_setresgid, plan.gid, plan.gid, plan.gid);
  if (r < 0) return fail(NSBOX_STAGE_USER, "setresgid", r);
  r = sc(SYS_setresuid, plan.uid, plan.uid, plan.uid);
  if (r < 0) return fail(NSBOX_STAGE_USER, "setresuid", r);
  return 0;
}

namespace {

int writeMap(pid_t pid, const char* file, const char* contents) {
  std::string path = "/proc/" + std::to_string(pid) + "/" + file;
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  size_t len = strlen(contents);
  ssize_t n = write(fd, contents, len);
  int err = n < 0 ? errno : 0;
  close(fd);
  if (n < 0) return -err;
  return n == static_cast<ssize_t>(len) ? 0 : -EIO;
}

// newuidmap PID inside outside count … ; the map text holds the triples, one per line.
int runHelper(const char* helper, pid_t pid, const char* map) {
  std::vector<std::string> args = {helper, std::to_string(pid)};
  std::istringstream in(map);
  for (std::string word; in >> word;) args.push_back(word);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t child;
  int err = posix_spawn(&child, helper, nullptr, nullptr, argv.data(), environ);
  if (err) return -err;
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EPERM;
}

}  // namespace

int parentWriteIdMaps(const Plan& plan, pid_t pid, const char** what) {
  int r;
  if (plan.usernsMode == UsernsMode::kParentHelper) {
    *what = plan.newuidmapPath;
    if ((r = runHelper(plan.newuidmapPath, pid, plan.uidMap)) < 0) return r;
    *what = plan.newgidmapPath;
    return runHelper(plan.newgidmapPath, pid, plan.gidMap);
  }
  *what = "uid_map";
  if ((r = writeMap(pid, "uid_map", plan.uidMap)) < 0) return r;
  *what = "gid_map";
  return writeMap(pid, "gid_map", plan.gidMap);
}

}  // namespace sbx::user
