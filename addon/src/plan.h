// SPDX-License-Identifier: Apache-2.0
// The spawn plan: everything the child needs between clone and execve, decided by
// TypeScript and copied here on the JS thread. The child only reads it: every string
// lives in `storage` (a deque, so pointers stay put) and is reached through const char*.
#ifndef NSBOX_PLAN_H_
#define NSBOX_PLAN_H_

#include <linux/filter.h>

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

namespace sbx {

enum class MountOp : int {
  kBind = 1,
  kTmpfs = 2,
  kProc = 3,
  kDevpts = 4,
  kMkdir = 5,
  kSymlink = 6,
  kMask = 7,
  kReadonly = 8,
};

enum MountFlag : int {
  kFlagReadonly = 1,
  kFlagRecursive = 2,
  kFlagNoSuid = 4,
  kFlagNoDev = 8,
  kFlagNoExec = 16,
};

enum class UsernsMode : int { kNone = 0, kSelf = 1, kParentWrite = 2, kParentHelper = 3 };

enum class StdioMode : int { kNull = 0, kPipe = 1 };

struct MountStep {
  MountOp op;
  const char* src;
  const char* dst;
  const char* data;
  int flags;
  int mode;
};

struct Rlimit {
  int resource;
  uint64_t soft;
  uint64_t hard;
};

struct Plan {
  std::deque<std::string> storage;

  std::vector<const char*> argv;      // null-terminated workload argv
  std::vector<const char*> initArgv;  // null-terminated: "nsbox-init", workload argv…
  std::vector<const char*> envp;      // null-terminated
  const char* path = "";              // PATH value from envp, for the search without init
  const char* cwd = "/";
  const char* hostname = "";
  bool newNet = true;
  // With newNet: a fresh network namespace made ahead of time (netns_pool.cc) to start the
  // child in instead of CLONE_NEWNET; -1 for none. Owned (and closed) by the caller.
  int netnsFd = -1;

  UsernsMode usernsMode = UsernsMode::kNone;
  const char* uidMap = "";
  const char* gidMap = "";
  const char* newuidmapPath = "";
  const char* newgidmapPath = "";

  const char* cgroupV2Dir = "";
  std::vector<const char*> cgroupV1Procs;

  const char* scratchDir = "";
  const char* scratchData = "";
  std::vector<const char*> scratchDirs;
  const char* rootDir = "";
  const char* overlayData = "";
  std::vector<MountStep> steps;
  bool readonlyRoot = false;

  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> groups;
  uint32_t capsLow = 0;
  uint32_t capsHigh = 0;
  bool noNewPrivs = true;
  std::vector<Rlimit> rlimits;

  std::vector<sock_filter> seccomp;  // empty: no filter

  bool useInit = true;
  const char* initPath = "";
  StdioMode stdio[3] = {StdioMode::kNull, StdioMode::kPipe, StdioMode::kPipe};
  int failStage = 0;

  const char* keep(std::string s) {
    storage.push_back(std::move(s));
    return storage.back().c_str();
  }
};

}  // namespace sbx

#endif  // NSBOX_PLAN_H_
