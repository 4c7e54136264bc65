// Filesystem primitives Node lacks, for the rootfs manager (typed in
// ../fs.d.ts): a user namespace fd for idmapped mounts, idmapped bind mounts
// (open_tree + mount_setattr), overlay mounts through the new mount API (one
// `lowerdir+` per layer, so no 4 KiB mount-data limit; Linux 6.8) or, before
// 6.8, one mount(2) with short colon-joined lowers, loop mounts via
// LOOP_CONFIGURE, unmount, reading an entry's xattrs, and a pipe of a chosen
// size (the router's access lines from HAProxy). The confined writes
// of layer extraction are in layer_tar.cc.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <linux/openat2.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "modules.h"
#include "sys.h"

namespace berth {
namespace {

std::string StrArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (!info[i].IsString()) throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

int IntArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a number");
  return info[i].As<Napi::Number>().Int32Value();
}

// fsUserNamespace(uidMap, gidMap) -> fd of a new user namespace with those
// maps. A child is cloned into the namespace only long enough to write its
// maps and open /proc/PID/ns/user; the fd then keeps the namespace alive.
Napi::Value UserNamespace(const Napi::CallbackInfo& info) {
  std::string uidMap = StrArg(info, 0, "uidMap");
  std::string gidMap = StrArg(info, 1, "gidMap");
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) < 0) Fail("user namespace", "pipe2", errno, "");
  // Block signals across the clone so the child never runs Node's handlers; it
  // only blocks on read() and _exit()s (async-signal-safe).
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  long pid = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
  if (pid == 0) {
    char c;
    close(pipefd[1]);
    while (read(pipefd[0], &c, 1) < 0 && errno == EINTR) {
    }
    _exit(0);
  }
  int cloneErr = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  close(pipefd[0]);
  Fd release(pipefd[1]);
  if (pid < 0) Fail("user namespace", "clone", cloneErr, "");
  auto reap = [&]() {
    close(release.release());
    while (waitpid(static_cast<pid_t>(pid), nullptr, 0) < 0 && errno == EINTR) {
    }
  };
  try {
    std::string base = "/proc/" + std::to_string(pid);
    for (auto [file, map] : {std::pair{"/uid_map", &uidMap}, std::pair{"/gid_map", &gidMap}}) {
      Fd f(open((base + file).c_str(), O_WRONLY | O_CLOEXEC));
      if (f.get() < 0) Fail("user namespace", "open", errno, base + file);
      if (write(f.get(), map->data(), map->size()) != static_cast<ssize_t>(map->size()))
        Fail("write id map", "write", errno, base + file);
    }
    int ns = open((base + "/ns/user").c_str(), O_RDONLY | O_CLOEXEC);
    if (ns < 0) Fail("user namespace", "open", errno, base + "/ns/user");
    reap();
    return Napi::Number::New(info.Env(), ns);
  } catch (...) {
    reap();
    throw;
  }
}

// fsMountIdmapped(source, target, usernsFd): a read-only bind of source at
// target whose file ids are shifted through the user namespace's maps.
Napi::Value MountIdmapped(const Napi::CallbackInfo& info) {
  std::string source = StrArg(info, 0, "source");
  std::string target = StrArg(info, 1, "target");
  int userns = IntArg(info, 2, "usernsFd");
  Fd tree(open_tree(AT_FDCWD, source.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC));
  if (tree.get() < 0) Fail("idmapped mount", "open_tree", errno, source);
  struct mount_attr attr = {};
  // Read-only: a lower layer is shared by every container and must never change.
  attr.attr_set = MOUNT_ATTR_IDMAP | MOUNT_ATTR_RDONLY;
  attr.userns_fd = static_cast<uint64_t>(userns);
  if (mount_setattr(tree.get(), "", AT_EMPTY_PATH, &attr, sizeof attr) < 0) Fail("idmapped mount", "mount_setattr", errno, source);
  if (move_mount(tree.get(), "", AT_FDCWD, target.c_str(), MOVE_MOUNT_F_EMPTY_PATH) < 0)
    Fail("idmapped mount", "move_mount", errno, target);
  return info.Env().Undefined();
}

