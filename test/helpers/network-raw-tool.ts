/**
 * A small static program the network attack suites run inside containers (and in namespaces
 * they create), compiled on first use with the host's C compiler: busybox has no tool that
 * forges a router advertisement, and its ping (1.35) never tries ICMP datagram sockets.
 *
 * - `sockets`: tries AF_PACKET, AF_INET/SOCK_RAW and ICMP datagram sockets; prints
 *   `packet=ok raw=EPERM icmp-dgram=ok` style results.
 * - `ping <ipv4>`: one ICMP echo over an unprivileged datagram socket (what iputils and newer
 *   busybox ping do without CAP_NET_RAW); exit 0 on a reply within 2 s.
 * - `ra <ifname> <prefix>`: sends three IPv6 router advertisements for `<prefix>/64` (autonomous,
 *   on-link) from a forged link-local address to ff02::1, as whole Ethernet frames through an
 *   AF_PACKET socket, exactly as an attacker with CAP_NET_RAW would. The router lifetime is 0:
 *   a host that wrongly accepts the RA gains an address (what the suites look for) but no
 *   default route, so a regression cannot break the host's routing while the suite runs. It
 *   first waits (at most 5 s) for the link's operstate to be `up`: until then the kernel
 *   drops what is sent (no qdisc yet), and the attack would be a silent no-op.
 * - `sniff <ifname> <ms> <ready-file>`: counts the router advertisements that arrive on
 *   `<ifname>` (until 3 or `<ms>` pass), creating `<ready-file>` once it listens; prints
 *   `seen N`. Proves the forged frames really crossed the bridge.
 * @module
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SOURCE = String.raw`
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static const char* outcome(int fd) {
  if (fd >= 0) { close(fd); return "ok"; }
  return errno == EPERM ? "EPERM" : errno == EACCES ? "EACCES" : strerror(errno);
}

static int sockets(void) {
  const char* packet = outcome(socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL)));
  const char* raw = outcome(socket(AF_INET, SOCK_RAW, IPPROTO_ICMP));
  const char* dgram = outcome(socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP));
  printf("packet=%s raw=%s icmp-dgram=%s\n", packet, raw, dgram);
  return 0;
}

static int ping(const char* addr) {
  int s = socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
  if (s < 0) { printf("socket: %s\n", strerror(errno)); return 2; }
  struct sockaddr_in to = {0};
  to.sin_family = AF_INET;
  if (inet_pton(AF_INET, addr, &to.sin_addr) != 1) return 2;
  unsigned char echo[16] = {8, 0, 0, 0, 0, 0, 0, 1, 'b', 'e', 'r', 't', 'h'};
  if (sendto(s, echo, sizeof(echo), 0, (struct sockaddr*)&to, sizeof(to)) < 0) { printf("sendto: %s\n", strerror(errno)); return 2; }
  struct pollfd p = {s, POLLIN, 0};
  if (poll(&p, 1, 2000) != 1) { printf("no reply\n"); return 1; }
  unsigned char reply[64];
  ssize_t n = recv(s, reply, sizeof(reply), 0);
  if (n < 8 || reply[0] != 0) { printf("bad reply\n"); return 1; }
  printf("reply from %s\n", addr);
  return 0;
}

static unsigned short checksum(const unsigned char* data, size_t len, unsigned long sum) {
  for (size_t i = 0; i + 1 < len; i += 2) sum += (data[i] << 8) | data[i + 1];
  if (len & 1) sum += data[len - 1] << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (unsigned short)~sum;
}

static void wait_operstate_up(const char* ifname) {
  char path[128], state[16];
  snprintf(path, sizeof(path), "/sys/class/net/%s/operstate", ifname);
  for (int i = 0; i < 100; i++) {
    FILE* f = fopen(path, "r");
    int up = f && fgets(state, sizeof(state), f) && strncmp(state, "up", 2) == 0;
    if (f) fclose(f);
    if (up) return;
    usleep(50000);
  }
}

static int sniff(const char* ifname, int ms, const char* ready) {
  int s = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_IPV6));
  if (s < 0) { printf("socket(AF_PACKET): %s\n", strerror(errno)); return 2; }
  struct sockaddr_ll at = {0};
  at.sll_family = AF_PACKET;
  at.sll_protocol = htons(ETH_P_IPV6);
  at.sll_ifindex = if_nametoindex(ifname);
  if (bind(s, (struct sockaddr*)&at, sizeof(at)) < 0) { printf("bind: %s\n", strerror(errno)); return 2; }
  FILE* f = fopen(ready, "w");
  if (f) fclose(f);
  int seen = 0;
  for (int waited = 0; waited < ms && seen < 3; waited += 100) {
    struct pollfd p = {s, POLLIN, 0};
    if (poll(&p, 1, 100) != 1) continue;
    unsigned char frame[2048];
    ssize_t n = recv(s, frame, sizeof(frame), 0);
    if (n >= 14 + 40 + 1 && frame[14 + 6] == 58 && frame[14 + 40] == 134) seen++;
  }
  printf("seen %d\n", seen);
  return 0;
}

static int ra(const char* ifname, const char* prefix_text) {
  wait_operstate_up(ifname);
  int s = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_IPV6));
  if (s < 0) { printf("socket(AF_PACKET): %s\n", strerror(errno)); return 2; }
  struct ifreq ifr = {0};
  strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
  if (ioctl(s, SIOCGIFHWADDR, &ifr) < 0) { printf("SIOCGIFHWADDR: %s\n", strerror(errno)); return 2; }
  unsigned char mac[6];
  memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
  unsigned char prefix[16];
  if (inet_pton(AF_INET6, prefix_text, prefix) != 1) return 2;

  unsigned char icmp[16 + 8 + 32] = {0};
  icmp[0] = 134;                        /* router advertisement */
  icmp[4] = 64;                         /* cur hop limit; flags 0; router lifetime 0 */
  unsigned char* sll = icmp + 16;       /* source link-layer address option */
  sll[0] = 1; sll[1] = 1; memcpy(sll + 2, mac, 6);
  unsigned char* pi = icmp + 24;        /* prefix information option */
  pi[0] = 3; pi[1] = 4; pi[2] = 64; pi[3] = 0xc0;  /* /64, on-link + autonomous */
  pi[4] = 0x00; pi[5] = 0x01; pi[6] = 0x51; pi[7] = 0x80;   /* valid 86400 s */
  pi[8] = 0x00; pi[9] = 0x00; pi[10] = 0x38; pi[11] = 0x40; /* preferred 14400 s */
  memcpy(pi + 16, prefix, 16);

  unsigned char src[16] = {0xfe, 0x80};  /* fe80::<EUI-64 of the MAC> */
  src[8] = mac[0] ^ 2; src[9] = mac[1]; src[10] = mac[2]; src[11] = 0xff;
  src[12] = 0xfe; src[13] = mac[3]; src[14] = mac[4]; src[15] = mac[5];
  unsigned char dst[16] = {0xff, 0x02};
  dst[15] = 1;

  unsigned char pseudo[40 + sizeof(icmp)] = {0};
  memcpy(pseudo, src, 16);
  memcpy(pseudo + 16, dst, 16);
  pseudo[35] = sizeof(icmp);
  pseudo[39] = 58;
  memcpy(pseudo + 40, icmp, sizeof(icmp));
  unsigned short sum = checksum(pseudo, sizeof(pseudo), 0);
  icmp[2] = sum >> 8; icmp[3] = sum & 0xff;

  unsigned char frame[14 + 40 + sizeof(icmp)] = {0x33, 0x33, 0, 0, 0, 1};
  memcpy(frame + 6, mac, 6);
  frame[12] = 0x86; frame[13] = 0xdd;
  unsigned char* ip6 = frame + 14;
  ip6[0] = 0x60;
  ip6[5] = sizeof(icmp);
  ip6[6] = 58;    /* ICMPv6 */
  ip6[7] = 255;   /* hop limit: receivers drop neighbour discovery with any other */
  memcpy(ip6 + 8, src, 16);
  memcpy(ip6 + 24, dst, 16);
  memcpy(ip6 + 40, icmp, sizeof(icmp));

  struct sockaddr_ll to = {0};
  to.sll_family = AF_PACKET;
  to.sll_ifindex = if_nametoindex(ifname);
  to.sll_halen = 6;
  memcpy(to.sll_addr, frame, 6);
  for (int i = 0; i < 3; i++) {
    if (sendto(s, frame, sizeof(frame), 0, (struct sockaddr*)&to, sizeof(to)) != (ssize_t)sizeof(frame)) {
      printf("sendto: %s\n", strerror(errno));
      return 2;
    }
    usleep(50000);
  }
  printf("sent 3 router advertisements for %s/64 on %s\n", prefix_text, ifname);
  return 0;
}

