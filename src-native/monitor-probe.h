// One health probe of a detached container, run by its monitor the way Node runs an exec
// (spawn-exec.cc): `berth-exec` joins the container's namespaces and starts the probe command
// in it. The monitor is single-threaded, so it forks berth-exec directly (no trampoline), puts
// it into the container's cgroups, says "go", and receives the probe's pidfd. The probe is the
// monitor's child (CLONE_PARENT); its output is read by the monitor's poll loop, 4 KiB kept.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace berth {

struct ProbeSetup {
  int plan_fd = -1;         // memfd with the exec plan (exec-plan.h), the same for every probe
  int exec_helper_fd = -1;  // berth-exec's sealed memfd
  std::vector<std::string> cgroup_procs;
};

class ProbeRun {
 public:
  // Starts a probe against the container whose PID 1 is `pid1_pidfd`. On failure returns false
  // with `*why` set (the probe's result is then a failure with that output).
  bool Start(const ProbeSetup& setup, int pid1_pidfd, std::string* why);

  int output_fd() const { return out_fd_; }
  int pidfd() const { return pidfd_; }
  bool active() const { return pidfd_ >= 0; }

  // Reads what the probe wrote; keeps the first 4 KiB (Docker's limit), discards the rest.
  void ReadOutput();
  // After the pidfd is readable: reaps the probe; returns its exit code (128+n for signal n).
  int Finish();
  // At the timeout: kills and reaps the probe.
  void Kill();

  std::string TakeOutput() { return std::move(output_); }

 private:
  void Close();

  int pidfd_ = -1;
  int out_fd_ = -1;
  int status_fd_ = -1;
  std::string output_;
};

}  // namespace berth
