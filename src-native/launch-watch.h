// The event-loop half of an exec (spawn-exec.cc): what the exec'd process reports between its
// creation and its execve is read here, by libuv polling, never by a blocked worker thread.
#pragma once

#include <napi.h>

namespace berth {

// Resolves with { ttyMaster, execFailed? } once `status_fd` reaches EOF (the process exec'd
// or died), or rejects with the setup error it reported. Takes ownership of `status_fd`.
Napi::Promise WatchLaunch(Napi::Env env, int status_fd);

// Reaps the process of `pidfd` whenever it exits, then closes the pidfd. Takes ownership.
void ReapWhenExited(Napi::Env env, int pidfd);

}  // namespace berth
