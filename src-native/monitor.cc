#include "monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <deque>
#include <string>
#include <vector>

#include "exec-plan.h"
#include "monitor-io.h"
#include "monitor-journal.h"
#include "monitor-log.h"
#include "monitor-probe.h"
#include "monitor-usermode.h"
#include "netlink.h"
#include "spawn.h"
#include "spec-codec.h"

namespace berth {
namespace {

// Docker's restart manager (moby restartmanager), mirrored from lib/containers/restart-policy.ts.
constexpr int64_t kBackoffInitialMs = 100;
constexpr int64_t kBackoffMaxMs = 60 * 1000;
constexpr int64_t kBackoffResetAfterMs = 10 * 1000;
constexpr size_t kHealthLogEntries = 5;

constexpr int kSpecFd = 3;
constexpr int kStatusFd = 4;
constexpr int kProbeSpecFd = 7;
constexpr int kExecHelperFd = 8;

struct Options {
  std::string state_dir;
  long long log_max_size = 10 << 20;
  int log_max_files = 3;
  std::vector<std::string> cgroups;
  std::string oom_file;  // memory.oom_control (v1) or memory.events (v2): "oom_kill N"
  std::string restart = "no";
  int max_retries = 0;
  int retries = 0;  // policy restarts since the user's last start
  bool health = false;
  long long interval_ms = 30000, timeout_ms = 30000, start_period_ms = 0, start_interval_ms = 5000;
  int health_retries = 3;
  bool auto_remove = false;
  std::string journal, id, name, attributes = "{}";
  UserModeStackPlan net;  // rootless: the run's user-mode network stack
};

bool ParseArgs(int argc, char** argv, Options* o) {
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--auto-remove") {
      o->auto_remove = true;
      continue;
    }
    if (i + 1 >= argc) return false;
    const char* v = argv[++i];
    if (a == "--state-dir") o->state_dir = v;
    else if (a == "--log-max-size") o->log_max_size = atoll(v);
    else if (a == "--log-max-files") o->log_max_files = atoi(v);
    else if (a == "--cgroup") o->cgroups.push_back(v);
    else if (a == "--oom-file") o->oom_file = v;
    else if (a == "--restart") o->restart = v;
    else if (a == "--max-retries") o->max_retries = atoi(v);
    else if (a == "--retries") o->retries = atoi(v);
    else if (a == "--health-interval") o->health = true, o->interval_ms = atoll(v);
    else if (a == "--health-timeout") o->timeout_ms = atoll(v);
    else if (a == "--health-start-period") o->start_period_ms = atoll(v);
    else if (a == "--health-start-interval") o->start_interval_ms = atoll(v);
    else if (a == "--health-retries") o->health_retries = atoi(v);
    else if (a == "--journal") o->journal = v;
    else if (a == "--id") o->id = v;
    else if (a == "--name") o->name = v;
    else if (a == "--event-attributes") o->attributes = v;
    else if (a == "--net-stack") o->net.kind = v;
    else if (a == "--net-scratch") o->net.scratch = v;
    else if (a == "--net-arg") o->net.argv.push_back(v);
    else if (a == "--net-hostfwd") o->net.hostfwd.push_back(std::string(v) + "\n");
    else return false;
  }
  if (o->restart != "no" && o->restart != "always" && o->restart != "unless-stopped" && o->restart != "on-failure") return false;
  if (!o->net.kind.empty() && (o->net.scratch.empty() || o->net.argv.empty())) return false;
  if (o->health && (o->interval_ms < 1 || o->timeout_ms < 1 || o->start_interval_ms < 1 || o->health_retries < 1)) return false;
  return !o->state_dir.empty();
}

void Status(const std::string& json) {
  std::string line = json + "\n";
  WriteAll(kStatusFd, line.data(), line.size());
  close(kStatusFd);
}

std::string ErrorJson(const NativeError& e) {
  std::string out = "{\"code\":";
  const char* name = strerrorname_np(e.err);
  AppendJsonString(&out, name ? name : "EUNKNOWN", strlen(name ? name : "EUNKNOWN"));
  out += ",\"errno\":" + std::to_string(e.err) + ",\"syscall\":";
  AppendJsonString(&out, e.syscall);
  out += ",\"path\":";
  AppendJsonString(&out, e.path);
  out += ",\"message\":";
  AppendJsonString(&out, e.message);
  out += "}";
  return out;
}

