// SPDX-License-Identifier: Apache-2.0
// Runs on the spawn worker thread, between the child's id maps and its mounts: ordinary
// code (it may allocate), started with posix_spawn so that no fork copies Node's memory.
#include "network_setup.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

namespace sbx::network_setup {
namespace {

// pasta sets up in about 50 ms; a helper that has not finished in 10 s is stuck.
constexpr int kDeadlineMs = 10000;

void fill(nsbox_msg* failure, const std::string& program, int err, const std::string& message) {
  memset(failure, 0, sizeof *failure);
  failure->type = NSBOX_MSG_ERROR;
  failure->stage = NSBOX_STAGE_NETWORK_SETUP;
  failure->err = err;
  std::string name = program.substr(program.rfind('/') + 1);
  strncpy(failure->syscall, name.c_str(), sizeof failure->syscall - 1);
  strncpy(failure->path, message.c_str(), sizeof failure->path - 1);
}

// The first line of what the program wrote to stderr that says something (pasta also
// complains there that it has no syslog).
std::string firstLine(const std::string& text) {
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    if (!line.empty() && line.rfind("Failed to send", 0) != 0) return line;
    start = end + 1;
  }
  return "";
}

bool runOne(const Plan& plan, const SetupCommand& command, int pid, nsbox_msg* failure) {
  const std::string& program = command.argv[0];
  std::vector<std::string> args;
  for (std::string arg : command.argv) {
    for (size_t at; (at = arg.find("{pid}")) != std::string::npos;) arg.replace(at, 5, std::to_string(pid));
    args.push_back(std::move(arg));
  }
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);

  // The input comes from a sealed-off memory file, not a pipe: a sandbox child cloned on
  // another thread meanwhile copies this process's fd table and would hold a pipe's write end
  // open until its own exec, so nft (reading to EOF) would wait for unrelated sandboxes.
  int in = static_cast<int>(syscall(SYS_memfd_create, "nsbox-setup-input", MFD_CLOEXEC));
  if (in < 0) return fill(failure, program, errno, "memfd_create"), false;
  for (size_t done = 0; done < command.input.size();) {
    ssize_t n = write(in, command.input.data() + done, command.input.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = errno;
      close(in);
      return fill(failure, program, e, "write"), false;
    }
    done += static_cast<size_t>(n);
  }
  lseek(in, 0, SEEK_SET);
  int err[2];
  if (pipe2(err, O_CLOEXEC) < 0) {
    int e = errno;
    close(in);
    return fill(failure, program, e, "pipe2"), false;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, err[1], 2);
  // Node's signal dispositions and this thread's mask are not the helper's.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t helper = -1;
  // The environment was copied on the JS thread: `environ` may change under this one.
  int spawnError = posix_spawn(&helper, program.c_str(), &actions, &attr, argv.data(), const_cast<char* const*>(plan.hostEnv.data()));
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close(in);
  close(err[1]);
  if (spawnError != 0) {
    close(err[0]);
    return fill(failure, program, spawnError, "posix_spawn"), false;
  }

  // Until the helper itself exits (not until its stderr closes: pasta's daemon outlives it),
  // draining stderr meanwhile so that a helper with much to say does not block on it; one
  // deadline for all of it.
  std::string text;
  fcntl(err[0], F_SETFL, O_NONBLOCK);
  int helperFd = static_cast<int>(syscall(SYS_pidfd_open, helper, 0));
  bool timedOut = false;
  char buf[4096];
  auto drain = [&] {
    for (ssize_t n; (n = read(err[0], buf, sizeof buf)) > 0;)
      if (text.size() < 16384) text.append(buf, static_cast<size_t>(n));
  };
  if (helperFd >= 0) {
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
      struct timespec now;
      clock_gettime(CLOCK_MONOTONIC, &now);
      long elapsed = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
      if (elapsed >= kDeadlineMs) {
        timedOut = true;
        kill(helper, SIGKILL);
        break;
      }
      struct pollfd p[2] = {{helperFd, POLLIN, 0}, {err[0], POLLIN, 0}};
      int r = poll(p, 2, static_cast<int>(kDeadlineMs - elapsed));
      if (r < 0 && errno != EINTR) break;
      if (r > 0 && (p[1].revents & POLLIN)) drain();
      if (r > 0 && (p[0].revents & POLLIN)) break;
    }
    close(helperFd);
  }
  int status = 0;
  while (waitpid(helper, &status, 0) < 0 && errno == EINTR) {
  }
  drain();
  close(err[0]);

  if (timedOut) return fill(failure, program, ETIMEDOUT, "did not finish within 10 s"), false;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return true;
  std::string why = firstLine(text);
  if (why.empty()) why = WIFSIGNALED(status) ? "killed by signal " + std::to_string(WTERMSIG(status)) : "exit status " + std::to_string(WEXITSTATUS(status));
  fill(failure, program, 0, why);
  return false;
}

}  // namespace

bool run(const Plan& plan, int pid, nsbox_msg* failure) {
  for (const SetupCommand& command : plan.setupCommands)
    if (!runOne(plan, command, pid, failure)) return false;
  return true;
}

}  // namespace sbx::network_setup
