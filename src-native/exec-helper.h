// `berth-helper exec`: the process that performs an exec into a running container on Node's
// behalf (spawn-exec.cc explains why it is a separate executable).
#pragma once

namespace berth {

// The descriptors the addon's trampoline leaves the helper, at fixed numbers.
constexpr int kExecSpecFd = 3;   // memfd holding the encoded launch spec
constexpr int kExecSyncFd = 4;   // the sync socket to Node: "go" in, 'P' or a ChildReport out
constexpr int kExecJoinFd = 5;   // pidfd of the container's PID 1, whose namespaces are joined
constexpr int kExecStdioFd = 6;  // 6, 7, 8: the process's stdin, stdout, stderr (when not /dev/null)
constexpr int kExecFdCount = 6;

// Runs in berth-helper; never returns.
[[noreturn]] void RunExecHelper();

}  // namespace berth
