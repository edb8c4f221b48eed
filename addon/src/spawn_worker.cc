// SPDX-License-Identifier: Apache-2.0
// clone3(CLONE_VM) from a worker thread, then the parent's half of the handshake.
//
// Why CLONE_VM: a fork of the Node process would copy its page tables, a cost that grows
// with the host's heap (37 ms at 1 GB). Sharing the address space costs nothing, at the
// price that the child may only run the allocation-free code in child.cc on its own stack.
#include "spawn_worker.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "child.h"
#include "marshal.h"
#include "network_setup.h"
#include "syscalls.h"
#include "user.h"

namespace sbx {
namespace {

constexpr size_t kStackSize = 256 * 1024;

// Closes every fd it holds unless released.
struct FdSet {
  int fds[32];
  int count = 0;
  int add(int fd) {
    if (fd >= 0 && count < 32) fds[count++] = fd;
    return fd;
  }
  void closeAll() {
    for (int i = 0; i < count; i++) close(fds[i]);
    count = 0;
  }
  void release() { count = 0; }
  ~FdSet() { closeAll(); }
};

void setFailure(nsbox_msg& msg, int stage, const char* syscall, int err, const char* path) {
  memset(&msg, 0, sizeof msg);
  msg.type = NSBOX_MSG_ERROR;
  msg.stage = stage;
  msg.err = err;
  strncpy(msg.syscall, syscall, sizeof msg.syscall - 1);
  strncpy(msg.path, path ? path : "", sizeof msg.path - 1);
}

// One sync record, and the fd that came with it, if any (close-on-exec, into *fd).
ssize_t receive(int socket, nsbox_msg* msg, int* fd) {
  struct iovec iov = {msg, sizeof *msg};
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int))];
  } control;
  struct msghdr header = {};
  header.msg_iov = &iov;
  header.msg_iovlen = 1;
  header.msg_control = control.buf;
  header.msg_controllen = sizeof control.buf;
  ssize_t n = recvmsg(socket, &header, MSG_CMSG_CLOEXEC);
  if (n < 0) return n;
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&header); c; c = CMSG_NXTHDR(&header, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
      memcpy(fd, CMSG_DATA(c), sizeof *fd);
      break;
    }
  }
  return n;
}

void reap(int pid) {
  while (waitpid(pid, nullptr, __WALL) < 0 && errno == EINTR) {
  }
}

}  // namespace

SpawnWorker::SpawnWorker(Napi::Function callback, std::unique_ptr<Plan> plan)
    : Napi::AsyncWorker(callback, "nsbox.spawn"), plan_(std::move(plan)) {}

