// The child of the create thread's clone (glibc's clone with CLONE_VM and the
// new namespaces): it becomes PID 1 of the container, runs the setup steps in
// runc's order, clones the app (CLONE_VM | CLONE_VFORK) and finally execs
// berth-init.
//
// It shares the memory of a multi-threaded process (nothing is copied), so it
// is limited to async-signal-safe work: raw syscalls over memory prepared
// before clone (ChildPlan), fixed stack buffers, no allocation, no locks, no
// JavaScript. Credential changes use raw syscalls because glibc's
// setresuid() would try to signal the parent's other threads (its thread list
// is in the shared memory), which are not in this process. Until it execs it writes only
// its own stack, the plan's init_args and errno (the create thread's TLS,
// which that thread does not read while it waits on the sync socket).
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "container_config.h"

namespace berth {
namespace {

void CopyBounded(char* dst, size_t cap, const char* src) {
  size_t i = 0;
  for (; src && src[i] && i + 1 < cap; i++) dst[i] = src[i];
  dst[i] = '\0';
}

// Reports a failed step to the parent and dies. One write is one SEQPACKET message.
[[noreturn]] void ReportFailure(int sync_fd, const char* step, const char* syscall_name, const char* path) {
  ChildError e;
  memset(&e, 0, sizeof e);
  e.err = errno;
  CopyBounded(e.step, sizeof e.step, step);
  CopyBounded(e.syscall, sizeof e.syscall, syscall_name);
  CopyBounded(e.path, sizeof e.path, path);
  ssize_t ignored = write(sync_fd, &e, sizeof e);
  (void)ignored;
  _exit(127);
}

void FormatUnsigned(char* out, uint64_t v) {
  char tmp[24];
  int n = 0;
  do {
    tmp[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v);
  for (int i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
  out[n] = '\0';
}

int OpenInRoot(int rootfd, const char* path, uint64_t flags) {
  struct open_how how;
  memset(&how, 0, sizeof how);
  how.flags = flags | O_CLOEXEC;
  if (flags & O_CREAT) how.mode = 0644;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  const char* rel = path;
  while (*rel == '/') rel++;
  if (*rel == '\0') rel = ".";
  int fd;
  do fd = static_cast<int>(syscall(SYS_openat2, rootfd, rel, &how, sizeof how));
  while (fd < 0 && errno == EINTR);
  return fd;
}

// Creates every missing component of `path` inside the rootfs (the last one as
// an empty file when `file`), resolving symlinks as if the rootfs were "/" (a
// symlink's target is created inside the rootfs, as runc's securejoin does),
// and returns an O_PATH fd of the result.
int MakePathInRoot(int rootfd, const char* path, bool file) {
  char buf[4096];
  CopyBounded(buf, sizeof buf, path);
  size_t len = strlen(buf);
  size_t start = 0;
  while (buf[start] == '/') start++;
  while (start < len) {
    size_t end = start;
    while (end < len && buf[end] != '/') end++;
    bool last = end >= len;
    // Parent = everything before this component.
    char saved = buf[start];
    buf[start] = '\0';
    int parent = OpenInRoot(rootfd, buf, O_PATH | O_DIRECTORY);
    buf[start] = saved;
    if (parent < 0) return -1;
    char name[256];
    size_t n = end - start < sizeof name - 1 ? end - start : sizeof name - 1;
    memcpy(name, buf + start, n);
    name[n] = '\0';
    int rc;
    if (last && file) {
      // From the root's fd, not openat(parent, name): a plain open would follow
      // a trailing symlink (an image's /etc/hosts -> /tmp/x) out to the host's
      // tree, which is still this mount namespace's root before pivot_root.
      rc = OpenInRoot(rootfd, buf, O_CREAT | O_WRONLY);
      if (rc >= 0) close(rc);
      else if (errno == EISDIR) rc = 0;
    } else {
      rc = mkdirat(parent, name, 0755);
      if (rc < 0 && errno == EEXIST) rc = 0;
    }
    int saved_errno = errno;
    close(parent);
    errno = saved_errno;
    if (rc < 0) return -1;
    start = end;
    while (start < len && buf[start] == '/') start++;
  }
  return OpenInRoot(rootfd, path, O_PATH);
}

void FdPath(char* out, int fd) {
  memcpy(out, "/proc/self/fd/", 14);
  FormatUnsigned(out + 14, static_cast<uint64_t>(fd));
}

int SetReadonly(int dirfd, const char* path, bool recursive) {
  struct mount_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.attr_set = MOUNT_ATTR_RDONLY;
  unsigned flags = (recursive ? AT_RECURSIVE : 0) | (path[0] ? 0 : AT_EMPTY_PATH);
  return static_cast<int>(syscall(SYS_mount_setattr, dirfd, path, flags, &attr, sizeof attr));
}

void RunMountOp(const ChildPlan& plan, int rootfd, const MountOp& op) {
  int sync = plan.sync_fd;
  const char* target = op.target.c_str();
  if (op.kind == MountKind::kSymlink) {
    char dir[4096];
    CopyBounded(dir, sizeof dir, target);
    char* slash = strrchr(dir, '/');
    const char* name = slash ? slash + 1 : dir;
    if (slash) *slash = '\0';
    int parent = MakePathInRoot(rootfd, dir, false);
    if (parent < 0) ReportFailure(sync, "mount_rootfs", "openat2", dir);
    // symlinkat needs a real directory fd, not O_PATH.
    char fdpath[32];
    FdPath(fdpath, parent);
    int dfd = open(fdpath, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
    if (dfd < 0) ReportFailure(sync, "mount_rootfs", "open", dir);
    if (symlinkat(op.link_target.c_str(), dfd, name) < 0 && errno != EEXIST)
      ReportFailure(sync, "mount_rootfs", "symlinkat", target);
    close(dfd);
    close(parent);
    return;
  }
  int fd = MakePathInRoot(rootfd, target, op.kind == MountKind::kBind && op.file);
  if (fd < 0) ReportFailure(sync, "mount_rootfs", "openat2", target);
  char fdpath[32];
  FdPath(fdpath, fd);
  if (op.kind == MountKind::kSysfs) {
    // The parent's detached sysfs (a joined netns), else one of our own netns.
    if (plan.sysfs_fd >= 0) {
      if (syscall(SYS_move_mount, plan.sysfs_fd, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
        ReportFailure(sync, "mount_rootfs", "move_mount", target);
    } else if (mount("sysfs", fdpath, "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) < 0) {
      ReportFailure(sync, "mount_rootfs", "mount", target);
    }
    close(fd);
    return;
  }
  if (op.kind == MountKind::kMount) {
    if (mount(op.source.c_str(), fdpath, op.fstype.c_str(), op.flags, op.data.c_str()) < 0)
      ReportFailure(sync, "mount_rootfs", "mount", target);
    close(fd);
    return;
  }
  if (mount(op.source.c_str(), fdpath, nullptr, MS_BIND | op.flags, nullptr) < 0)
    ReportFailure(sync, "mount_rootfs", "mount", target);
  close(fd);
  if (op.readonly) {
    // Reopen: the fd above names the directory under the new mount.
    int mfd = OpenInRoot(rootfd, target, O_PATH);
    if (mfd < 0) ReportFailure(sync, "mount_rootfs", "openat2", target);
    if (SetReadonly(mfd, "", (op.flags & MS_REC) != 0) < 0)
      ReportFailure(sync, "mount_rootfs", "mount_setattr", target);
    close(mfd);
  }
}

void PivotRoot(const ChildPlan& plan, int rootfd) {
  int sync = plan.sync_fd;
  int oldroot = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (oldroot < 0) ReportFailure(sync, "pivot_root", "open", "/");
  if (fchdir(rootfd) < 0) ReportFailure(sync, "pivot_root", "fchdir", plan.config->rootfs.c_str());
  // pivot_root(".", ".") stacks the old root on top of the new one; unmounting
  // "." from the old root's fd then leaves only the container's tree.
  if (syscall(SYS_pivot_root, ".", ".") < 0) ReportFailure(sync, "pivot_root", "pivot_root", plan.config->rootfs.c_str());
  if (fchdir(oldroot) < 0) ReportFailure(sync, "pivot_root", "fchdir", "/");
  // Keep the unmount from propagating anywhere (the host's mounts stay put).
  if (mount(nullptr, ".", nullptr, MS_SLAVE | MS_REC, nullptr) < 0) ReportFailure(sync, "pivot_root", "mount", "/");
  if (umount2(".", MNT_DETACH) < 0) ReportFailure(sync, "pivot_root", "umount2", "/");
  if (chdir("/") < 0) ReportFailure(sync, "pivot_root", "chdir", "/");
  close(oldroot);
}

void MaskPaths(const ChildPlan& plan) {
  for (const std::string& p : plan.config->masked_paths) {
    struct stat st;
    if (stat(p.c_str(), &st) < 0) {
      if (errno == ENOENT) continue;
      ReportFailure(plan.sync_fd, "mask_paths", "stat", p.c_str());
    }
    int rc = S_ISDIR(st.st_mode) ? mount("tmpfs", p.c_str(), "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0")
                                 : mount("/dev/null", p.c_str(), nullptr, MS_BIND, nullptr);
    if (rc < 0) ReportFailure(plan.sync_fd, "mask_paths", "mount", p.c_str());
  }
}

void ReadonlyPaths(const ChildPlan& plan) {
  for (const std::string& p : plan.config->readonly_paths) {
    if (mount(p.c_str(), p.c_str(), nullptr, MS_BIND | MS_REC, nullptr) < 0) {
      if (errno == ENOENT) continue;
      ReportFailure(plan.sync_fd, "readonly_paths", "mount", p.c_str());
    }
    // mount_setattr keeps the locked nosuid/nodev/noexec flags a remount would have to repeat.
    if (SetReadonly(AT_FDCWD, p.c_str(), true) < 0) ReportFailure(plan.sync_fd, "readonly_paths", "mount_setattr", p.c_str());
  }
}

void DropCapabilities(const ChildPlan& plan) {
  uint64_t keep = plan.config->process.capabilities;
  for (int cap = 0; cap < 64; cap++) {
    if (keep & (1ULL << cap)) continue;
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
      if (errno == EINVAL) break;  // past the kernel's last capability
      ReportFailure(plan.sync_fd, "drop_caps", "prctl(PR_CAPBSET_DROP)", "");
    }
  }
}

void SetCapabilities(const ChildPlan& plan) {
  uint64_t keep = plan.config->process.capabilities;
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  data[0].effective = data[0].permitted = static_cast<uint32_t>(keep);
  data[1].effective = data[1].permitted = static_cast<uint32_t>(keep >> 32);
  // Inheritable stays empty (CVE-2022-24769); a non-root user loses the rest at execve.
  if (syscall(SYS_capset, &header, data) < 0) ReportFailure(plan.sync_fd, "drop_caps", "capset", "");
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0) ReportFailure(plan.sync_fd, "drop_caps", "prctl(PR_CAP_AMBIENT)", "");
}

void SetUser(const ChildPlan& plan) {
  const ProcessConfig& p = plan.config->process;
  if (syscall(SYS_setgroups, plan.groups.size(), plan.groups.data()) < 0) ReportFailure(plan.sync_fd, "user", "setgroups", "");
  if (syscall(SYS_setresgid, p.gid, p.gid, p.gid) < 0) ReportFailure(plan.sync_fd, "user", "setresgid", "");
  if (syscall(SYS_setresuid, p.uid, p.uid, p.uid) < 0) ReportFailure(plan.sync_fd, "user", "setresuid", "");
}

// execvp with the container's PATH (from the app's env, not ours), like execvpe
// but without allocating.
[[noreturn]] void ExecApp(const ChildPlan& plan) {
  char* const* argv = const_cast<char* const*>(plan.argv.data());
  char* const* envp = const_cast<char* const*>(plan.envp.data());
  const char* file = plan.argv[0];
  if (strchr(file, '/')) {
    execve(file, argv, envp);
    ReportFailure(plan.sync_fd, "exec", "execve", file);
  }
  int found_errno = ENOENT;
  const char* p = plan.path_env;
  char candidate[4096];
  size_t flen = strlen(file);
  while (true) {
    const char* end = strchr(p, ':');
    size_t dlen = end ? static_cast<size_t>(end - p) : strlen(p);
    if (dlen + 1 + flen + 1 <= sizeof candidate) {
      size_t n = 0;
      if (dlen == 0) candidate[n++] = '.';  // an empty PATH entry is the cwd
      memcpy(candidate + n, p, dlen);
      n += dlen;
      candidate[n++] = '/';
      memcpy(candidate + n, file, flen + 1);
      execve(candidate, argv, envp);
      // Like execvp: a permission problem is remembered, a missing file is not.
      if (errno == EACCES) found_errno = EACCES;
      else if (errno != ENOENT && errno != ENOTDIR) {
        found_errno = errno;
        break;
      }
    }
    if (!end) break;
    p = end + 1;
  }
  errno = found_errno;
  ReportFailure(plan.sync_fd, "exec", "execve", file);
}

// PID 2: the app. Order follows runc's finalizeNamespace: rlimits, bounding
// set, user, capabilities, cwd, fds, no_new_privs, seccomp last, exec.
[[noreturn]] void RunApp(const ChildPlan& plan, int devnull, int out_w, int err_w) {
  int sync = plan.sync_fd;
  if (dup2(devnull, 0) < 0 || dup2(out_w, 1) < 0 || dup2(err_w, 2) < 0) ReportFailure(sync, "stdio", "dup2", "");
  for (const Rlimit& r : plan.config->process.rlimits) {
    struct rlimit lim;
    lim.rlim_cur = r.soft < 0 ? RLIM_INFINITY : static_cast<rlim_t>(r.soft);
    lim.rlim_max = r.hard < 0 ? RLIM_INFINITY : static_cast<rlim_t>(r.hard);
    if (setrlimit(static_cast<__rlimit_resource>(r.resource), &lim) < 0) ReportFailure(sync, "rlimits", "setrlimit", "");
  }
  DropCapabilities(plan);
  if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) ReportFailure(sync, "user", "prctl(PR_SET_KEEPCAPS)", "");
  SetUser(plan);
  SetCapabilities(plan);
  if (chdir(plan.config->process.cwd.c_str()) < 0) ReportFailure(sync, "cwd", "chdir", plan.config->process.cwd.c_str());
  // Every inherited fd but 0-2 closes at exec; the sync socket already is close-on-exec.
  if (syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC) < 0) ReportFailure(sync, "close_fds", "close_range", "");
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) ReportFailure(sync, "no_new_privs", "prctl(PR_SET_NO_NEW_PRIVS)", "");
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  // Seccomp as late as possible: everything above may use syscalls the profile refuses.
  struct sock_fprog prog;
  prog.len = static_cast<unsigned short>(plan.seccomp.size());
  prog.filter = const_cast<sock_filter*>(plan.seccomp.data());
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0) ReportFailure(sync, "seccomp", "seccomp", "");
  ExecApp(plan);
}

int ClearCloexec(int fd) { return fcntl(fd, F_SETFD, 0); }

struct AppArgs {
  const ChildPlan* plan;
  int devnull, out_w, err_w;
};

int AppMain(void* arg) {
  const AppArgs* a = static_cast<const AppArgs*>(arg);
  RunApp(*a->plan, a->devnull, a->out_w, a->err_w);
}

[[noreturn]] void RunChild(const ChildPlan& plan) {
  const ContainerConfig& c = *plan.config;
  int sync = plan.sync_fd;
  close(plan.parent_sync_fd);
  // Handlers inherited from Node are meaningless here; signals stay blocked
  // (berth-init reads them from a signalfd, the app unblocks them before exec).
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; sig++) sigaction(sig, &dfl, nullptr);

