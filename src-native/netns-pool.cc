#include "netns-pool.h"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

namespace berth {
namespace {

constexpr size_t kPoolSize = 4;

// While the pool holds a descriptor it lives at or above this number; the one handed out is
// moved back down. So an fd of a network namespace below it is never the pool's: a test that
// checks for leaked fds recognises the pool's own by place and kind (test/helpers/leaks.ts)
// without asking the pool, and a leaked namespace fd of a launch still shows. Where the fd
// limit is lower, the fd stays where open() put it (the pool works; only that check is noisier).
constexpr int kHeldFdFloor = 4096;

int MoveTo(int fd, int floor) {
  int moved = fcntl(fd, F_DUPFD_CLOEXEC, floor);
  if (moved < 0) return fd;
  close(fd);
  return moved;
}

struct Pool {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<int> ready;
  std::thread worker;
  bool started = false;
  bool stopping = false;
  bool broken = false;  // unshare failed once (no permission): stop trying
  bool enabled = false;
};

Pool& pool() {
  static Pool* p = new Pool();  // never destroyed: the worker may outlive static destructors
  return *p;
}

bool LoopbackUp() {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return false;
  ifreq req{};
  strncpy(req.ifr_name, "lo", IFNAMSIZ - 1);
  bool ok = ioctl(s, SIOCGIFFLAGS, &req) == 0;
  if (ok) {
    req.ifr_flags = static_cast<short>(req.ifr_flags | IFF_UP | IFF_RUNNING);
    ok = ioctl(s, SIOCSIFFLAGS, &req) == 0;
  }
  close(s);
  return ok;
}

// Runs on the pool's own thread: unshare(CLONE_NEWNET) moves only this thread into the new
// namespace, so it can configure loopback there and then return to where it came from.
int MakeNetns(int home) {
  if (unshare(CLONE_NEWNET) != 0) return -1;
  int fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  bool ok = fd >= 0 && LoopbackUp();
  if (setns(home, CLONE_NEWNET) != 0) {
    // Cannot go home: this thread stays in a namespace nobody uses; stop making more.
    if (fd >= 0) close(fd);
    return -2;
  }
  if (!ok) {
    if (fd >= 0) close(fd);
    return -1;
  }
  return MoveTo(fd, kHeldFdFloor);
}

void Refill() {
  Pool& p = pool();
  int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (home >= 0) home = MoveTo(home, kHeldFdFloor);
  std::unique_lock<std::mutex> lock(p.mu);
  while (!p.stopping) {
    if (p.ready.size() >= kPoolSize || home < 0) {
      p.cv.wait(lock);
      continue;
    }
    lock.unlock();
    int fd = MakeNetns(home);
    lock.lock();
    if (fd < 0) {
      p.broken = true;
      break;
    }
    p.ready.push_back(fd);
  }
  if (home >= 0) close(home);
}

}  // namespace

void EnableNetnsPool() {
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mu);
  p.enabled = true;
}

int TakePooledNetns() {
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mu);
  if (!p.enabled || p.broken || p.stopping) return -1;
  if (!p.started) {
    p.started = true;
    p.worker = std::thread(Refill);
    return -1;
  }
  if (p.ready.empty()) return -1;
  int fd = p.ready.front();
  p.ready.pop_front();
  p.cv.notify_one();
  return MoveTo(fd, 0);
}

void StopNetnsPool() {
  Pool& p = pool();
  {
    std::lock_guard<std::mutex> lock(p.mu);
    if (!p.started || p.stopping) return;
    p.stopping = true;
    p.cv.notify_all();
  }
  if (p.worker.joinable()) p.worker.join();
  std::lock_guard<std::mutex> lock(p.mu);
  for (int fd : p.ready) close(fd);
  p.ready.clear();
}

}  // namespace berth
