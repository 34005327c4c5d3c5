#include "monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "spawn.h"
#include "spec-codec.h"

namespace berth {
namespace {

// A record longer than this is split, as Docker's json-file driver does.
constexpr size_t kMaxRecord = 16 * 1024;

struct Options {
  std::string state_dir;
  long long log_max_size = 10 << 20;
  int log_max_files = 3;
  std::vector<std::string> cgroups;
  std::string oom_file;  // memory.oom_control (v1) or memory.events (v2): "oom_kill N"
};

void AppendJsonString(std::string* out, const char* data, size_t n) {
  out->push_back('"');
  for (size_t i = 0; i < n; ++i) {
    unsigned char c = static_cast<unsigned char>(data[i]);
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      default:
        if (c < 0x20) {
          char buf[8];
          snprintf(buf, sizeof(buf), "\\u%04x", c);
          out->append(buf);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

std::string Rfc3339Nano() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t;
  gmtime_r(&ts.tv_sec, &t);
  char buf[64];
  snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", t.tm_year + 1900, t.tm_mon + 1, t.tm_mday,
           t.tm_hour, t.tm_min, t.tm_sec, ts.tv_nsec);
  return buf;
}

bool WriteAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// Docker's json-file log: one {"log","stream","time"} object per line, rotated by size.
class LogWriter {
 public:
  explicit LogWriter(const Options& o) : dir_(o.state_dir), max_size_(o.log_max_size), max_files_(o.log_max_files) {
    Open();
  }
  ~LogWriter() {
    if (fd_ >= 0) {
      fsync(fd_);
      close(fd_);
    }
  }

  // Splits a chunk into lines; a partial line waits for more unless it reached kMaxRecord.
  void Write(int stream, const char* data, size_t n) {
    std::string& pending = pending_[stream];
    pending.append(data, n);
    size_t start = 0;
    for (;;) {
      size_t nl = pending.find('\n', start);
      if (nl == std::string::npos) break;
      while (nl + 1 - start > kMaxRecord) {
        Record(stream, pending.data() + start, kMaxRecord);
        start += kMaxRecord;
      }
      Record(stream, pending.data() + start, nl + 1 - start);
      start = nl + 1;
    }
    while (pending.size() - start >= kMaxRecord) {
      Record(stream, pending.data() + start, kMaxRecord);
      start += kMaxRecord;
    }
    pending.erase(0, start);
  }

  void Flush() {
    for (int s = 0; s < 2; ++s) {
      if (!pending_[s].empty()) Record(s, pending_[s].data(), pending_[s].size());
      pending_[s].clear();
    }
  }

 private:
  void Open() {
    std::string path = dir_ + "/container.log";
    fd_ = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    struct stat st;
    size_ = (fd_ >= 0 && fstat(fd_, &st) == 0) ? st.st_size : 0;
  }

  void Rotate() {
    if (fd_ >= 0) close(fd_);
    std::string base = dir_ + "/container.log";
    for (int i = max_files_ - 1; i >= 1; --i) {
      std::string from = i == 1 ? base : base + "." + std::to_string(i - 1);
      std::string to = base + "." + std::to_string(i);
      rename(from.c_str(), to.c_str());
    }
    if (max_files_ <= 1) unlink(base.c_str());
    Open();
  }

  void Record(int stream, const char* data, size_t n) {
    line_.clear();
    line_.append("{\"log\":");
    AppendJsonString(&line_, data, n);
    line_.append(stream == 0 ? ",\"stream\":\"stdout\",\"time\":\"" : ",\"stream\":\"stderr\",\"time\":\"");
    line_.append(Rfc3339Nano());
    line_.append("\"}\n");
    if (max_size_ > 0 && size_ > 0 && size_ + static_cast<long long>(line_.size()) > max_size_) Rotate();
    if (fd_ >= 0 && WriteAll(fd_, line_.data(), line_.size())) size_ += static_cast<long long>(line_.size());
  }

  std::string dir_;
  long long max_size_;
  int max_files_;
  int fd_ = -1;
  long long size_ = 0;
  std::string pending_[2];
  std::string line_;
};

bool ParseArgs(int argc, char** argv, Options* o) {
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) return false;
    const char* v = argv[++i];
    if (a == "--state-dir") o->state_dir = v;
    else if (a == "--log-max-size") o->log_max_size = atoll(v);
    else if (a == "--log-max-files") o->log_max_files = atoi(v);
    else if (a == "--cgroup") o->cgroups.push_back(v);
    else if (a == "--oom-file") o->oom_file = v;
    else return false;
  }
  return !o->state_dir.empty();
}

std::string ReadAll(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

void Status(const std::string& json) {
  std::string line = json + "\n";
  WriteAll(4, line.data(), line.size());
  close(4);
}

std::string ErrorJson(const NativeError& e) {
  std::string out = "{\"code\":";
  const char* name = strerrorname_np(e.err);
  AppendJsonString(&out, name ? name : "EUNKNOWN", strlen(name ? name : "EUNKNOWN"));
  out += ",\"errno\":" + std::to_string(e.err) + ",\"syscall\":";
  AppendJsonString(&out, e.syscall.data(), e.syscall.size());
  out += ",\"path\":";
  AppendJsonString(&out, e.path.data(), e.path.size());
  out += ",\"message\":";
  AppendJsonString(&out, e.message.data(), e.message.size());
  out += "}";
  return out;
}

long OomKills(const std::string& file) {
  if (file.empty()) return 0;
  int fd = open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  std::string text = ReadAll(fd);
  close(fd);
  size_t at = text.find("oom_kill ");
  return at == std::string::npos ? 0 : atol(text.c_str() + at + 9);
}

void RemoveCgroups(const std::vector<std::string>& dirs) {
  for (const auto& d : dirs) {
    // A cgroup is released asynchronously after its last task is reaped: retry EBUSY briefly.
    for (int attempt = 0; attempt < 200; ++attempt) {
      if (rmdir(d.c_str()) == 0 || errno == ENOENT || errno != EBUSY) break;
      timespec pause{0, 5 * 1000 * 1000};
      nanosleep(&pause, nullptr);
    }
  }
}

void WriteExit(const Options& o, const siginfo_t& info, bool oom) {
  std::string json = "{";
  if (info.si_code == CLD_EXITED) {
    json += "\"exitCode\":" + std::to_string(info.si_status) + ",\"signal\":null";
  } else {
    const char* abbrev = sigabbrev_np(info.si_status);
    json += "\"exitCode\":" + std::to_string(128 + info.si_status) + ",\"signal\":\"SIG" +
            std::string(abbrev ? abbrev : "UNKNOWN") + "\"";
  }
  json += std::string(",\"oomKilled\":") + (oom ? "true" : "false") + ",\"finishedAt\":\"" + Rfc3339Nano() + "\"}\n";
  std::string tmp = o.state_dir + "/.exit.json.tmp";
  std::string final_path = o.state_dir + "/exit.json";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) return;
  WriteAll(fd, json.data(), json.size());
  fsync(fd);
  close(fd);
  rename(tmp.c_str(), final_path.c_str());
  int dir = open(o.state_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    fsync(dir);
    close(dir);
  }
}

}  // namespace

