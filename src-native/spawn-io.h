// Parent-side plumbing shared by both launch paths (spawn.cc: a container's PID 1;
// spawn-exec.cc: a process exec'd into a running container): stdio pipes, the sync socket's
// messages, reaping, and bounded waits.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "launch-spec.h"
#include "spawn.h"

namespace berth {

void SetError(NativeError* e, int err, const char* syscall, const std::string& path);
void CloseIf(int& fd);

// Writes `content` to an existing kernel file (uid_map, cgroup.procs) in one write(2): the
// kernel parses each write as a whole value.
bool WriteKernelFile(const std::string& path, const std::string& content, NativeError* error);

// Writes all of `data` to a pipe or socket, retrying short writes and EINTR (an exec plan
// handed to berth-exec or to a parked PID 1). False on any other failure.
bool WriteAllFd(int fd, const std::string& data);

// Reaps a child that failed before exec, so that no zombie is left behind. Only for children
// that berth itself is killing or that cannot be stopped from a container (see WaitReadable).
void Reap(int pidfd);

// Creates the stdio pipes (or dups the inherited fds) the spec asks for: child_ends[i] is
// what the child gets, parent_ends[i] what Node keeps. Both start at -1.
bool MakeStdio(const LaunchSpec& spec, int (&child_ends)[3], int (&parent_ends)[3], NativeError* error);

// One message from the child: a payload and up to two descriptors (SCM_RIGHTS). Returns
// recvmsg's result; fds[i] is set (close-on-exec) for each descriptor that came along.
ssize_t ReceiveMessage(int sock, void* buf, size_t len, int (&fds)[2]);

// The process part of `spec` as plain pointers for the child (process-setup.h); `candidates`
// holds the exec candidates' pointers and must outlive the child's setup.
void FillProcessSpec(const LaunchSpec& spec, ProcessSpec* out, std::vector<const char*>* candidates);

// Monotonic nanoseconds.
int64_t NowNs();

// Waits until `fd` is readable or `deadline_ns` (NowNs() scale) passes. Every wait on a
// libuv worker thread has a deadline: a thread blocked forever freezes Node's fs, dns and
// crypto once four of them are parked (the pool's default size).
// Returns 1 when readable, 0 on timeout, -errno on error.
int WaitReadable(int fd, int64_t deadline_ns);

}  // namespace berth
