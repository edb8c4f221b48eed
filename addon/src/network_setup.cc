// SPDX-License-Identifier: Apache-2.0
// Runs on the spawn worker thread, between the child's id maps and its mounts: ordinary
// code (it may allocate), started with posix_spawn so that no fork copies Node's memory.
#include "network_setup.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

extern char** environ;

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

bool runOne(const SetupCommand& command, int pid, nsbox_msg* failure) {
  const std::string& program = command.argv[0];
  std::vector<std::string> args;
  for (std::string arg : command.argv) {
    for (size_t at; (at = arg.find("{pid}")) != std::string::npos;) arg.replace(at, 5, std::to_string(pid));
    args.push_back(std::move(arg));
  }
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);

  int in[2], err[2];
  if (pipe2(in, O_CLOEXEC) < 0) return fill(failure, program, errno, "pipe2"), false;
  if (pipe2(err, O_CLOEXEC) < 0) {
    int e = errno;
    close(in[0]);
    close(in[1]);
    return fill(failure, program, e, "pipe2"), false;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], 0);
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
  int spawnError = posix_spawn(&helper, program.c_str(), &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close(in[0]);
  close(err[1]);
  if (spawnError != 0) {
    close(in[1]);
    close(err[0]);
    return fill(failure, program, spawnError, "posix_spawn"), false;
  }

  // The input is small (an nft ruleset). A helper that stops reading makes write() fail with
  // EPIPE: Node ignores SIGPIPE.
  const char* data = command.input.data();
  size_t left = command.input.size();
  while (left > 0) {
    ssize_t n = write(in[1], data, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    data += n;
    left -= static_cast<size_t>(n);
  }
  close(in[1]);

  // Waits for the helper itself, not for its stderr to close: pasta's daemon outlives it.
  int helperFd = static_cast<int>(syscall(SYS_pidfd_open, helper, 0));
  bool timedOut = false;
  if (helperFd >= 0) {
    struct pollfd p = {helperFd, POLLIN, 0};
    int r;
    while ((r = poll(&p, 1, kDeadlineMs)) < 0 && errno == EINTR) {
    }
    if (r == 0) {
      timedOut = true;
      kill(helper, SIGKILL);
    }
    close(helperFd);
  }
  int status = 0;
  while (waitpid(helper, &status, 0) < 0 && errno == EINTR) {
  }
  std::string text;
  fcntl(err[0], F_SETFL, O_NONBLOCK);
  char buf[4096];
  for (ssize_t n; text.size() < 16384 && (n = read(err[0], buf, sizeof buf)) > 0;) text.append(buf, static_cast<size_t>(n));
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
    if (!runOne(command, pid, failure)) return false;
  return true;
}

}  // namespace sbx::network_setup
