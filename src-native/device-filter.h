// The cgroup v2 device allow-list: a BPF_CGROUP_DEVICE program (compiled in TypeScript,
// lib/security/device-filter.ts) loaded once and attached to each container's cgroup.
#pragma once

#include <cstddef>
#include <string>

namespace berth {

// Loads the program; returns a close-on-exec fd or -errno. On a verifier refusal `log` holds
// the verifier's words.
int LoadDeviceFilter(const void* insns, size_t bytes, std::string* log);

// Attaches a loaded program to the cgroup v2 directory `dir` (BPF_F_ALLOW_MULTI, so that it
// runs beside programs of the cgroups above). Returns 0 or -errno.
int AttachDeviceFilter(const std::string& dir, int prog_fd);

}  // namespace berth
