#include "dns-handover.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "dns-protocol.h"

namespace berth {
namespace {

void Fail(NativeError* e, int err, const char* syscall, const std::string& path) {
  e->err = err;
  e->syscall = syscall;
  e->path = path;
}

struct SocketJob {
  int netns_fd;
  int fd = -1;
  int tcp = -1;
  int err = 0;
  const char* syscall = "";
};

// On a thread made for it: setns() changes only the calling thread, and this one exits after,
// so no thread of Node or of the monitor ever stays in the container's namespace.
void* MakeSocketIn(void* arg) {
  auto* job = static_cast<SocketJob*>(arg);
  if (setns(job->netns_fd, CLONE_NEWNET) < 0) {
    job->err = errno;
    job->syscall = "setns(CLONE_NEWNET)";
    return nullptr;
  }
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    job->err = errno;
    job->syscall = "socket";
    return nullptr;
  }
  int one = 1;
  // The child brings loopback up only after "go": FREEBIND lets the bind happen before
  // 127.0.0.11 is a local address, and the socket receives as soon as it is.
  setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(kDnsListenPort);
  inet_pton(AF_INET, kDnsListenAddress, &a.sin_addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) < 0) {
    job->err = errno;
    job->syscall = "bind";
    close(fd);
    return nullptr;
  }
  // TCP on the same address (RFC 7766: what a client retries with after a truncated answer).
  int tcp = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (tcp < 0) {
    job->err = errno;
    job->syscall = "socket(SOCK_STREAM)";
    close(fd);
    return nullptr;
  }
  setsockopt(tcp, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one));
  if (bind(tcp, reinterpret_cast<sockaddr*>(&a), sizeof(a)) < 0 || listen(tcp, 16) < 0) {
    job->err = errno;
    job->syscall = "bind(SOCK_STREAM)";
    close(tcp);
    close(fd);
    return nullptr;
  }
  job->fd = fd;
  job->tcp = tcp;
  return nullptr;
}

// One hand-over attempt with the first `nfds` of `fds`. `*refused`: the resolver closed
// without an answer (what one of an older berth does with descriptors it does not expect).
bool SendHandOver(const std::string& control, const std::string& message, const int* fds, int nfds, bool* refused, NativeError* e) {
  *refused = false;
  const std::string resolver = "resolver @" + control;
  int conn = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  bool ok = conn >= 0;
  if (!ok) Fail(e, errno, "socket", resolver);
  if (ok) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    size_t n = control.size() < sizeof(addr.sun_path) - 1 ? control.size() : sizeof(addr.sun_path) - 1;
    memcpy(addr.sun_path + 1, control.data(), n);
    socklen_t alen = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + n);
    timeval tv{5, 0};
    setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(conn, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(conn, reinterpret_cast<sockaddr*>(&addr), alen) != 0) {
      ok = false;
      Fail(e, errno, "connect", resolver);
      e->message = "the network's DNS resolver is not running";
    }
  }
  if (ok) {
    alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int) * kDnsHandOverFds)] = {};
    iovec iov{const_cast<char*>(message.data()), message.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * static_cast<size_t>(nfds));
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * static_cast<size_t>(nfds));
    memcpy(CMSG_DATA(c), fds, sizeof(int) * static_cast<size_t>(nfds));
    char ack = 0;
    if (sendmsg(conn, &msg, MSG_NOSIGNAL) < 0) {
      ok = false;
      Fail(e, errno, "sendmsg", resolver);
    } else if ((errno = 0, recv(conn, &ack, 1, 0)) != 1 || ack != 'k') {
      ok = false;
      *refused = errno == 0;  // closed without a word (not a timeout)
      Fail(e, errno ? errno : EPROTO, "recv", resolver);
      e->message = "the network's DNS resolver refused the container";
    }
  }
  if (conn >= 0) close(conn);
  return ok;
}

}  // namespace

bool DnsHandOver(int netns_fd, int pid, const std::string& control, const std::string& message, NativeError* e) {
  const std::string where = std::string(kDnsListenAddress) + ":53 in the container's network namespace";
  if (message.size() > kDnsHandOverMax) {
    Fail(e, EINVAL, "sendmsg", "dns hand-over");
    e->message = "hand-over message too long";
    return false;
  }
  SocketJob job{netns_fd};
  pthread_t thread;
  int err = pthread_create(&thread, nullptr, MakeSocketIn, &job);
  if (err != 0) {
    Fail(e, err, "pthread_create", where);
    return false;
  }
  pthread_join(thread, nullptr);
  if (job.fd < 0) {
    Fail(e, job.err, job.syscall, where);
    return false;
  }
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) {
    Fail(e, errno, "pidfd_open", std::to_string(pid));
    close(job.fd);
    close(job.tcp);
    return false;
  }
  int fds[kDnsHandOverFds] = {job.fd, pidfd, job.tcp};
  bool refused = false;
  bool ok = SendHandOver(control, message, fds, kDnsHandOverFds, &refused, e);
  if (!ok && refused) {
    // A resolver started by an older berth (still serving its network's detached containers)
    // takes exactly two descriptors and closes on three: hand it the UDP socket alone.
    *e = NativeError{};
    ok = SendHandOver(control, message, fds, 2, &refused, e);
  }
  close(job.fd);
  close(job.tcp);
  close(pidfd);
  return ok;
}

int DnsUpdate(const std::string& control, const std::string& message, NativeError* e) {
  const std::string resolver = "resolver @" + control;
  if (message.size() > kDnsHandOverMax) {
    Fail(e, EINVAL, "sendmsg", resolver);
    e->message = "update message too long";
    return -1;
  }
  int conn = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (conn < 0) {
    Fail(e, errno, "socket", resolver);
    return -1;
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  size_t n = control.size() < sizeof(addr.sun_path) - 1 ? control.size() : sizeof(addr.sun_path) - 1;
  memcpy(addr.sun_path + 1, control.data(), n);
  socklen_t alen = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + n);
  timeval tv{2, 0};
  setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(conn, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  int result = -1;
  char ack = 0;
  if (connect(conn, reinterpret_cast<sockaddr*>(&addr), alen) != 0) {
    // No resolver for that network (it exited with its last member): nobody to tell.
    if (errno == ECONNREFUSED || errno == ENOENT) result = 0;
    else Fail(e, errno, "connect", resolver);
  } else if (send(conn, message.data(), message.size(), MSG_NOSIGNAL) < 0) {
    Fail(e, errno, "send", resolver);
  } else if ((errno = 0, recv(conn, &ack, 1, 0)) != 1) {
    Fail(e, errno ? errno : EPROTO, "recv", resolver);
    e->message = "the network's DNS resolver did not answer the update";
  } else {
    result = ack == 'k' ? 1 : 0;
  }
  close(conn);
  return result;
}

}  // namespace berth
