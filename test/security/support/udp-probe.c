// What a tenant with CAP_NET_RAW can send, and a listener to see what arrives.
//   udp-probe send SRC DST PORT MESSAGE   one UDP datagram with any source
//                                          address (a raw IPv4 socket: the
//                                          header is ours, the source forged)
//   udp-probe recv ADDR PORT SECONDS      prints "FROM MESSAGE" per datagram
//                                          received on ADDR:PORT for SECONDS
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int send_forged(const char *src, const char *dst, int port, const char *msg) {
  int fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);  // IPPROTO_RAW implies IP_HDRINCL
  if (fd < 0) {
    printf("socket: %s\n", strerror(errno));
    return 1;
  }
  size_t len = strlen(msg);
  unsigned char packet[1500];
  if (len > sizeof packet - sizeof(struct iphdr) - sizeof(struct udphdr)) return 1;
  memset(packet, 0, sizeof packet);
  struct iphdr *ip = (struct iphdr *)packet;
  struct udphdr *udp = (struct udphdr *)(packet + sizeof *ip);
  ip->version = 4;
  ip->ihl = 5;
  ip->ttl = 64;
  ip->protocol = IPPROTO_UDP;
  ip->tot_len = htons(sizeof *ip + sizeof *udp + len);  // the kernel fills in the checksum and id
  if (inet_pton(AF_INET, src, &ip->saddr) != 1 || inet_pton(AF_INET, dst, &ip->daddr) != 1) return 1;
  udp->source = htons(40000);
  udp->dest = htons(port);
  udp->len = htons(sizeof *udp + len);
  udp->check = 0;  // optional over IPv4
  memcpy(packet + sizeof *ip + sizeof *udp, msg, len);
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_addr.s_addr = ip->daddr};
  if (sendto(fd, packet, sizeof *ip + sizeof *udp + len, 0, (struct sockaddr *)&to, sizeof to) < 0) {
    printf("sendto: %s\n", strerror(errno));
    return 1;
  }
  printf("sent\n");
  return 0;
}

static int receive(const char *addr, int port, int seconds) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in at = {.sin_family = AF_INET, .sin_port = htons(port)};
  if (fd < 0 || inet_pton(AF_INET, addr, &at.sin_addr) != 1 || bind(fd, (struct sockaddr *)&at, sizeof at) < 0) {
    printf("bind: %s\n", strerror(errno));
    return 1;
  }
  printf("listening\n");
  fflush(stdout);
  time_t end = time(NULL) + seconds;
  struct timeval tick = {.tv_sec = 0, .tv_usec = 200000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tick, sizeof tick);
  while (time(NULL) < end) {
    char buf[1500];
    struct sockaddr_in from;
    socklen_t fromlen = sizeof from;
    ssize_t n = recvfrom(fd, buf, sizeof buf - 1, 0, (struct sockaddr *)&from, &fromlen);
    if (n < 0) continue;
    buf[n] = 0;
    char text[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &from.sin_addr, text, sizeof text);
    printf("%s %s\n", text, buf);
    fflush(stdout);
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 6 && strcmp(argv[1], "send") == 0) return send_forged(argv[2], argv[3], atoi(argv[4]), argv[5]);
  if (argc == 5 && strcmp(argv[1], "recv") == 0) return receive(argv[2], atoi(argv[3]), atoi(argv[4]));
  fprintf(stderr, "usage: udp-probe send SRC DST PORT MESSAGE | recv ADDR PORT SECONDS\n");
  return 2;
}