  char go = 0;
  ssize_t n;
  do n = read(sync, &go, 1);
  while (n < 0 && errno == EINTR);
  if (n != 1 || go != kSyncGo) _exit(127);  // the parent gave up: nobody to tell

  // A session of its own (runc's init does the same): a signal to the agent's
  // process group — Ctrl-C on `npm start`, a supervisor killing what a stopped
  // agent left — never reaches the container, which outlives its agent.
  if (setsid() < 0) ReportFailure(sync, "session", "setsid", "");

  // map_ids is done by the parent; become the mapped root.
  if (syscall(SYS_setresgid, 0, 0, 0) < 0) ReportFailure(sync, "map_ids", "setresgid", "");
  if (syscall(SYS_setresuid, 0, 0, 0) < 0) ReportFailure(sync, "map_ids", "setresuid", "");
  if (syscall(SYS_setgroups, 0, nullptr) < 0) ReportFailure(sync, "map_ids", "setgroups", "");
  // After the parent put us in our cgroups, so the namespace's root is ours.
  if (unshare(CLONE_NEWCGROUP) < 0) ReportFailure(sync, "cgroup", "unshare(CLONE_NEWCGROUP)", "");

  if (mount(nullptr, "/", nullptr, MS_SLAVE | MS_REC, nullptr) < 0) ReportFailure(sync, "mount_rootfs", "mount", "/");
  if (mount(c.rootfs.c_str(), c.rootfs.c_str(), nullptr, MS_BIND | MS_REC, nullptr) < 0)
    ReportFailure(sync, "mount_rootfs", "mount", c.rootfs.c_str());
  int rootfd = open(c.rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) ReportFailure(sync, "mount_rootfs", "open", c.rootfs.c_str());
  for (const MountOp& op : c.mounts) RunMountOp(plan, rootfd, op);
  PivotRoot(plan, rootfd);
  close(rootfd);
  MaskPaths(plan);
  ReadonlyPaths(plan);
  if (sethostname(c.hostname.data(), c.hostname.size()) < 0) ReportFailure(sync, "hostname", "sethostname", "");