std::string ReadFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  std::string text = ReadAll(fd);
  close(fd);
  return text;
}

long OomKills(const std::string& file) {
  if (file.empty()) return 0;
  std::string text = ReadFile(file);
  size_t at = text.find("oom_kill ");
  return at == std::string::npos ? 0 : atol(text.c_str() + at + 9);
}

// Paused by `pause()` (cgroup freezer): a probe would freeze with it; Docker skips probes then.
bool Frozen(const std::vector<std::string>& dirs) {
  for (const auto& d : dirs) {
    std::string v1 = ReadFile(d + "/freezer.state");
    if (v1.find("FROZEN") != std::string::npos || v1.find("FREEZING") != std::string::npos) return true;
    if (ReadFile(d + "/cgroup.freeze").compare(0, 1, "1") == 0) return true;
  }
  return false;
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

int RemoveEntry(const char* path, const struct stat*, int type, struct FTW*) {
  if (type == FTW_DP) rmdir(path);
  else unlink(path);
  return 0;
}

// autoRemove: the files only the container used. The container is dead (its pid namespace gone
// with PID 1), so nothing renames entries under this walk; FTW_PHYS never follows a symlink the
// container left, FTW_MOUNT never crosses into a mount.
void RemoveContainerFiles(const std::string& dir) {
  for (const char* sub : {"/upper", "/work"}) {
    std::string path = dir + sub;
    nftw(path.c_str(), RemoveEntry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
  }
  std::string log = dir + "/container.log";
  unlink(log.c_str());
  for (int i = 1; i < 100; ++i) {
    std::string rotated = log + "." + std::to_string(i);
    if (unlink(rotated.c_str()) != 0 && errno == ENOENT) break;
  }
}

struct HealthEntry {
  std::string start, end;
  int exit_code;
  std::string output;
};

struct Health {
  const char* status = "starting";
  int failing_streak = 0;
  std::deque<HealthEntry> log;
};

struct ExitState {
  int exit_code = 0;
  std::string signal;  // "" or "SIGKILL"
  bool oom = false;
  std::string finished_at;
};

class Monitor {
 public:
  explicit Monitor(Options o) : o_(std::move(o)), journal_(o_.journal, o_.id, o_.name, o_.attributes) {}

  int Run();

 private:
  bool Restartable() const { return o_.restart != "no"; }
  bool ShouldRestart(int exit_code) const;
  bool Decode(LaunchSpec* spec, std::string* why);
  bool PrepareProbes(std::string* why);
  bool Launch(bool first, std::string* why, bool* exec_failed, int* exec_code);
  void Supervise(LogWriter* log);
  void ApplyProbe(int exit_code, std::string output, const std::string& start);
  void ScheduleProbe();
  bool Backoff(int64_t ms);
  void WriteRun(const char* status);
  void Finish();

  Options o_;
  EventJournal journal_;
  int signal_fd_ = -1;
  int spec_fd_ = -1;  // memfd holding the encoded spec, for restarts
  ProbeSetup probe_setup_;
  ProbeRun probe_;
  int64_t probe_deadline_ = 0;
  int64_t next_probe_ = 0;
  std::string probe_start_;

  // The current run.
  int pid_ = -1;
  int pidfd_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  std::string pid_start_time_;
  std::string started_at_;
  int64_t started_mono_ = 0;
  long oom_before_ = 0;
  Health health_;

  ExitState exit_;
  UserModeStack net_;
  std::string error_;
  int restart_count_ = 0;
  int64_t backoff_ms_ = 0;
  bool manually_stopped_ = false;
  bool removed_ = false;
};

bool Monitor::ShouldRestart(int exit_code) const {
  if (manually_stopped_) return false;
  if (o_.restart == "always" || o_.restart == "unless-stopped") return true;
  if (o_.restart == "on-failure") return exit_code != 0 && (o_.max_retries == 0 || o_.retries < o_.max_retries);
  return false;
}

bool Monitor::Decode(LaunchSpec* spec, std::string* why) {
  std::string encoded;
  if (spec_fd_ >= 0) {
    struct stat st;
    if (fstat(spec_fd_, &st) != 0) {
      *why = "fstat launch spec: " + std::string(strerror(errno));
      return false;
    }
    encoded.resize(static_cast<size_t>(st.st_size));
    if (pread(spec_fd_, encoded.data(), encoded.size(), 0) != static_cast<ssize_t>(encoded.size())) {
      *why = "reading the launch spec back failed";
      return false;
    }
  } else {
    encoded = ReadAll(kSpecFd);
    close(kSpecFd);
    if (Restartable()) {
      // Kept outside this process's heap (a memfd is page cache, not the monitor's USS) and
      // decoded again for each restart: an idle monitor holds no decoded spec.
      spec_fd_ = memfd_create("berth-launch-spec", MFD_CLOEXEC);
      if (spec_fd_ < 0 || !WriteAll(spec_fd_, encoded.data(), encoded.size())) {
        *why = "memfd for the launch spec: " + std::string(strerror(errno));
        return false;
      }
    }
  }
  if (!DecodeLaunchSpec(encoded.data(), encoded.size(), spec, why)) return false;
  spec->die_with_parent = false;  // the whole point: outlive the Node process
  return true;
}

bool Monitor::PrepareProbes(std::string* why) {
  std::string encoded = ReadAll(kProbeSpecFd);
  close(kProbeSpecFd);
  LaunchSpec probe;
  if (!DecodeLaunchSpec(encoded.data(), encoded.size(), &probe, why)) return false;
  // The plan holds no descriptor (berth-exec finds the container's pidfd at a fixed number),
  // so one plan serves every probe of every run.
  std::string plan = WriteExecPlan(probe);
  probe_setup_.plan_fd = memfd_create("berth-probe-plan", MFD_CLOEXEC);
  if (probe_setup_.plan_fd < 0 || !WriteAll(probe_setup_.plan_fd, plan.data(), plan.size())) {
    *why = "memfd for the probe plan: " + std::string(strerror(errno));
    return false;
  }
  probe_setup_.exec_helper_fd = kExecHelperFd;
  for (const auto& d : o_.cgroups) probe_setup_.cgroup_procs.push_back(d + "/cgroup.procs");
  return true;
}

// Starts PID 1. On the first launch the outcome goes to Node on fd 4.
bool Monitor::Launch(bool first, std::string* why, bool* exec_failed, int* exec_code) {
  LaunchSpec spec;
  if (!Decode(&spec, why)) {
    if (first) {
      std::string out = "{\"error\":{\"code\":\"EINVAL\",\"errno\":22,\"syscall\":\"decode\",\"path\":\"\",\"message\":";
      AppendJsonString(&out, *why);
      Status(out + "}}");
    }
    return false;
  }
  if (!first) {
    // The veth of the previous run dies with its namespace, asynchronously: the new one takes
    // the same name (and address), so the old one must be gone first.
    for (const auto& nic : spec.interfaces) {
      bool existed = false;
      NativeError ignored;
      DeleteLink(nic.host_ifname, &existed, &ignored);
    }
  }
  oom_before_ = OomKills(o_.oom_file);
  NativeError error;
  // A fresh stack for each run, up before PID 1's first instruction, as Node's launch does.
  BeforeGo start_net = nullptr;
  if (!o_.net.kind.empty()) start_net = [this](int pid, NativeError* e) { return net_.Start(o_.net, pid, e); };
  SpawnResult result = Spawn(spec, &error, start_net);
  if (result.exec_failed || !error.ok()) net_.Stop();
  if (!Restartable()) {
    // The child joined these before exec; holding them would pin the namespaces (and the
    // init helper's memfd) for as long as this monitor lives. A restart needs them again.
    if (spec.netns_fd >= 0) close(spec.netns_fd);
    if (spec.exec_fd >= 0) close(spec.exec_fd);
    if (spec.userns_fd >= 0) close(spec.userns_fd);
  }
  if (result.exec_failed) {
    if (first) Status("{\"execFailed\":" + ErrorJson(error) + ",\"notFound\":" + (error.not_found ? "true" : "false") + "}");
    *exec_failed = true;
    *exec_code = error.not_found ? 127 : 126;
    *why = error.message.empty() ? std::string(strerror(error.err)) : error.message;
    return false;
  }
  if (!error.ok()) {
    if (first) Status("{\"error\":" + ErrorJson(error) + "}");
    *why = error.syscall + " " + error.path + ": " + (error.message.empty() ? strerror(error.err) : error.message);
    return false;
  }
  pid_ = result.pid;
  pidfd_ = result.pidfd;
  out_fd_ = result.tty_master >= 0 ? result.tty_master : result.stdio[1];
  err_fd_ = result.stdio[2];
  if (result.stdio[0] >= 0) close(result.stdio[0]);
  pid_start_time_ = ProcessStartTime(pid_);
  started_at_ = Rfc3339Nano();
  started_mono_ = MonotonicMs();
  health_ = Health();
  // Before Node hears of the start, so that no exit of this run can be journaled ahead of it.
  journal_.Append("start");
  if (first) Status("{\"pid\":" + std::to_string(pid_) + ",\"monitorPid\":" + std::to_string(getpid()) + "}");
  return true;
}

void Monitor::ScheduleProbe() {
  bool in_start_period = MonotonicMs() - started_mono_ < o_.start_period_ms;
  int64_t delay = in_start_period && strcmp(health_.status, "healthy") != 0 ? o_.start_interval_ms : o_.interval_ms;
  next_probe_ = MonotonicMs() + delay;
}

// moby's rules, as lib/containers/healthcheck.ts applies them for attached containers.
void Monitor::ApplyProbe(int exit_code, std::string output, const std::string& start) {
  const char* before = health_.status;
  health_.log.push_back({start, Rfc3339Nano(), exit_code, std::move(output)});
  while (health_.log.size() > kHealthLogEntries) health_.log.pop_front();
  bool in_start_period = MonotonicMs() - started_mono_ < o_.start_period_ms;
  if (exit_code == 0) {
    health_.failing_streak = 0;
    health_.status = "healthy";
  } else if (!(in_start_period && strcmp(before, "healthy") != 0)) {
    health_.failing_streak++;
    if (health_.failing_streak >= o_.health_retries) health_.status = "unhealthy";
  }
  if (strcmp(before, health_.status) != 0) journal_.Append("health_status", {{"healthStatus", health_.status}});
  WriteRun("running");
  // The record and the probe's buffers were the largest allocations since the last run: an
  // idle monitor gives them back rather than keeping them as free heap.
  malloc_trim(0);
}

void Monitor::WriteRun(const char* status) {
  std::string j = "{\"monitorPid\":" + std::to_string(getpid()) + ",\"status\":\"" + status + "\"";
  bool running = strcmp(status, "running") == 0;
  j += ",\"pid\":" + std::to_string(running ? pid_ : 0);
  if (running) j += ",\"pidStartTime\":\"" + pid_start_time_ + "\"";
  j += ",\"startedAt\":\"" + started_at_ + "\"";
  if (!exit_.finished_at.empty()) {
    j += ",\"finishedAt\":\"" + exit_.finished_at + "\",\"exitCode\":" + std::to_string(exit_.exit_code);
    j += exit_.signal.empty() ? ",\"signal\":null" : ",\"signal\":\"" + exit_.signal + "\"";
    j += std::string(",\"oomKilled\":") + (exit_.oom ? "true" : "false");
  }
  j += ",\"restartCount\":" + std::to_string(restart_count_) + ",\"retries\":" + std::to_string(o_.retries);
  j += std::string(",\"manuallyStopped\":") + (manually_stopped_ ? "true" : "false");
  j += ",\"error\":";
  AppendJsonString(&j, error_);
  if (o_.health && (running || !health_.log.empty())) {
    j += ",\"health\":{\"status\":\"" + std::string(health_.status) + "\",\"failingStreak\":" + std::to_string(health_.failing_streak) + ",\"log\":[";
    for (size_t i = 0; i < health_.log.size(); ++i) {
      const HealthEntry& e = health_.log[i];
      if (i > 0) j += ",";
      j += "{\"start\":\"" + e.start + "\",\"end\":\"" + e.end + "\",\"exitCode\":" + std::to_string(e.exit_code) + ",\"output\":";
      AppendJsonString(&j, e.output);
      j += "}";
    }
    j += "]}";
  }
  if (removed_) j += ",\"removed\":true";
  j += "}\n";
  WriteFileAtomic(o_.state_dir + "/run.json", j);
}

void Monitor::Supervise(LogWriter* log) {
  bool exited = false;
  if (o_.health) ScheduleProbe();
  char buf[16384];
  while (out_fd_ >= 0 || err_fd_ >= 0 || !exited) {
    pollfd fds[6];
    int n = 0;
    int idx_out = -1, idx_err = -1, idx_pid = -1, idx_sig = -1, idx_probe_out = -1, idx_probe = -1;
    if (out_fd_ >= 0) { idx_out = n; fds[n++] = {out_fd_, POLLIN, 0}; }
    if (err_fd_ >= 0) { idx_err = n; fds[n++] = {err_fd_, POLLIN, 0}; }
    if (!exited) { idx_pid = n; fds[n++] = {pidfd_, POLLIN, 0}; }
    idx_sig = n;
    fds[n++] = {signal_fd_, POLLIN, 0};
    if (probe_.active() && probe_.output_fd() >= 0) { idx_probe_out = n; fds[n++] = {probe_.output_fd(), POLLIN, 0}; }
    if (probe_.active()) { idx_probe = n; fds[n++] = {probe_.pidfd(), POLLIN, 0}; }
    int timeout = -1;
    if (o_.health && !exited) {
      int64_t at = probe_.active() ? probe_deadline_ : next_probe_;
      int64_t left = at - MonotonicMs();
      timeout = left < 0 ? 0 : static_cast<int>(left > 3600000 ? 3600000 : left);
    }
    if (poll(fds, static_cast<nfds_t>(n), timeout) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[idx_sig].revents & POLLIN) {
      signalfd_siginfo si;
      if (read(signal_fd_, &si, sizeof(si)) == sizeof(si) && si.ssi_signo == SIGUSR1) manually_stopped_ = true;
    }
    auto drain = [&](int idx, int* fd, int stream) {
      if (idx < 0 || !(fds[idx].revents & (POLLIN | POLLHUP | POLLERR))) return;
      ssize_t r = read(*fd, buf, sizeof(buf));
      if (r > 0) {
        log->Write(stream, buf, static_cast<size_t>(r));
      } else if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN)) {
        // EOF, or EIO from a tty master once the container's side is gone.
        close(*fd);
        *fd = -1;
      }
    };
    drain(idx_out, &out_fd_, 0);
    drain(idx_err, &err_fd_, 1);
    if (idx_pid >= 0 && (fds[idx_pid].revents & POLLIN)) exited = true;
    if (idx_probe_out >= 0 && (fds[idx_probe_out].revents & (POLLIN | POLLHUP | POLLERR))) probe_.ReadOutput();
    if (exited) {
      probe_.Kill();  // the container is gone: this round has no result
      continue;
    }
    if (idx_probe >= 0 && (fds[idx_probe].revents & POLLIN)) {
      int code = probe_.Finish();
      ApplyProbe(code, probe_.TakeOutput(), probe_start_);
      ScheduleProbe();
      continue;
    }
    if (!o_.health) continue;
    int64_t now = MonotonicMs();
    if (probe_.active() && now >= probe_deadline_) {
      probe_.Kill();
      probe_.TakeOutput();
      ApplyProbe(-1, "Health check exceeded timeout (" + std::to_string(o_.timeout_ms) + "ms)", probe_start_);
      ScheduleProbe();
    } else if (!probe_.active() && now >= next_probe_) {
      if (Frozen(o_.cgroups)) {
        ScheduleProbe();
        continue;
      }
      probe_start_ = Rfc3339Nano();
      std::string why;
      if (probe_.Start(probe_setup_, pidfd_, &why)) {
        probe_deadline_ = now + o_.timeout_ms;
      } else {
        ApplyProbe(-1, "Health check failed: " + why, probe_start_);
        ScheduleProbe();
      }
    }
  }
  log->Flush();
  siginfo_t info{};
  while (waitid(static_cast<idtype_t>(P_PIDFD), pidfd_, &info, WEXITED) < 0 && errno == EINTR) {
  }
  close(pidfd_);
  pidfd_ = -1;
  exit_ = ExitState();
  if (info.si_code == CLD_EXITED) {
    exit_.exit_code = info.si_status;
  } else {
    const char* abbrev = sigabbrev_np(info.si_status);
    exit_.exit_code = 128 + info.si_status;
    exit_.signal = "SIG" + std::string(abbrev ? abbrev : "UNKNOWN");
  }
  exit_.oom = OomKills(o_.oom_file) > oom_before_;
  exit_.finished_at = Rfc3339Nano();
}

