// SPDX-License-Identifier: Apache-2.0
// One thread for all running sandboxes: epoll over their pidfds, reap, report to JS.
#ifndef NSBOX_EXIT_WATCHER_H_
#define NSBOX_EXIT_WATCHER_H_

#include <napi.h>

#include <mutex>
#include <thread>
#include <unordered_map>

namespace sbx {

class ExitWatcher {
 public:
  explicit ExitWatcher(Napi::Env env);
  ~ExitWatcher();

  // JS thread: the one function that receives every exit record.
  void setHandler(Napi::Function handler);
  // JS thread: start watching a spawned sandbox. Takes ownership of syncFd (not of pidfd).
  void watch(int pid, int pidfd, int syncFd);

 private:
  struct Entry {
    int pidfd;
    int syncFd;
  };
  struct Exit;

  void loop();
  static void deliver(Napi::Env env, Napi::Function handler, ExitWatcher* self, Exit* exit);

  Napi::Env env_;
  Napi::ThreadSafeFunction tsfn_;
  int epollFd_ = -1;
  int stopFd_ = -1;
  std::thread thread_;
  std::mutex mutex_;
  std::unordered_map<int, Entry> entries_;  // by pid
  int active_ = 0;                          // JS thread only: keeps the event loop alive
};

Napi::Value SetExitHandler(const Napi::CallbackInfo& info);
Napi::Value WatchExit(const Napi::CallbackInfo& info);

}  // namespace sbx

#endif  // NSBOX_EXIT_WATCHER_H_
