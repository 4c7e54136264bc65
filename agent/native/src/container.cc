// JS bindings of the container runtime (typed in ../container.d.ts). The config
// object is copied into a ContainerConfig on the main thread; the work runs on
// a dedicated std::thread per call and settles a promise through a
// ThreadSafeFunction. Not Napi::AsyncWorker: waiting for a container's exit can
// last for days and would pin one of libuv's four pool threads (node-pty's reason).
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <variant>

#include "container_config.h"
#include "js_fields.h"
#include "modules.h"
#include "spawn.h"

namespace berth {
namespace {

// ---- copying the JS object (validated by agent/runtime) into C++ (js_fields.h) ----

template <typename T, typename F>
std::vector<T> Each(const Napi::Array& a, F convert) {
  std::vector<T> out;
  for (uint32_t i = 0; i < a.Length(); i++) out.push_back(convert(a.Get(i)));
  return out;
}
std::vector<std::string> Strings(const Napi::Object& o, const char* name) {
  return Each<std::string>(Arr(o, name), [&](Napi::Value v) {
    if (!v.IsString()) throw Napi::TypeError::New(o.Env(), std::string("container config: ") + name + " must hold strings");
    return v.As<Napi::String>().Utf8Value();
  });
}
std::vector<IdMapping> Maps(const Napi::Object& o, const char* name) {
  return Each<IdMapping>(Arr(o, name), [](Napi::Value v) {
    Napi::Object m = v.As<Napi::Object>();
    return IdMapping{static_cast<uint32_t>(Num(m, "containerId")), static_cast<uint32_t>(Num(m, "hostId")),
                     static_cast<uint32_t>(Num(m, "size"))};
  });
}

ContainerConfig ParseConfig(Napi::Env env, const Napi::Object& o) {
  ContainerConfig c;
  c.id = Str(o, "id");
  c.init_path = Str(o, "initPath");
  c.rootfs = Str(o, "rootfs");
  c.hostname = Str(o, "hostname");
  c.io_dir = Str(o, "ioDir");
  Napi::Value netns = Field(o, "netnsPath");
  c.netns_path = netns.IsString() ? netns.As<Napi::String>().Utf8Value() : "";
  c.uid_map = Maps(o, "uidMap");
  c.gid_map = Maps(o, "gidMap");
  c.cgroups = Each<CgroupDir>(Arr(o, "cgroups"), [](Napi::Value v) {
    Napi::Object d = v.As<Napi::Object>();
    return CgroupDir{Str(d, "path"), Each<CgroupFile>(Arr(d, "files"), [](Napi::Value f) {
                       Napi::Object fo = f.As<Napi::Object>();
                       return CgroupFile{Str(fo, "name"), Str(fo, "value")};
                     }),
                     Field(d, "join").ToBoolean().Value()};
  });
  c.mounts = Each<MountOp>(Arr(o, "mounts"), [env](Napi::Value v) {
    Napi::Object m = v.As<Napi::Object>();
    std::string kind = Str(m, "kind");
    MountOp op{};
    op.target = Str(m, "target");
    if (kind == "symlink") {
      op.kind = MountKind::kSymlink;
      op.link_target = Str(m, "linkTarget");
    } else if (kind == "sysfs") {
      op.kind = MountKind::kSysfs;
    } else if (kind == "mount") {
      op.kind = MountKind::kMount;
      op.source = Str(m, "source");
      op.fstype = Str(m, "fstype");
      op.flags = static_cast<unsigned long>(Num(m, "flags"));
      op.data = Str(m, "data");
    } else if (kind == "bind") {
      op.kind = MountKind::kBind;
      op.source = Str(m, "source");
      op.flags = static_cast<unsigned long>(Num(m, "flags"));
      op.readonly = Field(m, "readonly").ToBoolean().Value();
      op.file = Field(m, "file").ToBoolean().Value();
    } else {
      throw Napi::TypeError::New(env, "container config: unknown mount kind " + kind);
    }
    return op;
  });
  c.masked_paths = Strings(o, "maskedPaths");
  c.readonly_paths = Strings(o, "readonlyPaths");
  Napi::Object log = Field(o, "log").As<Napi::Object>();
  c.log_max_bytes = static_cast<uint64_t>(Num(log, "maxBytes"));
  c.log_keep_files = static_cast<uint32_t>(Num(log, "keepFiles"));

  Napi::Object p = Field(o, "process").As<Napi::Object>();
  c.process.argv = Strings(p, "argv");
  if (c.process.argv.empty()) throw Napi::TypeError::New(env, "container config: process.argv is empty");
  c.process.env = Strings(p, "env");
  c.process.cwd = Str(p, "cwd");
  c.process.uid = static_cast<uint32_t>(Num(p, "uid"));
  c.process.gid = static_cast<uint32_t>(Num(p, "gid"));
  c.process.additional_gids =
      Each<uint32_t>(Arr(p, "additionalGids"), [](Napi::Value v) { return v.As<Napi::Number>().Uint32Value(); });
  c.process.capabilities = 0;
  for (uint32_t cap : Each<uint32_t>(Arr(p, "capabilities"), [](Napi::Value v) { return v.As<Napi::Number>().Uint32Value(); }))
    c.process.capabilities |= 1ULL << cap;
  c.process.rlimits = Each<Rlimit>(Arr(p, "rlimits"), [](Napi::Value v) {
    Napi::Object r = v.As<Napi::Object>();
    return Rlimit{static_cast<int>(Num(r, "resource")), static_cast<int64_t>(Num(r, "soft")),
                  static_cast<int64_t>(Num(r, "hard"))};
  });

  Napi::Object s = Field(o, "seccomp").As<Napi::Object>();
  c.seccomp.default_errno = static_cast<int>(Num(s, "defaultErrno"));
  c.seccomp.architectures = Strings(s, "architectures");
  c.seccomp.rules = Each<SeccompRule>(Arr(s, "rules"), [](Napi::Value v) {
    Napi::Object r = v.As<Napi::Object>();
    return SeccompRule{Strings(r, "names"), Str(r, "action") == "allow", static_cast<int>(Num(r, "errno")),
                       Each<SeccompArg>(Arr(r, "args"), [](Napi::Value av) {
                         Napi::Object a = av.As<Napi::Object>();
                         return SeccompArg{static_cast<unsigned>(Num(a, "index")), Str(a, "op"),
                                           static_cast<uint64_t>(Num(a, "value")),
                                           static_cast<uint64_t>(Num(a, "valueTwo"))};
                       })};
  });
  Napi::Function stringify = env.Global().Get("JSON").As<Napi::Object>().Get("stringify").As<Napi::Function>();
  c.seccomp.cache_key = stringify.Call({s}).As<Napi::String>().Utf8Value();
  return c;
}

// ---- running work off the event loop ----

template <typename Result>
struct Job {
  Napi::Promise::Deferred deferred;
  std::function<Napi::Value(Napi::Env, const Result&)> to_js;
  std::variant<std::monostate, Result, SysError, std::string> outcome;
};

// Runs `work` on its own thread and settles the returned promise on the main
// thread. The pending call keeps Node's event loop alive, so awaiting a
// container's exit works even when nothing else is pending.
template <typename Result>
Napi::Promise OffThread(Napi::Env env, std::function<Result()> work,
                        std::function<Napi::Value(Napi::Env, const Result&)> to_js) {
  auto* job = new Job<Result>{Napi::Promise::Deferred::New(env), std::move(to_js), {}};
  Napi::Promise promise = job->deferred.Promise();
  auto tsfn = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}),
                                            "berth-container", 0, 1);
  std::thread([job, tsfn, work = std::move(work)]() mutable {
    try {
      job->outcome = work();
    } catch (const SysError& e) {
      job->outcome = e;
    } catch (const std::exception& e) {
      job->outcome = std::string(e.what());
    }
    tsfn.BlockingCall(job, [](Napi::Env env, Napi::Function, Job<Result>* j) {
      std::unique_ptr<Job<Result>> owned(j);
      if (static_cast<napi_env>(env) == nullptr) return;  // Node is shutting down
      if (auto* r = std::get_if<Result>(&j->outcome)) j->deferred.Resolve(j->to_js(env, *r));
      else if (auto* e = std::get_if<SysError>(&j->outcome)) j->deferred.Reject(ToJsError(env, *e).Value());
      else j->deferred.Reject(Napi::Error::New(env, std::get<std::string>(j->outcome)).Value());
    });
    tsfn.Release();
  }).detach();
  return promise;
}

