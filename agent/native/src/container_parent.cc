// The parent side of container creation, run on a dedicated thread (never the
// event loop): cgroups, clone (glibc's, CLONE_VM), id maps, the sync socket (protocol in
// container_config.h). Every failure is a SysError naming step, syscall, path.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "container_config.h"

namespace berth {
namespace {

void WriteFile(const std::string& path, const std::string& value, const char* step) {
  Fd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (fd.get() < 0) Fail(step, "open", errno, path);
  ssize_t n;
  do n = write(fd.get(), value.data(), value.size());
  while (n < 0 && errno == EINTR);
  if (n < 0) Fail(step, "write", errno, path);
}

void MakeDirs(const std::string& path) {
  for (size_t i = 1; i <= path.size(); i++) {
    if (i != path.size() && path[i] != '/') continue;
    std::string prefix = path.substr(0, i);
    if (mkdir(prefix.c_str(), 0755) < 0 && errno != EEXIST) Fail("cgroup", "mkdir", errno, prefix);
  }
}

std::string MapText(const std::vector<IdMapping>& map) {
  std::string text;
  for (const IdMapping& m : map)
    text += std::to_string(m.container_id) + " " + std::to_string(m.host_id) + " " + std::to_string(m.size) + "\n";
  return text;
}

// The two clone stacks, unmapped when CreateContainer returns (by then the
// child and the app have exec'd or been reaped).
struct Stacks {
  void* base = MAP_FAILED;
  Stacks() {
    base = mmap(nullptr, 2 * kChildStackSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (base == MAP_FAILED) Fail("clone", "mmap", errno);
  }
  ~Stacks() { munmap(base, 2 * kChildStackSize); }
  char* top(int i) const { return static_cast<char*>(base) + (i + 1) * kChildStackSize; }
};

void KillAndReap(int pidfd) {
  syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0);
  siginfo_t info;
  while (waitid(static_cast<idtype_t>(P_PIDFD), pidfd, &info, WEXITED) < 0 && errno == EINTR) {
  }
}

// Everything the child reads, computed now: it may not allocate after clone.
void PreparePlan(const ContainerConfig& c, ChildPlan& plan) {
  plan.config = &c;
  for (const std::string& a : c.process.argv) plan.argv.push_back(a.c_str());
  plan.argv.push_back(nullptr);
  plan.path_env = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (const std::string& e : c.process.env) {
    plan.envp.push_back(e.c_str());
    if (e.rfind("PATH=", 0) == 0) plan.path_env = e.c_str() + 5;
  }
  plan.envp.push_back(nullptr);
  for (uint32_t g : c.process.additional_gids) plan.groups.push_back(g);
  plan.seccomp = CompileSeccomp(c.seccomp);
}

}  // namespace

uint64_t ProcessStartTime(pid_t pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/stat";
  Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return 0;
  char buf[1024];
  ssize_t n = read(fd.get(), buf, sizeof buf - 1);
  if (n <= 0) return 0;
  buf[n] = '\0';
  // comm may contain spaces and parentheses: fields restart after the last ')'.
  char* p = strrchr(buf, ')');
  if (!p) return 0;
  int field = 2;
  while (*p && field < 22) {
    if (*p == ' ') field++;
    p++;
  }
  return field == 22 ? strtoull(p, nullptr, 10) : 0;
}

Created CreateContainer(const ContainerConfig& c) {
  ChildPlan plan;
  PreparePlan(c, plan);

  for (const CgroupDir& dir : c.cgroups) {
    MakeDirs(dir.path);
    for (const CgroupFile& f : dir.files) WriteFile(dir.path + "/" + f.name, f.value, "cgroup");
  }

  Fd init_fd(open(c.init_path.c_str(), O_PATH | O_CLOEXEC));
  if (init_fd.get() < 0) Fail("init", "open", errno, c.init_path);
  Fd io_fd(open(c.io_dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (io_fd.get() < 0) Fail("stdio", "open", errno, c.io_dir);
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) Fail("sync", "socketpair", errno);
  Fd parent_end(sv[0]);
  Fd child_end(sv[1]);
  plan.sync_fd = child_end.get();
  plan.init_fd = init_fd.get();
  plan.io_dir_fd = io_fd.get();

  Stacks stacks;
  plan.app_stack_top = stacks.top(1);
  plan.parent_sync_fd = parent_end.get();

  int flags = CLONE_VM | CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_PIDFD | SIGCHLD;
  if (!c.netns_path.empty()) {
    // setns(CLONE_NEWNET) changes only this thread, a dedicated one that ends
    // after create; the child inherits the namespace. Joining must happen here,
    // while we still hold CAP_SYS_ADMIN over a namespace the host created.
    Fd ns(open(c.netns_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (ns.get() < 0) Fail("netns", "open", errno, c.netns_path);
    if (setns(ns.get(), CLONE_NEWNET) < 0) Fail("netns", "setns", errno, c.netns_path);
  } else {
    flags |= CLONE_NEWNET;
  }
  // sysfs shows the network namespace of whoever mounts it, and only a holder
  // of CAP_SYS_ADMIN over that namespace's owner may: for a namespace the host
  // made that is this thread (in it now), not the container's root.
  Fd sysfs;
  bool wants_sysfs = false;
  for (const MountOp& op : c.mounts) wants_sysfs |= op.kind == MountKind::kSysfs;
  if (wants_sysfs && !c.netns_path.empty()) {
    Fd ctx(static_cast<int>(syscall(SYS_fsopen, "sysfs", FSOPEN_CLOEXEC)));
    if (ctx.get() < 0) Fail("mount_rootfs", "fsopen", errno, "sysfs");
    if (syscall(SYS_fsconfig, ctx.get(), FSCONFIG_SET_STRING, "source", "sysfs", 0) < 0 ||
        syscall(SYS_fsconfig, ctx.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) < 0)
      Fail("mount_rootfs", "fsconfig", errno, "sysfs");
    sysfs.reset(static_cast<int>(syscall(SYS_fsmount, ctx.get(), FSMOUNT_CLOEXEC,
                                         MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC)));
    if (sysfs.get() < 0) Fail("mount_rootfs", "fsmount", errno, "sysfs");
  }
  plan.sysfs_fd = sysfs.get();

  int pidfd = -1;
  // Signals blocked across clone so no Node handler ever runs in the child.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  long pid = clone(ChildMain, stacks.top(0), flags, &plan, &pidfd);
  int clone_errno = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) Fail("clone", "clone", clone_errno);
  Fd pid_fd(pidfd);
  child_end.reset();

  try {
    std::string proc = "/proc/" + std::to_string(pid);
    WriteFile(proc + "/uid_map", MapText(c.uid_map), "map_ids");
    WriteFile(proc + "/gid_map", MapText(c.gid_map), "map_ids");
    for (const CgroupDir& dir : c.cgroups)
      if (dir.join) WriteFile(dir.path + "/cgroup.procs", std::to_string(pid), "cgroup");
    char go = kSyncGo;
    if (write(parent_end.get(), &go, 1) != 1) Fail("sync", "write", errno);
    ChildError e;
    ssize_t n;
    do n = read(parent_end.get(), &e, sizeof e);
    while (n < 0 && errno == EINTR);
    if (n < 0) Fail("sync", "read", errno);
    if (n == static_cast<ssize_t>(sizeof e)) {
      e.step[sizeof e.step - 1] = e.syscall[sizeof e.syscall - 1] = e.path[sizeof e.path - 1] = '\0';
      Fail(e.step, e.syscall, e.err, e.path);
    }
    if (n != 0) Fail("sync", "read", EPROTO);
  } catch (...) {
    KillAndReap(pid_fd.get());
    throw;
  }
  return Created{static_cast<pid_t>(pid), ProcessStartTime(static_cast<pid_t>(pid))};
}

}  // namespace berth
