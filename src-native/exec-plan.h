// The exec plan: everything berth-exec (exec-main.cc) needs for one exec into a running
// container, in a flat form it reads in place, for it has no allocator and no libc. The addon
// writes it from the decoded launch spec (exec-plan-writer.cc); berth-exec maps it and reads it
// (exec-plan-reader.cc). One header describes the layout both follow:
//
//   u32 magic "BXP1" | i32 namespaces to join | u8 tty | u16 rows | u16 cols | u8 stdio given
//   | u32 uid | u32 gid | u64 caps: bounding, effective, permitted, inheritable, ambient
//   | u8 no_new_privs | u8 die_with_parent | u8 set_oom_score_adj | i32 oom_score_adj
//   | u32 n, pad to 8, u32 groups[n] | u32 n, pad to 8, ProcessRlimit[n]
//   | u32 n, pad to 8, seccomp bytes[n] | cwd\0 | u32 n, argv\0... | u32 n, env\0...
//   | u32 n, exec candidates\0... | u32 magic "BXP1"
//
// Little-endian, native layout: both sides are built from this tree for one machine.
#pragma once

#include <cstddef>
#include <cstdint>

#include "process-setup.h"

namespace berth {

constexpr uint32_t kExecPlanMagic = 0x31505842;  // "BXP1"

// The descriptors the addon's trampoline leaves berth-exec, at fixed numbers.
constexpr int kExecPlanFd = 3;   // memfd holding the plan
constexpr int kExecSyncFd = 4;   // the sync socket to Node: "go" in, 'P' or a ChildReport out
constexpr int kExecJoinFd = 5;   // pidfd of the container's PID 1, whose namespaces are joined
constexpr int kExecStdioFd = 6;  // 6, 7, 8: stdin, stdout, stderr, when the plan says given
constexpr int kExecFdCount = 6;

struct ExecPlanView {
  ProcessSpec process;
  int join_namespaces;
  uint8_t stdio_given;  // bit i: stdio i arrives as a descriptor (otherwise /dev/null)
  char* const* argv;
  char* const* envp;
};

// Reads `plan` into `out`; argv, envp and the candidates become arrays in `pointers`. Returns
// false (naming nothing: the plan comes from our own addon) when it is malformed or too big.
bool ReadExecPlan(const char* plan, size_t size, ExecPlanView* out, const char** pointers, size_t pointer_cap);

}  // namespace berth

#ifndef BERTH_FREESTANDING
#include <string>

#include "launch-spec.h"

namespace berth {

// The plan of an exec (`spec.join_pidfd >= 0`).
std::string WriteExecPlan(const LaunchSpec& spec);

}  // namespace berth
#endif