int RunMonitor(int argc, char** argv) {
  Options o;
  if (!ParseArgs(argc, argv, &o)) {
    Status("{\"error\":{\"code\":\"EINVAL\",\"errno\":22,\"syscall\":\"monitor\",\"path\":\"\",\"message\":\"bad arguments\"}}");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  setsid();

  std::string encoded = ReadAll(3);
  close(3);
  LaunchSpec spec;
  std::string decode_error;
  if (!DecodeLaunchSpec(encoded.data(), encoded.size(), &spec, &decode_error)) {
    std::string out = "{\"error\":{\"code\":\"EINVAL\",\"errno\":22,\"syscall\":\"decode\",\"path\":\"\",\"message\":";
    AppendJsonString(&out, decode_error.data(), decode_error.size());
    Status(out + "}}");
    return 2;
  }
  spec.die_with_parent = false;  // the whole point: outlive the Node process
  encoded.clear();
  encoded.shrink_to_fit();

  NativeError error;
  SpawnResult result = Spawn(spec, &error);
  // The child joined these before exec; holding them would pin the namespaces (and the
  // init helper's memfd) for as long as this monitor lives.
  if (spec.netns_fd >= 0) close(spec.netns_fd);
  if (spec.exec_fd >= 0) close(spec.exec_fd);
  if (result.exec_failed) {
    Status("{\"execFailed\":" + ErrorJson(error) + ",\"notFound\":" +
           (error.not_found ? "true" : "false") + "}");
    RemoveCgroups(o.cgroups);
    return 0;
  }
  if (!error.ok()) {
    Status("{\"error\":" + ErrorJson(error) + "}");
    RemoveCgroups(o.cgroups);
    return 1;
  }
  Status("{\"pid\":" + std::to_string(result.pid) + ",\"monitorPid\":" + std::to_string(getpid()) + "}");
  // The spec (env, seccomp program, mount plan) is no longer needed: give the memory back, so
  // that an idle detached container costs only the monitor's few pages.
  spec = LaunchSpec();
  malloc_trim(0);

  int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull >= 0) {
    dup2(devnull, 0);
    dup2(devnull, 1);
    dup2(devnull, 2);
    close(devnull);
  }
  if (chdir("/") != 0) {
    // Nothing to report to: stdio is gone. The state dir paths are absolute.
  }

  LogWriter log(o);
  int out_fd = result.stdio[1];
  int err_fd = result.stdio[2];
  if (result.tty_master >= 0) out_fd = result.tty_master;
  if (result.stdio[0] >= 0) close(result.stdio[0]);
  bool exited = false;
  char buf[65536];
  while (out_fd >= 0 || err_fd >= 0 || !exited) {
    pollfd fds[3];
    int n = 0;
    int idx_out = -1, idx_err = -1, idx_pid = -1;
    if (out_fd >= 0) { idx_out = n; fds[n++] = {out_fd, POLLIN, 0}; }
    if (err_fd >= 0) { idx_err = n; fds[n++] = {err_fd, POLLIN, 0}; }
    if (!exited) { idx_pid = n; fds[n++] = {result.pidfd, POLLIN, 0}; }
    if (poll(fds, static_cast<nfds_t>(n), -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    auto drain = [&](int idx, int* fd, int stream) {
      if (idx < 0 || !(fds[idx].revents & (POLLIN | POLLHUP | POLLERR))) return;
      ssize_t r = read(*fd, buf, sizeof(buf));
      if (r > 0) {
        log.Write(stream, buf, static_cast<size_t>(r));
      } else if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN)) {
        // EOF, or EIO from a tty master once the container's side is gone.
        close(*fd);
        *fd = -1;
      }
    };
    drain(idx_out, &out_fd, 0);
    drain(idx_err, &err_fd, 1);
    if (idx_pid >= 0 && (fds[idx_pid].revents & POLLIN)) exited = true;
  }
  log.Flush();
  siginfo_t info{};
  while (waitid(static_cast<idtype_t>(P_PIDFD), result.pidfd, &info, WEXITED) < 0 && errno == EINTR) {
  }
  close(result.pidfd);
  bool oom = OomKills(o.oom_file) > 0;
  RemoveCgroups(o.cgroups);
  WriteExit(o, info, oom);
  return 0;
}

}  // namespace berth
