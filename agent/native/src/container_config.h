// The container config as the C++ side holds it, and the parent/child sync
// protocol. The config is copied from the JS object on the main thread
// (container.cc); everything the cloned child needs is computed here before
// clone, so the child only reads memory and makes syscalls.
//
// Processes (pid namespaces nest left to right):
//
//   agent (Node) -- create thread --clone(CLONE_VM|NEWUSER|NEWNS|NEWPID|NEWUTS|NEWIPC[|NEWNET])-->
//     child = PID 1: setup steps, clone(CLONE_VM|CLONE_VFORK) the app, then execveat(berth-init)
//       app (PID 2): user, caps, no_new_privs, seccomp, execve(argv)
//
// Both clones share the agent's memory (as posix_spawn does) instead of
// copying its page tables twice: each runs on a stack the parent mapped, reads
// only the plan, and execs. The parent unmaps the stacks once the sync socket
// reports both execs (or after reaping a failed child).
//
// Sync socket (AF_UNIX SOCK_SEQPACKET, close-on-exec; the child and the app
// each hold the fd until they exec):
//
//   parent                               child (PID 1)
//   clone --------------------------------> blocks in read()
//   write uid_map/gid_map, join cgroups
//   kSyncGo ------------------------------> setup steps ... clone the app
//                       <----------------- ChildError {step, syscall, errno, path} (then _exit)
//   EOF: both PID 1 (execveat of berth-init) and the app (execve) have exec'd,
//   closing the fd at exec; that is the success signal.
#pragma once
#include <linux/filter.h>
#include <stdint.h>
#include <sys/types.h>

#include <string>
#include <vector>

#include "sys.h"

namespace berth {

constexpr char kSyncGo = 'G';

// What the child sends when a step fails. Fixed size so one write() is one message.
struct ChildError {
  char step[32];
  char syscall[32];
  int32_t err;
  char path[256];
};

struct IdMapping {
  uint32_t container_id, host_id, size;
};

struct CgroupFile {
  std::string name, value;
};

struct CgroupDir {
  std::string path;
  std::vector<CgroupFile> files;
  bool join;
};

enum class MountKind { kMount, kBind, kSymlink, kSysfs };

struct MountOp {
  MountKind kind;
  std::string source, target, fstype, data, link_target;
  unsigned long flags;
  bool readonly, file;
};

struct SeccompArg {
  unsigned index;
  std::string op;
  uint64_t value, value_two;
};

struct SeccompRule {
  std::vector<std::string> names;
  bool allow;
  int err;
  std::vector<SeccompArg> args;
};

struct SeccompProfile {
  int default_errno;
  std::vector<std::string> architectures;
  std::vector<SeccompRule> rules;
  // The JSON of the profile, the key of the compiled-filter cache.
  std::string cache_key;
};

struct Rlimit {
  int resource;
  int64_t soft, hard;
};

struct ProcessConfig {
  std::vector<std::string> argv, env;
  std::string cwd;
  uint32_t uid, gid;
  std::vector<uint32_t> additional_gids;
  uint64_t capabilities;  // bit n = CAP n
  std::vector<Rlimit> rlimits;
};

struct ContainerConfig {
  std::string id, init_path, rootfs, hostname, netns_path, io_dir;
  std::vector<IdMapping> uid_map, gid_map;
  std::vector<CgroupDir> cgroups;
  std::vector<MountOp> mounts;
  std::vector<std::string> masked_paths, readonly_paths;
  uint64_t log_max_bytes;
  uint32_t log_keep_files;
  ProcessConfig process;
  SeccompProfile seccomp;
};

// Everything the child reads, prepared in the parent before clone: C string
// arrays, the compiled seccomp program, open fds, argv of berth-init.
struct ChildPlan {
  const ContainerConfig* config;
  int sync_fd;        // the child's end of the sync socket
  int init_fd;        // O_PATH of berth-init, exec'd with execveat after pivot_root
  int io_dir_fd;      // O_PATH|O_DIRECTORY of the io dir, handed to berth-init
  int sysfs_fd;       // detached sysfs (fsmount) of a joined netns for the kSysfs op, or -1: the child mounts one
  std::vector<const char*> argv, envp;
  std::vector<gid_t> groups;
  std::vector<sock_filter> seccomp;
  const char* path_env;  // the value of PATH in envp, or a default
  // berth-init's argv as text, filled by the child after it knows the fds
  // (fixed buffers: the child must not allocate).
  char init_args[6][24];
  // The parent's end of the sync socket, which the child closes first.
  int parent_sync_fd;
  // Stack for the app's vfork-style clone (the child and the app share the
  // agent's memory until they exec, so nothing is copied; see container_parent.cc).
  char* app_stack_top;
};

constexpr size_t kChildStackSize = 256 * 1024;

// Entry point of the clone child (glibc clone() calls it on its own stack).
int ChildMain(void* plan);

// Compiles the profile with libseccomp, once per distinct profile (thread-safe).
// Throws SysError (step "seccomp") naming the failing libseccomp call.
std::vector<sock_filter> CompileSeccomp(const SeccompProfile& profile);

struct Created {
  pid_t pid;
  uint64_t start_time;
};

// Builds the container (runs on a dedicated thread). Throws SysError.
Created CreateContainer(const ContainerConfig& config);

// Field 22 of /proc/PID/stat, 0 when the process does not exist.
uint64_t ProcessStartTime(pid_t pid);

}  // namespace berth
