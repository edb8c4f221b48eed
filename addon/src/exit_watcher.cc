// SPDX-License-Identifier: Apache-2.0
// Exit watching without a thread or a threadpool slot per sandbox (node-pty's lesson):
// a single epoll thread reaps each sandbox's pid 1 when its pidfd turns readable.
#include "exit_watcher.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "sync_msg.h"

namespace sbx {

struct ExitWatcher::Exit {
  int pid;
  int status;
  struct rusage usage;
};

ExitWatcher::ExitWatcher(Napi::Env env) : env_(env) {
  epollFd_ = epoll_create1(EPOLL_CLOEXEC);
  stopFd_ = eventfd(0, EFD_CLOEXEC);
  struct epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.u64 = ~0ULL;
  epoll_ctl(epollFd_, EPOLL_CTL_ADD, stopFd_, &ev);
}

ExitWatcher::~ExitWatcher() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    (void)!write(stopFd_, &one, sizeof one);
    thread_.join();
    tsfn_.Release();
  }
  for (auto& [pid, entry] : entries_) close(entry.syncFd);
  close(epollFd_);
  close(stopFd_);
}

void ExitWatcher::setHandler(Napi::Function handler) {
  if (thread_.joinable()) throw Napi::Error::New(env_, "exit handler already set");
  tsfn_ = Napi::ThreadSafeFunction::New(env_, handler, "nsbox.exit", 0, 1, this);
  tsfn_.Unref(env_);
  thread_ = std::thread([this] { loop(); });
}

void ExitWatcher::watch(int pid, int pidfd, int syncFd) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    entries_[pid] = {pidfd, syncFd};
  }
  struct epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.u64 = static_cast<uint64_t>(pid);
  if (epoll_ctl(epollFd_, EPOLL_CTL_ADD, pidfd, &ev) < 0)
    throw Napi::Error::New(env_, std::string("epoll_ctl: ") + strerror(errno));
  // A running sandbox keeps Node's event loop alive, like a child process does.
  if (active_++ == 0) tsfn_.Ref(env_);
}

void ExitWatcher::loop() {
  struct epoll_event events[16];
  for (;;) {
    int n = epoll_wait(epollFd_, events, 16, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return;
    for (int i = 0; i < n; i++) {
      if (events[i].data.u64 == ~0ULL) return;
      int pid = static_cast<int>(events[i].data.u64);
      auto* exit = new Exit{pid, 0, {}};
      int reaped = wait4(pid, &exit->status, WNOHANG | __WALL, &exit->usage);
      if (reaped == 0) {
        delete exit;
        continue;
      }
      // reaped < 0 (someone else reaped it) must still end the watch, with no status.
      if (reaped < 0) exit->status = -1;
      Entry entry;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        entry = entries_[pid];
        entries_.erase(pid);
      }
      // Removed before JS learns of the exit: JS closes the pidfd after that.
      epoll_ctl(epollFd_, EPOLL_CTL_DEL, entry.pidfd, nullptr);
      // nsbox-init reports the workload's own status just before it exits; untrusted
      // bytes, so only a well-formed EXIT record counts.
      nsbox_msg msg;
      while (recv(entry.syncFd, &msg, sizeof msg, MSG_DONTWAIT) == static_cast<ssize_t>(sizeof msg)) {
        if (msg.type == NSBOX_MSG_EXIT) exit->status = msg.err;
      }
      close(entry.syncFd);
      if (tsfn_.BlockingCall(exit, [this](Napi::Env env, Napi::Function fn, Exit* e) { deliver(env, fn, this, e); }) != napi_ok)
        delete exit;
    }
  }
}

void ExitWatcher::deliver(Napi::Env env, Napi::Function handler, ExitWatcher* self, Exit* exit) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("pid", exit->pid);
  if (exit->status == -1) {
    o.Set("exitCode", env.Null());
    o.Set("signal", 0);
  } else if (WIFEXITED(exit->status)) {
    o.Set("exitCode", WEXITSTATUS(exit->status));
    o.Set("signal", 0);
  } else {
    o.Set("exitCode", env.Null());
    o.Set("signal", WIFSIGNALED(exit->status) ? WTERMSIG(exit->status) : 0);
  }
  double cpu = (exit->usage.ru_utime.tv_sec + exit->usage.ru_stime.tv_sec) * 1e6 + exit->usage.ru_utime.tv_usec +
               exit->usage.ru_stime.tv_usec;
  o.Set("cpuUsec", cpu);
  // No ru_maxrss: the child shared the host's memory until execve, so its high-water
  // mark is the host's. Memory peaks come from the sandbox's cgroup instead.
  delete exit;
  if (--self->active_ == 0) self->tsfn_.Unref(env);
  handler.Call({o});
}

namespace {
ExitWatcher& watcher(Napi::Env env) { return *env.GetInstanceData<ExitWatcher>(); }
}  // namespace

Napi::Value SetExitHandler(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsFunction()) throw Napi::TypeError::New(info.Env(), "setExitHandler(fn)");
  watcher(info.Env()).setHandler(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

Napi::Value WatchExit(const Napi::CallbackInfo& info) {
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsNumber())
    throw Napi::TypeError::New(info.Env(), "watchExit(pid, pidfd, syncFd)");
  watcher(info.Env()).watch(info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Number>().Int32Value(),
                            info[2].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}

}  // namespace sbx