// The kernel's messages for a failed fs context, for the error's detail.
std::string FsContextLog(int fsfd) {
  std::string out;
  char buf[512];
  for (;;) {
    ssize_t n = read(fsfd, buf, sizeof buf - 1);
    if (n <= 0) break;
    buf[n] = 0;
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

// fsMountOverlay(target, lowers[], upper, work): lowers are top-most first; an
// empty upper makes a read-only overlay of the lowers alone.
Napi::Value MountOverlay(const Napi::CallbackInfo& info) {
  std::string target = StrArg(info, 0, "target");
  if (!info[1].IsArray()) throw Napi::TypeError::New(info.Env(), "lowers must be an array");
  Napi::Array lowers = info[1].As<Napi::Array>();
  std::string upper = StrArg(info, 2, "upper");
  std::string work = StrArg(info, 3, "work");
  Fd fs(fsopen("overlay", FSOPEN_CLOEXEC));
  if (fs.get() < 0) Fail("overlay mount", "fsopen", errno, target);
  auto set = [&](const char* key, const std::string& value) {
    if (fsconfig(fs.get(), FSCONFIG_SET_STRING, key, value.c_str(), 0) < 0) {
      int e = errno;
      Fail(std::string("overlay option ") + key, "fsconfig", e, value, FsContextLog(fs.get()));
    }
  };
  for (uint32_t i = 0; i < lowers.Length(); i++) set("lowerdir+", lowers.Get(i).As<Napi::String>().Utf8Value());
  // Without an upper directory the overlay is read-only (at least two lowers needed).
  if (!upper.empty()) {
    set("upperdir", upper);
    set("workdir", work);
  }
  if (fsconfig(fs.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) < 0) {
    int e = errno;
    Fail("overlay mount", "fsconfig", e, target, FsContextLog(fs.get()));
  }
  // nosuid,nodev from the host's side: a container's files never act as setuid or devices on the host.
  Fd mnt(fsmount(fs.get(), FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV));
  if (mnt.get() < 0) Fail("overlay mount", "fsmount", errno, target);
  if (move_mount(mnt.get(), "", AT_FDCWD, target.c_str(), MOVE_MOUNT_F_EMPTY_PATH) < 0)
    Fail("overlay mount", "move_mount", errno, target);
  return info.Env().Undefined();
}

// fsMountOverlayJoined(dir, target, lowers[], upper, work): the overlay mount of
// kernels before 6.8, which lack `lowerdir+`: one mount(2) whose options hold
// every lower in a single colon-joined lowerdir. The kernel takes at most a
// page of mount data, so the lowers are short names relative to dir (the
// caller links them there: lower/0, lower/1, ...; Docker's overlay2 does the
// same with its l/ links). A child chdirs to dir and mounts, so Node's own
// working directory never changes under its threads.
Napi::Value MountOverlayJoined(const Napi::CallbackInfo& info) {
  std::string dir = StrArg(info, 0, "dir");
  std::string target = StrArg(info, 1, "target");
  if (!info[2].IsArray()) throw Napi::TypeError::New(info.Env(), "lowers must be an array");
  Napi::Array lowers = info[2].As<Napi::Array>();
  std::string upper = StrArg(info, 3, "upper");
  std::string work = StrArg(info, 4, "work");
  // ',' ends an option and ':' a lower: paths holding them would be read as something else.
  auto plain = [&](const std::string& path) {
    if (path.empty() || path.find_first_of(",:\\") != std::string::npos)
      throw Napi::TypeError::New(info.Env(), "overlay path " + path + " is empty or holds , : or \\");
    return path;
  };
  std::string data = "lowerdir=";
  for (uint32_t i = 0; i < lowers.Length(); i++) {
    if (i > 0) data += ':';
    data += plain(lowers.Get(i).As<Napi::String>().Utf8Value());
  }
  if (!upper.empty()) data += ",upperdir=" + plain(upper) + ",workdir=" + plain(work);
  if (data.size() >= static_cast<size_t>(sysconf(_SC_PAGESIZE)))
    Fail("overlay mount (" + std::to_string(lowers.Length()) + " layers: options over a page; Linux 6.8 lifts this)", "mount", E2BIG, target);
  const char* cdir = dir.c_str();
  const char* ctarget = target.c_str();
  const char* cdata = data.c_str();
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  long pid = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
  if (pid == 0) {
    // Async-signal-safe only: the errno travels back as the exit status.
    if (chdir(cdir) < 0) _exit(errno);
    if (mount("overlay", ctarget, "overlay", MS_NOSUID | MS_NODEV, cdata) < 0) _exit(errno);
    _exit(0);
  }
  int cloneErr = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) Fail("overlay mount", "clone", cloneErr, target);
  int status = 0;
  while (waitpid(static_cast<pid_t>(pid), &status, 0) < 0 && errno == EINTR) {
  }
  int err = WIFEXITED(status) ? WEXITSTATUS(status) : EINTR;
  if (err != 0) Fail("overlay mount", "mount", err, target, data + " in " + dir);
  return info.Env().Undefined();
}

// Attaches file to a free loop device (LO_FLAGS_AUTOCLEAR, so unmounting the
// filesystem detaches it) and mounts it on target. Returns the device path.
std::string LoopMountImpl(const std::string& file, const std::string& target, const std::string& fstype) {
  Fd backing(open(file.c_str(), O_RDWR | O_CLOEXEC));
  if (backing.get() < 0) Fail("loop mount", "open", errno, file);
  Fd ctl(open("/dev/loop-control", O_RDWR | O_CLOEXEC));
  if (ctl.get() < 0) Fail("loop mount", "open", errno, "/dev/loop-control");
  for (int attempt = 0; attempt < 16; attempt++) {
    int n = ioctl(ctl.get(), LOOP_CTL_GET_FREE);
    if (n < 0) Fail("loop mount", "ioctl(LOOP_CTL_GET_FREE)", errno, file);
    std::string dev = "/dev/loop" + std::to_string(n);
    Fd loop(open(dev.c_str(), O_RDWR | O_CLOEXEC));
    if (loop.get() < 0) Fail("loop mount", "open", errno, dev);
    struct loop_config cfg = {};
    cfg.fd = static_cast<uint32_t>(backing.get());
    cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR;
    strncpy(reinterpret_cast<char*>(cfg.info.lo_file_name), file.c_str(), LO_NAME_SIZE - 1);
    if (ioctl(loop.get(), LOOP_CONFIGURE, &cfg) < 0) {
      if (errno == EBUSY) continue;  // another process took this device between the two calls
      Fail("loop mount", "ioctl(LOOP_CONFIGURE)", errno, dev);
    }
    if (mount(dev.c_str(), target.c_str(), fstype.c_str(), MS_NOSUID | MS_NODEV, nullptr) < 0) {
      int e = errno;
      ioctl(loop.get(), LOOP_CLR_FD, 0);
      Fail("loop mount", "mount", e, target);
    }
    return dev;
  }
  Fail("loop mount", "ioctl(LOOP_CONFIGURE)", EBUSY, file);
}

// Mounting ext4 reads its metadata and can take tens of milliseconds: off the
// main thread, so a pool refill never stalls a container start.
class LoopMountWorker : public SysWorker {
 public:
  LoopMountWorker(Napi::Env env, std::string file, std::string target, std::string fstype)
      : SysWorker(env), file_(std::move(file)), target_(std::move(target)), fstype_(std::move(fstype)) {}

 private:
  void Run() override { dev_ = LoopMountImpl(file_, target_, fstype_); }
  Napi::Value Result(Napi::Env env) override { return Napi::String::New(env, dev_); }
  std::string file_, target_, fstype_, dev_;
};

// fsLoopMount(file, target, fstype) -> Promise of the loop device path.
Napi::Value LoopMount(const Napi::CallbackInfo& info) {
  return (new LoopMountWorker(info.Env(), StrArg(info, 0, "file"), StrArg(info, 1, "target"), StrArg(info, 2, "fstype")))->Start();
}

// fsUnmount(target, detach): umount2, lazily with detach.
Napi::Value Unmount(const Napi::CallbackInfo& info) {
  std::string target = StrArg(info, 0, "target");
  bool detach = info[1].ToBoolean().Value();
  if (umount2(target.c_str(), (detach ? MNT_DETACH : 0) | UMOUNT_NOFOLLOW) < 0) Fail("unmount", "umount2", errno, target);
  return info.Env().Undefined();
}

// fsGetXattrs(path) -> {name: Buffer} of the entry itself (never followed):
// what an image's tree holds, for reports and tests.
Napi::Value GetXattrs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = StrArg(info, 0, "path");
  Napi::Object out = Napi::Object::New(env);
  ssize_t len = llistxattr(path.c_str(), nullptr, 0);
  if (len < 0) Fail("list xattrs", "llistxattr", errno, path);
  std::vector<char> names(static_cast<size_t>(len) + 1);
  len = llistxattr(path.c_str(), names.data(), names.size());
  if (len < 0) Fail("list xattrs", "llistxattr", errno, path);
  for (ssize_t off = 0; off < len;) {
    std::string name(names.data() + off);
    off += static_cast<ssize_t>(name.size()) + 1;
    ssize_t vlen = lgetxattr(path.c_str(), name.c_str(), nullptr, 0);
    if (vlen < 0) Fail("read xattr " + name, "lgetxattr", errno, path);
    std::vector<uint8_t> value(static_cast<size_t>(vlen));
    vlen = lgetxattr(path.c_str(), name.c_str(), value.data(), value.size());
    if (vlen < 0) Fail("read xattr " + name, "lgetxattr", errno, path);
    out.Set(name, Napi::Buffer<uint8_t>::Copy(env, value.data(), static_cast<size_t>(vlen)));
  }
  return out;
}

