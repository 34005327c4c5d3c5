// A few network namespaces made ahead of time, off the start path.
//
// Creating a network namespace is the most expensive part of clone() for a container (~0.5 ms
// here, and it grows with the number of namespaces the kernel is tearing down). A background
// thread keeps a small pool of fresh namespaces with loopback already up; a launch that wants
// an isolated, otherwise empty network (network "none") takes one and the child setns()es into
// it instead of cloning with CLONE_NEWNET. When the pool is empty the launch falls back to
// CLONE_NEWNET: the pool only ever saves time.
#pragma once

#include <vector>

namespace berth {

// Allows the pool in this process. Only the addon does: the static helper launches one
// container per process, where a refill thread would only cost memory.
void EnableNetnsPool();

// Returns an O_CLOEXEC fd of a fresh network namespace (caller owns it), or -1 when none is
// ready. Starts the refill thread on first use. The pool keeps what it holds (ready namespaces,
// the thread's way home) at fd 4096 and above; the fd returned is a low one.
int TakePooledNetns();

// Stops the refill thread and closes pooled namespaces (process exit / addon unload).
void StopNetnsPool();

}  // namespace berth
