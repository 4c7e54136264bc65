/*
 * A hostile app for the dumpable-window test: from its first instruction it
 * tries to open PID 1's descriptors through /proc/1/fd/*. The app is exec'd
 * just before the container's init becomes berth-init, so it is already
 * spinning when that exec happens; it stops a while after /proc/1/comm says
 * berth-init. Through a directory fd it gets, it plants a file: the io
 * directory is on the host. Prints what it opened.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int init_is_berth_init(void) {
  char comm[32] = {0};
  int fd = open("/proc/1/comm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, comm, sizeof comm - 1);
  close(fd);
  return n > 0 && strncmp(comm, "berth-init", 10) == 0;
}

/* Lists /proc/1/fd (which needs the same access as opening an entry) and
 * tries every descriptor as a directory; 1 if one opened. */
static int try_fds(void) {
  DIR *d = opendir("/proc/1/fd");
  if (!d) return 0;
  struct dirent *e;
  char path[300];
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "/proc/1/fd/%s", e->d_name);
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) continue;
    int planted = openat(fd, "planted-by-app", O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    printf("opened %s%s\n", path, planted >= 0 ? " and planted a file in it" : "");
    closedir(d);
    return 1;
  }
  closedir(d);
  return 0;
}

int main(void) {
  long seen = -1;
  for (long round = 0; round < 10000000; round++) {
    if (try_fds()) return 0;
    if (seen < 0 && round % 8 == 0 && init_is_berth_init()) seen = round;
    if (seen >= 0 && round - seen > 2000) return 1;
  }
  return 1;
}
