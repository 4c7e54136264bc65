// Runs a helper program (mkfs.ext4) to its end without stopping the event
// loop. child_process forks the whole Node process, and fork copies its page
// tables: 10-25 ms for a few hundred MB here, with the event loop stopped,
// once per container start (the rootfs pool refills after each take).
// posix_spawn clones with CLONE_VM | CLONE_VFORK (glibc): nothing is copied,
// and only a thread of our own waits (bound in container.cc).
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "spawn.h"
#include "sys.h"

extern char** environ;

namespace berth {
namespace {

// Enough of stderr to explain a failure.
constexpr size_t kMaxStderr = 16 * 1024;

// A posix_spawn attribute object, destroyed when the scope ends.
template <typename T, int (*Init)(T*), int (*Destroy)(T*)>
class Scoped {
 public:
  Scoped() { Init(&v_); }
  Scoped(const Scoped&) = delete;
  Scoped& operator=(const Scoped&) = delete;
  ~Scoped() { Destroy(&v_); }
  T* get() { return &v_; }

 private:
  T v_;
};
using Actions = Scoped<posix_spawn_file_actions_t, posix_spawn_file_actions_init, posix_spawn_file_actions_destroy>;
using Attr = Scoped<posix_spawnattr_t, posix_spawnattr_init, posix_spawnattr_destroy>;

}  // namespace

SpawnResult SpawnWait(const std::vector<std::string>& argv) {
  SpawnResult result;
  int err_pipe[2];
  if (pipe2(err_pipe, O_CLOEXEC) < 0) Fail("spawn", "pipe2", errno, argv[0]);
  Fd err_read(err_pipe[0]);
  Fd err_write(err_pipe[1]);
  // stdin and stdout are /dev/null, stderr is collected.
  Actions actions;
  posix_spawn_file_actions_addopen(actions.get(), 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(actions.get(), 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(actions.get(), err_write.get(), 2);
  // Node ignores SIGPIPE and this pool thread may block signals: the child starts clean.
  Attr attr;
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(attr.get(), &all);
  posix_spawnattr_setsigmask(attr.get(), &none);
  posix_spawnattr_setflags(attr.get(), POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid;
  int rc = posix_spawnp(&pid, args[0], actions.get(), attr.get(), args.data(), environ);
  err_write.reset();
  if (rc != 0) Fail("spawn", "posix_spawnp", rc, argv[0]);
  char buf[4096];
  for (;;) {
    ssize_t n = read(err_read.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (result.stderr_text.size() < kMaxStderr) result.stderr_text.append(buf, static_cast<size_t>(n));
  }
  int status;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) Fail("spawn", "waitpid", errno, argv[0]);
  }
  if (WIFEXITED(status)) result.code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
  return result;
}

}  // namespace berth