// ---- pidfds that are checked against the start time (no pid-reuse races) ----

// Opens a pidfd for pid, then checks the start time: once the pidfd exists, a
// matching start time proves it names the process we meant. Holds -1 (errno
// set) when either fails.
Fd OpenProcess(pid_t pid, uint64_t start_time) {
  Fd fd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  if (fd.get() >= 0 && ProcessStartTime(pid) != start_time) {
    fd.reset();
    errno = ESRCH;
  }
  return fd;
}

struct Exit {
  bool reaped;
  int status, signal;  // -1 when unknown
};

// Takes ownership of the pidfd (a std::function holding an Fd could not be copied).
Exit WaitForExit(int pidfd) {
  Fd owned(pidfd);
  struct pollfd p = {pidfd, POLLIN, 0};
  while (poll(&p, 1, -1) < 0) {
    if (errno != EINTR) Fail("wait", "poll", errno);
  }
  siginfo_t info;
  memset(&info, 0, sizeof info);
  int rc;
  do rc = waitid(static_cast<idtype_t>(P_PIDFD), pidfd, &info, WEXITED);
  while (rc < 0 && errno == EINTR);
  // ECHILD: an adopted process, reaped by whoever its parent is now.
  if (rc < 0) return Exit{false, -1, -1};
  if (info.si_code == CLD_EXITED) return Exit{true, info.si_status, -1};
  return Exit{true, -1, info.si_status};
}

