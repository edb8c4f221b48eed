// SPDX-License-Identifier: Apache-2.0
// The addon's exports table, and nothing else.
#include <napi.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "exit_watcher.h"
#include "fsops.h"
#include "netns.h"
#include "spawn_worker.h"
#include "tty.h"

namespace {

// kill(pidfd, signal): a pidfd never names a recycled pid.
Napi::Value Kill(const Napi::CallbackInfo& info) {
  int pidfd = info[0].As<Napi::Number>().Int32Value();
  int sig = info[1].As<Napi::Number>().Int32Value();
  long r = syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0);
  return Napi::Number::New(info.Env(), r < 0 ? -errno : 0);
}

#ifndef PIDFD_SIGNAL_PROCESS_GROUP
#define PIDFD_SIGNAL_PROCESS_GROUP (1UL << 2)
#endif

// killGroup(pidfd, signal): signals the process group led by the pidfd's process, also after
// that process is gone (the pidfd keeps its struct pid, so no recycled group is ever hit); ESRCH
// when no process is in it. Before Linux 6.9 (EINVAL for the flag): kill(-pid) while the leader
// still exists, its pid read from the pidfd's fdinfo.
Napi::Value KillGroup(const Napi::CallbackInfo& info) {
  int pidfd = info[0].As<Napi::Number>().Int32Value();
  int sig = info[1].As<Napi::Number>().Int32Value();
  long r = syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, PIDFD_SIGNAL_PROCESS_GROUP);
  if (r < 0 && errno == EINVAL) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", pidfd);
    FILE* f = fopen(path, "re");
    long pid = -1;
    if (f) {
      char line[128];
      while (fgets(line, sizeof line, f))
        if (sscanf(line, "Pid: %ld", &pid) == 1) break;
      fclose(f);
    }
    if (pid <= 0) {
      errno = ESRCH;
      r = -1;
    } else {
      r = kill(static_cast<pid_t>(-pid), sig);
    }
  }
  return Napi::Number::New(info.Env(), r < 0 ? -errno : 0);
}

Napi::Value Close(const Napi::CallbackInfo& info) {
  close(info[0].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new sbx::ExitWatcher(env));
  exports.Set("spawn", Napi::Function::New(env, sbx::Spawn, "spawn"));
  exports.Set("setExitHandler", Napi::Function::New(env, sbx::SetExitHandler, "setExitHandler"));
  exports.Set("watchExit", Napi::Function::New(env, sbx::WatchExit, "watchExit"));
  exports.Set("kill", Napi::Function::New(env, Kill, "kill"));
  exports.Set("killGroup", Napi::Function::New(env, KillGroup, "killGroup"));
  exports.Set("close", Napi::Function::New(env, Close, "close"));
  exports.Set("mknod", Napi::Function::New(env, sbx::fsops::Mknod, "mknod"));
  exports.Set("lsetxattr", Napi::Function::New(env, sbx::fsops::Lsetxattr, "lsetxattr"));
  exports.Set("lgetxattr", Napi::Function::New(env, sbx::fsops::Lgetxattr, "lgetxattr"));
  exports.Set("openInRoot", Napi::Function::New(env, sbx::fsops::OpenInRoot, "openInRoot"));
  exports.Set("linkAt", Napi::Function::New(env, sbx::fsops::LinkAt, "linkAt"));
  exports.Set("setWindowSize", Napi::Function::New(env, sbx::tty::SetWindowSize, "setWindowSize"));
  exports.Set("llistxattr", Napi::Function::New(env, sbx::fsops::Llistxattr, "llistxattr"));
  exports.Set("netnsCreate", Napi::Function::New(env, sbx::netns::Create, "netnsCreate"));
  exports.Set("netnsRemove", Napi::Function::New(env, sbx::netns::Remove, "netnsRemove"));
  exports.Set("deleteLink", Napi::Function::New(env, sbx::netns::DeleteLink, "deleteLink"));
  return exports;
}

}  // namespace

NODE_API_MODULE(nsbox, Init)
