// SPDX-License-Identifier: Apache-2.0
// Copies the plan object into plain memory the child can read without allocating.
#include "marshal.h"

#include <fcntl.h>

#include <cerrno>
#include <cstring>
#include <string>

extern "C" char** environ;

namespace sbx::marshal {
namespace {

Napi::Value field(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) throw Napi::TypeError::New(o.Env(), std::string("spawn plan: missing field ") + key);
  return v;
}

std::string str(const Napi::Object& o, const char* key) {
  Napi::Value v = field(o, key);
  if (!v.IsString()) throw Napi::TypeError::New(o.Env(), std::string("spawn plan: expected a string for ") + key);
  std::string s = v.As<Napi::String>().Utf8Value();
  if (s.find('\0') != std::string::npos)
    throw Napi::TypeError::New(o.Env(), std::string("spawn plan: NUL byte in ") + key);
  return s;
}

double num(const Napi::Object& o, const char* key) {
  Napi::Value v = field(o, key);
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string("spawn plan: expected a number for ") + key);
  return v.As<Napi::Number>().DoubleValue();
}

bool flag(const Napi::Object& o, const char* key) {
  Napi::Value v = field(o, key);
  if (!v.IsBoolean()) throw Napi::TypeError::New(o.Env(), std::string("spawn plan: expected a boolean for ") + key);
  return v.As<Napi::Boolean>().Value();
}

Napi::Array arr(const Napi::Object& o, const char* key) {
  Napi::Value v = field(o, key);
  if (!v.IsArray()) throw Napi::TypeError::New(o.Env(), std::string("spawn plan: expected an array for ") + key);
  return v.As<Napi::Array>();
}

// Copies a string array into plan storage, null-terminated.
std::vector<const char*> strings(Plan& plan, const Napi::Object& o, const char* key) {
  Napi::Array a = arr(o, key);
  std::vector<const char*> out;
  out.reserve(a.Length() + 1);
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value v = a.Get(i);
    if (!v.IsString()) throw Napi::TypeError::New(o.Env(), std::string("spawn plan: expected strings in ") + key);
    std::string s = v.As<Napi::String>().Utf8Value();
    if (s.find('\0') != std::string::npos)
      throw Napi::TypeError::New(o.Env(), std::string("spawn plan: NUL byte in ") + key);
    out.push_back(plan.keep(std::move(s)));
  }
  out.push_back(nullptr);
  return out;
}

uint64_t rlimitValue(double v) { return v < 0 ? ~0ULL : static_cast<uint64_t>(v); }

}  // namespace

