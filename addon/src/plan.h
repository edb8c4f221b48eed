// SPDX-License-Identifier: Apache-2.0
// The spawn plan: everything the child needs between clone and execve, decided by
// TypeScript and copied here on the JS thread. The child only reads it: every string
// lives in `storage` (a deque, so pointers stay put) and is reached through const char*.
#ifndef NSBOX_PLAN_H_
#define NSBOX_PLAN_H_

#include <linux/filter.h>
#include <unistd.h>

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
  // Bind propagation (with kFlagRecursive: the whole tree). Neither: private.
  kFlagSlave = 32,
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

// A host program the parent runs while the child waits in NSBOX_STAGE_NETWORK_SETUP (pasta,
// nsbox-netconf): "{pid}" in an argument becomes the child's pid; `input` goes to its stdin.
struct SetupCommand {
  std::vector<std::string> argv;
  std::string input;
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
  // A network namespace prepared by the host (a bridged network): joined instead of a new one.
  const char* netnsPath = "";
  // exec in a running sandbox: a pidfd of its pid 1 (owned by the plan, dup'd on the JS
  // thread) whose namespaces the child joins instead of creating its own; -1 for a new sandbox.
  int joinPidfd = -1;
  bool joinUserns = false;
  // A pseudo-terminal master (dup'd, owned by the plan) from the sandbox's own devpts: the
  // child gets its peer as stdin, stdout, stderr and controlling terminal; -1 for none.
  int ptyMaster = -1;
  // Run by the parent, in order, once the child has its namespaces and id maps; the child
  // waits for them. Empty for most sandboxes (the child then never stops).
  std::vector<SetupCommand> setupCommands;
  // The host process's environment for those programs, copied on the JS thread (null-terminated).
  std::vector<const char*> hostEnv;
  // A rootless named network: /proc/<keeper pid>/ns/user. The sandbox's namespaces are made
  // inside it, so that the keeper's network plumbing has capabilities over them; "" otherwise.
  const char* keeperUsernsPath = "";
  // The terminal's owner and group inside the sandbox, given before the user switch; -1 keeps one.
  int ttyUid = -1;
  int ttyGid = -1;

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

  Plan() = default;
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;
  ~Plan();

  const char* keep(std::string s) {
    storage.push_back(std::move(s));
    return storage.back().c_str();
  }
};

inline Plan::~Plan() {
  if (joinPidfd >= 0) close(joinPidfd);
  if (ptyMaster >= 0) close(ptyMaster);
}

}  // namespace sbx

#endif  // NSBOX_PLAN_H_
