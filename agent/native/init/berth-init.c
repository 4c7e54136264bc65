/*
 * berth-init: PID 1 of every Berth container, exec'd by the addon's child once
 * the container is set up and the app forked (see src/container_child.cc).
 *
 * Why a separate static binary rather than the forked child staying PID 1: the
 * child is a copy-on-write image of the whole Node agent, which would stay
 * resident (and diverge page by page) for the container's lifetime. This
 * binary is a few hundred kilobytes, needs no libraries inside the rootfs, and
 * runs outside every seccomp filter the app gets.
 *
 * Its jobs: reap every zombie (orphans are reparented to PID 1), forward
 * signals to the app, own the app's stdout/stderr pipes and write them to
 * size-capped, rotated files in the io directory (so a chatty app cannot fill
 * the disk and logs keep flowing when the agent is kill -9'd), and when the
 * app exits, kill what is left, drain the pipes, record exit.json, and exit
 * with the app's status.
 *
 * argv: berth-init APP_PID STDOUT_FD STDERR_FD IO_DIR_FD MAX_BYTES KEEP_FILES
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

struct log {
  int pipe;     /* read end, -1 once at EOF */
  int file;     /* current file, -1 when it could not be opened */
  const char *name;
  uint64_t size;
};

static int io_dir;
static uint64_t max_bytes;
static unsigned keep_files;

/* Opens NAME in the io directory, never through a symlink or into a FIFO:
 * whatever else holds the name is replaced by a fresh file. */
static void open_log(struct log *l) {
  struct stat st;
  l->file = openat(io_dir, l->name, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0640);
  if (l->file < 0 || fstat(l->file, &st) < 0 || !S_ISREG(st.st_mode)) {
    if (l->file >= 0) close(l->file);
    unlinkat(io_dir, l->name, 0);
    l->file = openat(io_dir, l->name, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
    st.st_size = 0;
  }
  l->size = l->file >= 0 ? (uint64_t)st.st_size : 0;
}

/* name.(K-1) -> name.K ... name -> name.1; the oldest falls off the end. */
static void rotate(struct log *l) {
  char from[64], to[64];
  if (l->file >= 0) close(l->file);
  if (keep_files == 0) {
    unlinkat(io_dir, l->name, 0);
  } else {
    for (unsigned i = keep_files; i > 1; i--) {
      snprintf(from, sizeof from, "%s.%u", l->name, i - 1);
      snprintf(to, sizeof to, "%s.%u", l->name, i);
      renameat(io_dir, from, io_dir, to);
    }
    snprintf(to, sizeof to, "%s.1", l->name);
    renameat(io_dir, l->name, io_dir, to);
  }
  open_log(l);
}

static void write_all(int fd, const char *buf, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, buf, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return; /* disk full or gone: drop the output rather than block the app */
    }
    buf += w;
    n -= (size_t)w;
  }
}

/* Copies what the pipe holds; false at EOF. */
static int pump(struct log *l) {
  char buf[65536];
  ssize_t n = read(l->pipe, buf, sizeof buf);
  if (n < 0) return errno == EINTR || errno == EAGAIN;
  if (n == 0) return 0;
  size_t off = 0;
  while (off < (size_t)n) {
    if (l->size >= max_bytes) rotate(l);
    size_t room = (size_t)(max_bytes - l->size);
    size_t chunk = (size_t)n - off < room ? (size_t)n - off : room;
    if (l->file >= 0) write_all(l->file, buf + off, chunk);
    l->size += chunk;
    off += chunk;
  }
  return 1;
}

static void write_exit(int status) {
  char text[64];
  int len = WIFSIGNALED(status) ? snprintf(text, sizeof text, "{\"signal\":%d}\n", WTERMSIG(status))
                                : snprintf(text, sizeof text, "{\"status\":%d}\n", WEXITSTATUS(status));
  unlinkat(io_dir, "exit.json.tmp", 0);
  int fd = openat(io_dir, "exit.json.tmp", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return;
  write_all(fd, text, (size_t)len);
  close(fd);
  renameat(io_dir, "exit.json.tmp", io_dir, "exit.json");
}

/* Keep only CAP_KILL (to signal an app running as another user, and kill(-1)
 * at the end); the io directory belongs to our own uid, so writing there
 * needs no capability. */
static void drop_privileges(void) {
  for (int cap = 0; cap < 64; cap++)
    if (cap != CAP_KILL && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno == EINVAL) break;
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2] = {{0}};
  data[0].effective = data[0].permitted = 1u << CAP_KILL;
  syscall(SYS_capset, &header, data);
  prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}

int main(int argc, char **argv) {
  if (argc != 7) return 127;
  pid_t app = (pid_t)atoi(argv[1]);
  struct log logs[2] = {{atoi(argv[2]), -1, "stdout.log", 0}, {atoi(argv[3]), -1, "stderr.log", 0}};
  io_dir = atoi(argv[4]);
  max_bytes = strtoull(argv[5], NULL, 10);
  keep_files = (unsigned)atoi(argv[6]);
  if (max_bytes == 0) max_bytes = 1;

  /* Nothing in the container may read our fds (the io directory is on the host). */
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  drop_privileges();
  for (int i = 0; i < 2; i++) {
    fcntl(logs[i].pipe, F_SETFD, FD_CLOEXEC);
    open_log(&logs[i]);
  }
  fcntl(io_dir, F_SETFD, FD_CLOEXEC);

  /* Signals arrive blocked from the addon's child; read them all here. A pid
   * namespace's init only receives signals it handles or has blocked. */
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, NULL);
  int sfd = signalfd(-1, &all, SFD_CLOEXEC);
  if (sfd < 0) return 127;

  int app_status = 0, app_done = 0;
  for (;;) {
    if (app_done && logs[0].pipe < 0 && logs[1].pipe < 0) break;
    struct pollfd fds[3] = {{sfd, POLLIN, 0}, {logs[0].pipe, POLLIN, 0}, {logs[1].pipe, POLLIN, 0}};
    /* Once the app is gone everything else has been SIGKILLed: the pipes reach
     * EOF promptly; the timeout only guards against a stuck writer. */
    int ready = poll(fds, 3, app_done ? 2000 : -1);
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) break;
    for (int i = 0; i < 2; i++)
      if (logs[i].pipe >= 0 && (fds[i + 1].revents & (POLLIN | POLLHUP | POLLERR)) && !pump(&logs[i])) {
        close(logs[i].pipe);
        logs[i].pipe = -1;
      }
    if (fds[0].revents & POLLIN) {
      struct signalfd_siginfo si;
      if (read(sfd, &si, sizeof si) != sizeof si) continue;
      if (si.ssi_signo != SIGCHLD) {
        if (!app_done) kill(app, (int)si.ssi_signo);
        continue;
      }
      int status;
      pid_t p;
      while ((p = waitpid(-1, &status, WNOHANG)) > 0) {
        if (p == app && !app_done) {
          app_done = 1;
          app_status = status;
          kill(-1, SIGKILL); /* the rest of the container goes with the app */
        }
      }
    }
  }
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
  write_exit(app_status);
  return WIFSIGNALED(app_status) ? 128 + WTERMSIG(app_status) : WEXITSTATUS(app_status);
}
