// Helpers shared by the filesystem module (fs.cc): an owned descriptor and the
// one error shape every native filesystem call throws.
#pragma once
#include <napi.h>
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
    if (fd_ >= 0) close(fd_);
    fd_ = o.release();
    return *this;
  }
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  int get() const { return fd_; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }

 private:
  int fd_;
};

// A failed system call and what was being done. Thrown inside the module and
// turned into a JS Error {message, code, errno, syscall, step, path} at the boundary.
struct SysError {
  std::string step;
  std::string syscall;
  int err;
  std::string path;
};

[[noreturn]] inline void Fail(std::string step, std::string syscall, int err, std::string path) {
  throw SysError{std::move(step), std::move(syscall), err, std::move(path)};
}

}  // namespace berth