// fsPipe(capacity) -> {read, write, capacity}: a pipe whose buffer holds at
// least `capacity` bytes (F_SETPIPE_SZ; Node cannot set it), both ends
// close-on-exec, the read end non-blocking. A writer that does not block (as
// HAProxy's log to a file descriptor) loses what does not fit, so a reader
// that drains it on a timer needs room for a whole interval.
Napi::Value Pipe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int capacity = IntArg(info, 0, "capacity");
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) < 0) Fail("pipe", "pipe2", errno);
  Fd readEnd(fds[0]), writeEnd(fds[1]);
  if (fcntl(readEnd.get(), F_SETPIPE_SZ, capacity) < 0) Fail("pipe", "fcntl F_SETPIPE_SZ", errno, std::to_string(capacity) + " bytes");
  int actual = fcntl(readEnd.get(), F_GETPIPE_SZ);
  if (actual < 0) Fail("pipe", "fcntl F_GETPIPE_SZ", errno);
  if (fcntl(readEnd.get(), F_SETFL, O_NONBLOCK) < 0) Fail("pipe", "fcntl O_NONBLOCK", errno);
  Napi::Object out = Napi::Object::New(env);
  out.Set("capacity", Napi::Number::New(env, actual));
  out.Set("read", Napi::Number::New(env, readEnd.release()));
  out.Set("write", Napi::Number::New(env, writeEnd.release()));
  return out;
}

}  // namespace

void InitFs(Napi::Env env, Napi::Object exports) {
  exports.Set("fsUserNamespace", Napi::Function::New(env, Wrap<UserNamespace>, "fsUserNamespace"));
  exports.Set("fsMountIdmapped", Napi::Function::New(env, Wrap<MountIdmapped>, "fsMountIdmapped"));
  exports.Set("fsMountOverlay", Napi::Function::New(env, Wrap<MountOverlay>, "fsMountOverlay"));
  exports.Set("fsMountOverlayJoined", Napi::Function::New(env, Wrap<MountOverlayJoined>, "fsMountOverlayJoined"));
  exports.Set("fsLoopMount", Napi::Function::New(env, Wrap<LoopMount>, "fsLoopMount"));
  exports.Set("fsGetXattrs", Napi::Function::New(env, Wrap<GetXattrs>, "fsGetXattrs"));
  exports.Set("fsPipe", Napi::Function::New(env, Wrap<Pipe>, "fsPipe"));
  exports.Set("fsUnmount", Napi::Function::New(env, Wrap<Unmount>, "fsUnmount"));
}

}  // namespace berth