void SpawnWorker::Execute() {
  const Plan& plan = *plan_;
  FdSet childEnds;   // closed in the parent once the child has its copies
  FdSet parentEnds;  // closed on failure only

  auto parentFail = [&](const char* syscall, const char* path) {
    setFailure(failure_, NSBOX_STAGE_PARENT_SETUP, syscall, errno, path);
    failed_ = true;
  };

  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) return parentFail("socketpair", "");
  parentEnds.add(sv[0]);
  childEnds.add(sv[1]);

  child::Context ctx{};
  ctx.plan = &plan;
  ctx.syncFd = sv[1];
  ctx.initFd = -1;
  ctx.netnsFd = -1;
  ctx.joinPidfd = plan.joinPidfd;
  ctx.keeperUsernsFd = -1;
  ctx.nestedContext = nullptr;
  ctx.gateReadFd = ctx.gateWriteFd = -1;
  // Lets the child see that the host died before it armed its parent-death signal.
  ctx.hostPidfd = childEnds.add(static_cast<int>(syscall(SYS_pidfd_open, getpid(), 0)));
  if (ctx.hostPidfd < 0) return parentFail("pidfd_open", "");
  if (plan.ptyMaster >= 0) {
    // The terminal's other end, opened from the master itself (no path in anybody's /dev/pts
    // to race for), unlocked first as posix_openpt callers do with unlockpt.
    int unlock = 0;
    if (ioctl(plan.ptyMaster, TIOCSPTLCK, &unlock) < 0) return parentFail("ioctl(TIOCSPTLCK)", "ptmx");
    int peer = childEnds.add(ioctl(plan.ptyMaster, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (peer < 0) return parentFail("ioctl(TIOCGPTPEER)", "ptmx");
    for (int& fd : ctx.stdio) fd = peer;
  }
  for (int i = 0; i < 3 && plan.ptyMaster < 0; i++) {
    if (plan.stdio[i] == StdioMode::kPipe) {
      int p[2];
      if (pipe2(p, O_CLOEXEC) < 0) return parentFail("pipe2", "");
      ctx.stdio[i] = childEnds.add(i == 0 ? p[0] : p[1]);
      stdioFds_[i] = parentEnds.add(i == 0 ? p[1] : p[0]);
    } else {
      ctx.stdio[i] = childEnds.add(open("/dev/null", O_RDWR | O_CLOEXEC));
      if (ctx.stdio[i] < 0) return parentFail("open", "/dev/null");
    }
  }
  if (plan.useInit) {
    // Opened here, exec'd from the child after pivot_root: the binary stays on the host.
    ctx.initFd = childEnds.add(open(plan.initPath, O_PATH | O_CLOEXEC));
    if (ctx.initFd < 0) return parentFail("open", plan.initPath);
  }
  if (plan.cgroupV1Procs.size() > static_cast<size_t>(child::kMaxCgroupFds)) {
    errno = E2BIG;
    return parentFail("open", "cgroup.procs");
  }
  for (const char* procs : plan.cgroupV1Procs) {
    int fd = childEnds.add(open(procs, O_WRONLY | O_CLOEXEC));
    if (fd < 0) return parentFail("open", procs);
    ctx.cgroupProcsFds[ctx.cgroupProcsCount++] = fd;
  }
  if (plan.netnsPath[0]) {
    ctx.netnsFd = childEnds.add(open(plan.netnsPath, O_RDONLY | O_CLOEXEC));
    if (ctx.netnsFd < 0) return parentFail("open", plan.netnsPath);
  }
  void* nestedStack = nullptr;
  if (plan.keeperUsernsPath[0]) {
    ctx.keeperUsernsFd = childEnds.add(open(plan.keeperUsernsPath, O_RDONLY | O_CLOEXEC));
    if (ctx.keeperUsernsFd < 0) return parentFail("open", plan.keeperUsernsPath);
  }
  int cgroupFd = -1;
  if (plan.cgroupV2Dir[0]) {
    cgroupFd = childEnds.add(open(plan.cgroupV2Dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (cgroupFd < 0) return parentFail("open", plan.cgroupV2Dir);
  }

  void* stack = mmap(nullptr, kStackSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0);
  if (stack == MAP_FAILED) return parentFail("mmap", "");
  child::Context nestedCtx{};
  if (ctx.keeperUsernsFd >= 0) {
    // The sandbox's pid 1 is the intermediate's child and runs on a stack of its own.
    int gate[2];
    if (pipe2(gate, O_CLOEXEC) < 0) {
      munmap(stack, kStackSize);
      return parentFail("pipe2", "");
    }
    ctx.gateReadFd = childEnds.add(gate[0]);
    ctx.gateWriteFd = childEnds.add(gate[1]);
    nestedStack = mmap(nullptr, kStackSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0);
    if (nestedStack == MAP_FAILED) {
      munmap(stack, kStackSize);
      return parentFail("mmap", "");
    }
    ctx.nestedStack = nestedStack;  // clone3 takes the lowest address and the size
    ctx.nestedStackSize = kStackSize;
    nestedCtx = ctx;
    nestedCtx.keeperUsernsFd = -1;
    ctx.nestedContext = &nestedCtx;
  }
  auto unmapStacks = [&] {
    munmap(stack, kStackSize);
    if (nestedStack) munmap(nestedStack, kStackSize);
  };

  struct clone_args args;
  memset(&args, 0, sizeof args);
  // exec joins the namespaces of a running sandbox (setns in the child) instead of making new ones.
  // A rootless named network: the intermediate makes the namespaces itself, inside the keeper's.
  bool join = plan.joinPidfd >= 0 || ctx.keeperUsernsFd >= 0;
  args.flags = CLONE_VM | CLONE_PIDFD;
  if (!join) args.flags |= CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC;
  if (!join && plan.newNet && !plan.netnsPath[0]) args.flags |= CLONE_NEWNET;
  if (!join && plan.usernsMode != UsernsMode::kNone) args.flags |= CLONE_NEWUSER;
  if (cgroupFd >= 0) {
    args.flags |= CLONE_INTO_CGROUP;
    args.cgroup = static_cast<uint64_t>(cgroupFd);
  }
  int pidfd = -1;
  args.pidfd = reinterpret_cast<uint64_t>(&pidfd);
  args.exit_signal = SIGCHLD;
  args.stack = reinterpret_cast<uint64_t>(stack);
  args.stack_size = kStackSize;

  // Block every signal across clone: the child must not run Node's handlers on the shared
  // memory before it has reset them to their defaults.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  long pid = sys::clone3Run(&args, child::main, &ctx);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) {
    unmapStacks();
    errno = static_cast<int>(-pid);
    setFailure(failure_, NSBOX_STAGE_CLONE, "clone3", errno, "");
    failed_ = true;
    return;
  }
  pid_ = static_cast<int>(pid);
  pidfd_ = pidfd;
  childEnds.closeAll();

  // The handshake. EOF without a record means the exec succeeded (the socket is
  // close-on-exec); with nsbox-init, init reports the workload's exec itself.
  bool done = false;
  while (!done) {
    nsbox_msg msg;
    int passedFd = -1;
    ssize_t n = receive(sv[0], &msg, &passedFd);
    if (n < 0 && errno == EINTR) continue;
    // Only an exec's nsbox-init passes an fd, with its exec report: a pidfd of the workload.
    if (passedFd >= 0 && (msg.type != NSBOX_MSG_EXEC_OK || n != static_cast<ssize_t>(sizeof msg))) close(passedFd);
    else if (passedFd >= 0) workloadPidfd_ = passedFd;
    if (n == 0 && !plan.useInit) break;
    if (n != static_cast<ssize_t>(sizeof msg)) {
      setFailure(failure_, NSBOX_STAGE_NONE, "recv", n < 0 ? errno : EPROTO, "sync socket");
      failed_ = true;
      break;
    }
    switch (msg.type) {
      case NSBOX_MSG_NEED_IDMAP:
      case NSBOX_MSG_NEED_NETWORK: {
        // A step the child waits for: the id maps (written from outside), or the host
        // programs that connect its network namespace.
        bool ok;
        if (msg.type == NSBOX_MSG_NEED_IDMAP) {
          const char* what = "";
          int r = user::parentWriteIdMaps(plan, pid_, &what);
          if (r < 0) setFailure(failure_, NSBOX_STAGE_ID_MAP, "write", -r, what);
          ok = r >= 0;
        } else {
          ok = network_setup::run(plan, pid_, &failure_);
        }
        if (!ok) {
          failed_ = true;
          kill(pid_, SIGKILL);
          done = true;
          break;
        }
        msg.type = NSBOX_MSG_GO;
        send(sv[0], &msg, sizeof msg, MSG_NOSIGNAL);
        break;
      }
      case NSBOX_MSG_NESTED_PID: {
        // From here on the sandbox is the intermediate's child (our own, by CLONE_PARENT).
        int nested = msg.err;
        int nestedPidfd = static_cast<int>(syscall(SYS_pidfd_open, nested, 0));
        reap(pid_);
        close(pidfd_);
        pid_ = nested;
        pidfd_ = nestedPidfd;
        if (pidfd_ < 0) {
          setFailure(failure_, NSBOX_STAGE_PARENT_SETUP, "pidfd_open", errno, "");
          failed_ = true;
          kill(pid_, SIGKILL);
          done = true;
        }
        break;
      }
      case NSBOX_MSG_ERROR:
        failure_ = msg;
        failure_.syscall[sizeof failure_.syscall - 1] = '\0';
        failure_.path[sizeof failure_.path - 1] = '\0';
        failed_ = true;
        done = true;
        break;
      case NSBOX_MSG_EXEC_OK:
        done = true;
        break;
      default:
        setFailure(failure_, NSBOX_STAGE_NONE, "recv", EPROTO, "sync socket");
        failed_ = true;
        done = true;
    }
  }

  if (failed_) {
    if (workloadPidfd_ >= 0) close(workloadPidfd_);
    workloadPidfd_ = -1;
    // The child exits right after its record; reap it before the stack goes away.
    reap(pid_);
    if (pidfd_ >= 0) close(pidfd_);
    pid_ = pidfd_ = -1;
    for (int& fd : stdioFds_) fd = -1;
    unmapStacks();
    return;  // parentEnds closes the socket and the pipes
  }
  // The child has exec'd: it no longer uses our memory.
  unmapStacks();
  syncFd_ = sv[0];
  parentEnds.release();  // handed to JS
}

void SpawnWorker::OnOK() {
  Napi::Env env = Env();
  if (failed_) {
    Napi::Object f = Napi::Object::New(env);
    f.Set("stage", failure_.stage);
    f.Set("errno", failure_.err);
    f.Set("syscall", Napi::String::New(env, failure_.syscall));
    f.Set("path", Napi::String::New(env, failure_.path));
    Callback().Call({f, env.Null()});
    return;
  }
  Napi::Object s = Napi::Object::New(env);
  s.Set("pid", pid_);
  s.Set("pidfd", pidfd_);
  s.Set("syncFd", syncFd_);
  s.Set("workloadPidfd", workloadPidfd_);
  s.Set("stdinFd", stdioFds_[0]);
  s.Set("stdoutFd", stdioFds_[1]);
  s.Set("stderrFd", stdioFds_[2]);
  Callback().Call({env.Null(), s});
}

Napi::Value Spawn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction())
    throw Napi::TypeError::New(env, "spawn(plan, callback): expected an object and a function");
  auto plan = marshal::toPlan(info[0].As<Napi::Object>());
  auto* worker = new SpawnWorker(info[1].As<Napi::Function>(), std::move(plan));
  worker->Queue();
  return env.Undefined();
}

}  // namespace sbx