Napi::Value Create(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "containerCreate(config): config must be an object");
  auto config = std::make_shared<ContainerConfig>(ParseConfig(env, info[0].As<Napi::Object>()));
  return OffThread<Created>(
      env, [config]() { return CreateContainer(*config); },
      [](Napi::Env e, const Created& c) {
        Napi::Object o = Napi::Object::New(e);
        o.Set("pid", c.pid);
        o.Set("startTime", static_cast<double>(c.start_time));
        return static_cast<Napi::Value>(o);
      });
}

void CheckPidArgs(const Napi::CallbackInfo& info, const char* fn) {
  if (!info[0].IsNumber() || !info[1].IsNumber())
    throw Napi::TypeError::New(info.Env(), std::string(fn) + "(pid, startTime): numbers expected");
}

Napi::Value Watch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckPidArgs(info, "containerWatch");
  pid_t pid = info[0].As<Napi::Number>().Int32Value();
  uint64_t start = static_cast<uint64_t>(info[1].As<Napi::Number>().DoubleValue());
  Fd fd = OpenProcess(pid, start);
  if (fd.get() < 0) {
    auto d = Napi::Promise::Deferred::New(env);
    d.Reject(ToJsError(env, SysError{"wait", "pidfd_open", errno, "", ""}).Value());
    return d.Promise();
  }
  return OffThread<Exit>(
      env, [pidfd = fd.release()]() { return WaitForExit(pidfd); },
      [](Napi::Env e, const Exit& x) {
        Napi::Object o = Napi::Object::New(e);
        o.Set("reaped", x.reaped);
        o.Set("status", x.status < 0 ? e.Null() : Napi::Number::New(e, x.status));
        o.Set("signal", x.signal < 0 ? e.Null() : Napi::Number::New(e, x.signal));
        return static_cast<Napi::Value>(o);
      });
}

Napi::Value Signal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckPidArgs(info, "containerSignal");
  if (!info[2].IsNumber()) throw Napi::TypeError::New(env, "containerSignal(pid, startTime, signal): signal must be a number");
  Fd fd = OpenProcess(info[0].As<Napi::Number>().Int32Value(),
                      static_cast<uint64_t>(info[1].As<Napi::Number>().DoubleValue()));
  if (fd.get() < 0) return Napi::Boolean::New(env, false);
  long rc = syscall(SYS_pidfd_send_signal, fd.get(), info[2].As<Napi::Number>().Int32Value(), nullptr, 0);
  int err = errno;
  if (rc < 0 && err != ESRCH) throw ToJsError(env, SysError{"signal", "pidfd_send_signal", err, "", ""});
  return Napi::Boolean::New(env, rc == 0);
}

Napi::Value StartTime(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) throw Napi::TypeError::New(env, "processStartTime(pid): pid must be a number");
  uint64_t t = ProcessStartTime(info[0].As<Napi::Number>().Int32Value());
  return t ? Napi::Number::New(env, static_cast<double>(t)) : env.Null();
}

Napi::Value Spawn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* usage = "spawnWait(argv): argv must be a non-empty array of strings without NUL";
  if (!info[0].IsArray()) throw Napi::TypeError::New(env, usage);
  Napi::Array a = info[0].As<Napi::Array>();
  std::vector<std::string> argv;
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value v = a.Get(i);
    if (!v.IsString()) throw Napi::TypeError::New(env, usage);
    argv.push_back(v.As<Napi::String>().Utf8Value());
    if (argv.back().find('\0') != std::string::npos) throw Napi::TypeError::New(env, usage);
  }
  if (argv.empty() || argv[0].empty()) throw Napi::TypeError::New(env, usage);
  return OffThread<SpawnResult>(
      env, [argv = std::move(argv)]() { return SpawnWait(argv); },
      [](Napi::Env e, const SpawnResult& r) {
        Napi::Object o = Napi::Object::New(e);
        o.Set("status", r.code < 0 ? e.Null() : Napi::Number::New(e, r.code));
        o.Set("signal", r.signal == 0 ? e.Null() : Napi::Number::New(e, r.signal));
        o.Set("stderr", r.stderr_text);
        return static_cast<Napi::Value>(o);
      });
}

}  // namespace

void InitContainer(Napi::Env env, Napi::Object exports) {
  exports.Set("containerCreate", Napi::Function::New(env, Create));
  exports.Set("containerWatch", Napi::Function::New(env, Watch));
  exports.Set("containerSignal", Napi::Function::New(env, Signal));
  exports.Set("processStartTime", Napi::Function::New(env, StartTime));
  exports.Set("spawnWait", Napi::Function::New(env, Spawn));
}

}  // namespace berth
