// The addon's one error type and one descriptor guard, shared by its three
// modules: containers (container*.cc, spawn.cc, seccomp_filter.cc),
// filesystems (fs.cc) and networking (net.cc). A failure is a SysError naming
// the step, the call, its errno and the path involved; every one reaches JS in
// the same shape (NativeError in ../native.d.ts).
#pragma once
#include <napi.h>
#include <string.h>
#include <unistd.h>

#include <string>

namespace berth {

// Closes the descriptor when it leaves scope (crun's cleanup_close).
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept {
    reset(o.release());
    return *this;
  }
  ~Fd() { reset(); }
  int get() const { return fd_; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }
  // Closes the descriptor held now and holds `fd` instead.
  void reset(int fd = -1) {
    if (fd_ >= 0) close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

// A failed call and what was being done.
struct SysError {
  std::string step;     // e.g. "mount_rootfs", "loop mount", "create veth"
  std::string syscall;  // the call that failed
  int err;              // its errno
  std::string path;     // the file, device or interface involved; "" when none
  std::string detail;   // the callee's own explanation (libnftables, an fs context log); "" when none
};

[[noreturn]] inline void Fail(std::string step, std::string syscall, int err, std::string path = "", std::string detail = "") {
  throw SysError{std::move(step), std::move(syscall), err, std::move(path), std::move(detail)};
}

// The JS Error a SysError becomes: name "NativeError", message
// "<step>: <syscall>[ <path>]: <strerror>[: <detail>]", and the fields step,
// syscall, errno, code (errno's name) and path.
inline Napi::Error ToJsError(Napi::Env env, const SysError& e) {
  std::string message = e.step + ": " + e.syscall + (e.path.empty() ? "" : " " + e.path) + ": " + strerror(e.err) +
                        (e.detail.empty() ? "" : ": " + e.detail);
  Napi::Error error = Napi::Error::New(env, message);
  const char* code = strerrorname_np(e.err);
  error.Set("name", Napi::String::New(env, "NativeError"));
  error.Set("step", Napi::String::New(env, e.step));
  error.Set("syscall", Napi::String::New(env, e.syscall));
  error.Set("errno", Napi::Number::New(env, e.err));
  error.Set("code", Napi::String::New(env, code ? code : "EUNKNOWN"));
  error.Set("path", Napi::String::New(env, e.path));
  return error;
}

// Wraps a module function so a SysError it throws becomes a thrown JS Error.
template <Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Value Wrap(const Napi::CallbackInfo& info) {
  try {
    return F(info);
  } catch (const SysError& e) {
    throw ToJsError(info.Env(), e);
  }
}

// Work on libuv's pool that settles a promise: Run() (off the JS thread, no
// JS) may throw SysError, which rejects the promise; else Result() resolves it.
class SysWorker : public Napi::AsyncWorker {
 public:
  explicit SysWorker(Napi::Env env) : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)) {}
  // Queues the work and returns its promise.
  Napi::Promise Start() {
    Napi::Promise promise = deferred_.Promise();
    Queue();
    return promise;
  }

 protected:
  virtual void Run() = 0;
  virtual Napi::Value Result(Napi::Env env) { return env.Undefined(); }

 private:
  void Execute() final {
    try {
      Run();
    } catch (const SysError& e) {
      error_ = e;
      SetError(e.step);
    }
  }
  void OnOK() final { deferred_.Resolve(Result(Env())); }
  void OnError(const Napi::Error&) final { deferred_.Reject(ToJsError(Env(), error_).Value()); }

  Napi::Promise::Deferred deferred_;
  SysError error_;
};

}  // namespace berth