// Sleeps `ms` unless a manual stop arrives; true when the restart should go ahead.
bool Monitor::Backoff(int64_t ms) {
  int64_t until = MonotonicMs() + ms;
  while (!manually_stopped_) {
    int64_t left = until - MonotonicMs();
    if (left <= 0) return true;
    pollfd p{signal_fd_, POLLIN, 0};
    int r = poll(&p, 1, static_cast<int>(left));
    if (r < 0 && errno != EINTR) return true;
    if (r > 0) {
      signalfd_siginfo si;
      if (read(signal_fd_, &si, sizeof(si)) == sizeof(si) && si.ssi_signo == SIGUSR1) manually_stopped_ = true;
    }
  }
  return false;
}

void Monitor::Finish() {
  net_.Stop();
  RemoveCgroups(o_.cgroups);
  // With autoRemove the record says so before the files go: a Node process that reads it
  // finishes the removal (name, volumes, leases) whether or not this walk is done.
  removed_ = o_.auto_remove;
  WriteRun("exited");
  if (removed_) {
    RemoveContainerFiles(o_.state_dir);
    journal_.Append("destroy");
  }
}

int Monitor::Run() {
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  // A user's stop() or kill() tells this monitor first (Docker's manual-stop rule): no
  // restart follows, and a backoff sleep ends at once. Spawn's child resets its mask.
  sigprocmask(SIG_BLOCK, &usr1, nullptr);
  signal_fd_ = signalfd(-1, &usr1, SFD_CLOEXEC | SFD_NONBLOCK);

  std::string why;
  if (o_.health && !PrepareProbes(&why)) {
    std::string out = "{\"error\":{\"code\":\"EINVAL\",\"errno\":22,\"syscall\":\"decode\",\"path\":\"probe\",\"message\":";
    AppendJsonString(&out, why);
    Status(out + "}}");
    return 2;
  }
  bool exec_failed = false;
  int exec_code = 0;
  if (!Launch(true, &why, &exec_failed, &exec_code)) {
    net_.Stop();
    RemoveCgroups(o_.cgroups);
    return exec_failed ? 0 : 1;
  }
  // The first spec (env, seccomp program, mount plan) is freed: an idle detached container
  // costs only the monitor's few pages.
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

  LogWriter log(o_.state_dir, o_.log_max_size, o_.log_max_files);
  WriteRun("running");
  for (;;) {
    Supervise(&log);
    // The namespace it served is gone with PID 1; a restart starts a fresh one.
    net_.Stop();
    malloc_trim(0);
    if (exit_.oom) journal_.Append("oom");
    // As Node's exit event: the signal only when there was one.
    if (exit_.signal.empty()) journal_.Append("exit", {{"exitCode", std::to_string(exit_.exit_code)}, {"oomKilled", exit_.oom ? "true" : "false"}});
    else journal_.Append("exit", {{"exitCode", std::to_string(exit_.exit_code)}, {"signal", exit_.signal}, {"oomKilled", exit_.oom ? "true" : "false"}});
    for (;;) {
      if (!ShouldRestart(exit_.exit_code)) {
        Finish();
        return 0;
      }
      int64_t ran_for = MonotonicMs() - started_mono_;
      backoff_ms_ = ran_for >= kBackoffResetAfterMs || backoff_ms_ <= 0 ? kBackoffInitialMs : std::min(backoff_ms_ * 2, kBackoffMaxMs);
      WriteRun("restarting");
      if (!Backoff(backoff_ms_)) {
        Finish();
        return 0;
      }
      restart_count_++;
      o_.retries++;
      exec_failed = false;
      journal_.Append("restart");
      if (Launch(false, &why, &exec_failed, &exec_code)) break;
      malloc_trim(0);
      if (!exec_failed) {
        error_ = "restart failed: " + why;
        Finish();
        return 0;
      }
      // Docker records the command's absence as a run that ended with 127 (126): the policy
      // decides again, with the backoff growing.
      error_ = why;
      exit_ = ExitState();
      exit_.exit_code = exec_code;
      exit_.finished_at = Rfc3339Nano();
      started_mono_ = MonotonicMs();
    }
    malloc_trim(0);
    error_.clear();
    WriteRun("running");
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
  Monitor monitor(std::move(o));
  return monitor.Run();
}

}  // namespace berth
