// SPDX-License-Identifier: Apache-2.0
// The addon's exports table, and nothing else.
#include <napi.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "exit_watcher.h"
#include "fsops.h"
#include "netns_pool.h"
#include "spawn_worker.h"

namespace {

// kill(pidfd, signal): a pidfd never names a recycled pid.
Napi::Value Kill(const Napi::CallbackInfo& info) {
  int pidfd = info[0].As<Napi::Number>().Int32Value();
  int sig = info[1].As<Napi::Number>().Int32Value();
  long r = syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0);
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
  exports.Set("close", Napi::Function::New(env, Close, "close"));
  exports.Set("mknod", Napi::Function::New(env, sbx::fsops::Mknod, "mknod"));
  exports.Set("lsetxattr", Napi::Function::New(env, sbx::fsops::Lsetxattr, "lsetxattr"));
  exports.Set("lgetxattr", Napi::Function::New(env, sbx::fsops::Lgetxattr, "lgetxattr"));
  exports.Set("createNetns", Napi::Function::New(env, sbx::CreateNetns, "createNetns"));
  return exports;
}

}  // namespace

NODE_API_MODULE(nsbox, Init)