int main(int argc, char** argv) {
  if (argc == 2 && strcmp(argv[1], "sockets") == 0) return sockets();
  if (argc == 3 && strcmp(argv[1], "ping") == 0) return ping(argv[2]);
  if (argc == 4 && strcmp(argv[1], "ra") == 0) return ra(argv[2], argv[3]);
  if (argc == 5 && strcmp(argv[1], "sniff") == 0) return sniff(argv[2], atoi(argv[3]), argv[4]);
  fprintf(stderr, "usage: rawnet sockets | ping <ipv4> | ra <ifname> <prefix> | sniff <ifname> <ms> <ready-file>\n");
  return 2;
}
`;

/** Why the tool cannot be built here, or false. */
export function rawToolSkipReason(): string | false {
  return spawnSync('cc', ['--version'], { stdio: 'ignore' }).status === 0 ? false : 'needs a C compiler (cc) with static libc (apt-get install gcc libc6-dev)';
}

let dir: string | undefined;

/**
 * A directory holding the static `rawnet` binary (bind it into a container read-only and run
 * `/<target>/rawnet`). Built once per process, removed at exit.
 */
export function rawToolDir(): string {
  if (dir) return dir;
  const d = mkdtempSync(join(tmpdir(), 'berth-rawnet-'));
  process.once('exit', () => rmSync(d, { recursive: true, force: true }));
  // Non-root users and user-namespaced containers run it too.
  chmodSync(d, 0o755);
  writeFileSync(join(d, 'rawnet.c'), SOURCE);
  execFileSync('cc', ['-static', '-O2', '-o', join(d, 'rawnet'), join(d, 'rawnet.c')], { stdio: ['ignore', 'ignore', 'inherit'] });
  dir = d;
  return d;
}
