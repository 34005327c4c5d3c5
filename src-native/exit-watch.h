// Exit notification without blocking the event loop: a pidfd becomes readable when its
// process exits, so libuv polls it like a socket and no watcher thread is needed.
#pragma once

#include <napi.h>

namespace berth {

// watchExit(pidfd, callback): calls callback({ code, signal }) once, after reaping the process,
// and closes the pidfd. Returns nothing.
Napi::Value WatchExit(const Napi::CallbackInfo& info);

// sendSignal(pidfd, signo): pidfd_send_signal; returns false if the process is already gone.
Napi::Value SendSignal(const Napi::CallbackInfo& info);

}  // namespace berth