  int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull < 0) ReportFailure(sync, "stdio", "open", "/dev/null");
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) ReportFailure(sync, "stdio", "pipe2", "");

  // CLONE_VFORK: we sleep until the app has exec'd (or died), so the shared
  // memory is never used by both at once.
  AppArgs app_args{&plan, devnull, out[1], err[1]};
  pid_t app = clone(AppMain, plan.app_stack_top, CLONE_VM | CLONE_VFORK | SIGCHLD, &app_args);
  if (app < 0) ReportFailure(sync, "exec", "clone", "");
  close(devnull);
  close(out[1]);
  close(err[1]);

  // PID 1 becomes berth-init (a static binary, exec'd from an fd opened on the
  // host) instead of staying a copy of Node: a forked copy would keep the
  // agent's whole address space alive per container.
  if (syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC) < 0) ReportFailure(sync, "init", "close_range", "");
  if (ClearCloexec(out[0]) < 0 || ClearCloexec(err[0]) < 0 || ClearCloexec(plan.io_dir_fd) < 0)
    ReportFailure(sync, "init", "fcntl", "");
  // The plan is the parent's own memory (CLONE_VM); init_args is ours to write: the parent never reads it.
  ChildPlan& mut = const_cast<ChildPlan&>(plan);
  FormatUnsigned(mut.init_args[0], static_cast<uint64_t>(app));
  FormatUnsigned(mut.init_args[1], static_cast<uint64_t>(out[0]));
  FormatUnsigned(mut.init_args[2], static_cast<uint64_t>(err[0]));
  FormatUnsigned(mut.init_args[3], static_cast<uint64_t>(plan.io_dir_fd));
  FormatUnsigned(mut.init_args[4], c.log_max_bytes);
  FormatUnsigned(mut.init_args[5], c.log_keep_files);
  char name[] = "berth-init";
  char* init_argv[] = {name, mut.init_args[0], mut.init_args[1], mut.init_args[2],
                       mut.init_args[3], mut.init_args[4], mut.init_args[5], nullptr};
  char* init_envp[] = {nullptr};
  syscall(SYS_execveat, plan.init_fd, "", init_argv, init_envp, AT_EMPTY_PATH);
  ReportFailure(sync, "init", "execveat", c.init_path.c_str());
}

}  // namespace

int ChildMain(void* plan) { RunChild(*static_cast<const ChildPlan*>(plan)); }

}  // namespace berth