std::unique_ptr<Plan> toPlan(const Napi::Object& o) {
  auto plan = std::make_unique<Plan>();
  Plan& p = *plan;
  Napi::Env env = o.Env();

  p.argv = strings(p, o, "argv");
  p.envp = strings(p, o, "env");
  for (const char* e : p.envp)
    if (e && std::string(e).rfind("PATH=", 0) == 0) p.path = e + 5;
  p.cwd = p.keep(str(o, "cwd"));
  p.hostname = p.keep(str(o, "hostname"));
  p.newNet = flag(o, "newNet");
  p.netnsPath = p.keep(str(o, "netnsPath"));
  int join = static_cast<int>(num(o, "joinPidfd"));
  if (join >= 0) {
    // Our own copy: the caller may close its pidfd (the sandbox ended) while the worker runs.
    p.joinPidfd = fcntl(join, F_DUPFD_CLOEXEC, 3);
    if (p.joinPidfd < 0) throw Napi::Error::New(env, std::string("spawn plan: joinPidfd: ") + strerror(errno));
  }
  p.joinUserns = flag(o, "joinUserns");
  int pty = static_cast<int>(num(o, "ptyMaster"));
  if (pty >= 0) {
    p.ptyMaster = fcntl(pty, F_DUPFD_CLOEXEC, 3);
    if (p.ptyMaster < 0) throw Napi::Error::New(env, std::string("spawn plan: ptyMaster: ") + strerror(errno));
  }

  Napi::Array setup = arr(o, "setupCommands");
  for (uint32_t i = 0; i < setup.Length(); i++) {
    Napi::Value v = setup.Get(i);
    if (!v.IsObject()) throw Napi::TypeError::New(env, "spawn plan: expected objects in setupCommands");
    Napi::Object command = v.As<Napi::Object>();
    SetupCommand c;
    std::vector<const char*> argv = strings(p, command, "argv");
    argv.pop_back();
    if (argv.empty() || argv[0][0] != '/') throw Napi::TypeError::New(env, "spawn plan: a setup command needs an absolute program path");
    for (const char* arg : argv) c.argv.emplace_back(arg);
    c.input = str(command, "input");
    p.setupCommands.push_back(std::move(c));
  }
  if (!p.setupCommands.empty()) {
    for (char** e = environ; e && *e; e++) p.hostEnv.push_back(p.keep(*e));
    p.hostEnv.push_back(nullptr);
  }
  p.ttyUid = static_cast<int>(num(o, "ttyUid"));
  p.ttyGid = static_cast<int>(num(o, "ttyGid"));

  p.keeperUsernsPath = p.keep(str(o, "keeperUsernsPath"));

  p.usernsMode = static_cast<UsernsMode>(static_cast<int>(num(o, "usernsMode")));
  p.uidMap = p.keep(str(o, "uidMap"));
  p.gidMap = p.keep(str(o, "gidMap"));
  p.newuidmapPath = p.keep(str(o, "newuidmapPath"));
  p.newgidmapPath = p.keep(str(o, "newgidmapPath"));

  p.cgroupV2Dir = p.keep(str(o, "cgroupV2Dir"));
  p.cgroupV1Procs = strings(p, o, "cgroupV1Procs");
  p.cgroupV1Procs.pop_back();

  p.scratchDir = p.keep(str(o, "scratchDir"));
  p.scratchData = p.keep(str(o, "scratchData"));
  p.scratchDirs = strings(p, o, "scratchDirs");
  p.scratchDirs.pop_back();
  p.rootDir = p.keep(str(o, "rootDir"));
  p.overlayData = p.keep(str(o, "overlayData"));

  Napi::Array ops = arr(o, "ops");
  p.steps.reserve(ops.Length());
  for (uint32_t i = 0; i < ops.Length(); i++) {
    Napi::Value v = ops.Get(i);
    if (!v.IsObject()) throw Napi::TypeError::New(env, "spawn plan: expected objects in ops");
    Napi::Object op = v.As<Napi::Object>();
    MountStep step;
    step.op = static_cast<MountOp>(static_cast<int>(num(op, "op")));
    step.src = p.keep(str(op, "src"));
    step.dst = p.keep(str(op, "dst"));
    step.data = p.keep(str(op, "data"));
    step.flags = static_cast<int>(num(op, "flags"));
    step.mode = static_cast<int>(num(op, "mode"));
    p.steps.push_back(step);
  }
  p.readonlyRoot = flag(o, "readonlyRoot");

  p.uid = static_cast<uint32_t>(num(o, "uid"));
  p.gid = static_cast<uint32_t>(num(o, "gid"));
  Napi::Array groups = arr(o, "groups");
  for (uint32_t i = 0; i < groups.Length(); i++) p.groups.push_back(groups.Get(i).As<Napi::Number>().Uint32Value());
  Napi::Array caps = arr(o, "caps");
  p.capsLow = caps.Get(0u).As<Napi::Number>().Uint32Value();
  p.capsHigh = caps.Get(1u).As<Napi::Number>().Uint32Value();
  p.noNewPrivs = flag(o, "noNewPrivs");
  Napi::Array rl = arr(o, "rlimits");
  for (uint32_t i = 0; i < rl.Length(); i++) {
    Napi::Array t = rl.Get(i).As<Napi::Array>();
    p.rlimits.push_back({t.Get(0u).As<Napi::Number>().Int32Value(),
                         rlimitValue(t.Get(1u).As<Napi::Number>().DoubleValue()),
                         rlimitValue(t.Get(2u).As<Napi::Number>().DoubleValue())});
  }

  Napi::Value filter = field(o, "seccomp");
  if (!filter.IsBuffer()) throw Napi::TypeError::New(env, "spawn plan: expected a Buffer for seccomp");
  auto bytes = filter.As<Napi::Buffer<uint8_t>>();
  if (bytes.Length() % sizeof(sock_filter) != 0 || bytes.Length() / sizeof(sock_filter) > BPF_MAXINSNS)
    throw Napi::TypeError::New(env, "spawn plan: seccomp is not a whole BPF program of at most 4096 instructions");
  p.seccomp.resize(bytes.Length() / sizeof(sock_filter));
  memcpy(p.seccomp.data(), bytes.Data(), bytes.Length());

  p.useInit = flag(o, "useInit");
  // An empty argv starts nsbox-init alone, holding the sandbox open (Sandbox.create).
  if (p.argv.size() < 2 && !p.useInit) throw Napi::TypeError::New(env, "spawn plan: argv is empty");
  p.initPath = p.keep(str(o, "initPath"));
  // Hold mode is asked for by name: a workload that runs nsbox-init itself (/proc/self/exe from
  // init's child) gets the plain init, which refuses to start without a command.
  p.initArgv.push_back(p.keep(p.argv.size() < 2 ? "nsbox-init-hold" : "nsbox-init"));
  p.initArgv.insert(p.initArgv.end(), p.argv.begin(), p.argv.end());  // includes the terminating null
  p.stdio[0] = static_cast<StdioMode>(static_cast<int>(num(o, "stdin")));
  p.stdio[1] = static_cast<StdioMode>(static_cast<int>(num(o, "stdout")));
  p.stdio[2] = static_cast<StdioMode>(static_cast<int>(num(o, "stderr")));
  p.failStage = static_cast<int>(num(o, "failStage"));
  return plan;
}

}  // namespace sbx::marshal
