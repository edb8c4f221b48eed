// SPDX-License-Identifier: Apache-2.0
// Creating a network namespace is the largest single kernel cost of a sandbox start (about
// 0.4 ms inside clone3 on the benchmark machine). Made here ahead of time, off the spawn path;
// the spawn worker enters one for the clone (spawn_worker.cc), so the child starts in it.
#include "netns_pool.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

namespace sbx {
namespace {

constexpr const char* kThreadNetns = "/proc/thread-self/ns/net";

class NetnsWorker : public Napi::AsyncWorker {
 public:
  explicit NetnsWorker(Napi::Function callback) : Napi::AsyncWorker(callback, "nsbox.netns") {}

  void Execute() override {
    int host = open(kThreadNetns, O_RDONLY | O_CLOEXEC);
    if (host < 0) {
      err_ = errno;
      return;
    }
    // unshare(CLONE_NEWNET) moves only this thread; network namespaces are per task.
    if (unshare(CLONE_NEWNET) < 0) {
      err_ = errno;
      close(host);
      return;
    }
    fd_ = open(kThreadNetns, O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) err_ = errno;
    // A thread of the pool left in a sandbox's namespace would run later host work there:
    // there is no safe way on, so stop the process.
    if (setns(host, CLONE_NEWNET) < 0) abort();
    close(host);
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (err_ != 0) Callback().Call({Napi::Number::New(env, err_), env.Null()});
    else Callback().Call({env.Null(), Napi::Number::New(env, fd_)});
  }

 private:
  int err_ = 0;
  int fd_ = -1;
};

}  // namespace

Napi::Value CreateNetns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsFunction()) throw Napi::TypeError::New(env, "createNetns(callback): expected a function");
  (new NetnsWorker(info[0].As<Napi::Function>()))->Queue();
  return env.Undefined();
}

}  // namespace sbx
