#include "launch-watch.h"

#include <errno.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "container-setup.h"
#include "napi-errors.h"
#include "spawn-io.h"

namespace berth {
namespace {

struct LaunchWatch {
  uv_poll_t poll;
  int fd;
  Napi::Env env;
  Napi::Promise::Deferred deferred;
  int tty_master = -1;
  bool reported = false;
  ChildReport report{};
};

void CloseLaunchWatch(uv_handle_t* handle) { delete static_cast<LaunchWatch*>(handle->data); }

void Settle(LaunchWatch* w) {
  Napi::Env env = w->env;
  Napi::HandleScope scope(env);
  uv_poll_stop(&w->poll);
  close(w->fd);
  w->fd = -1;
  if (w->reported && w->report.kind == ChildReportKind::kSetupError) {
    if (w->tty_master >= 0) close(w->tty_master);
    w->deferred.Reject(MakeSystemError(env, w->report.err, w->report.syscall, w->report.path));
  } else {
    Napi::Object out = Napi::Object::New(env);
    out.Set("ttyMaster", w->tty_master);
    if (w->reported) {
      Napi::Object f = MakeSystemError(env, w->report.err, w->report.syscall, w->report.path);
      f.Set("notFound", Napi::Boolean::New(env, w->report.kind == ChildReportKind::kNotFound));
      out.Set("execFailed", f);
    }
    w->deferred.Resolve(out);
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&w->poll), CloseLaunchWatch);
}

void OnStatusReadable(uv_poll_t* handle, int status, int events) {
  auto* w = static_cast<LaunchWatch*>(handle->data);
  for (;;) {
    union {
      ChildReport report;
      char tag;
    } msg{};
    int fds[2] = {-1, -1};
    ssize_t r = ReceiveMessage(w->fd, &msg, sizeof(msg), fds);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno == EAGAIN && status == 0) return;  // more to come: wait for the next wake-up
    if (r <= 0) break;                                      // EOF: exec'd or died
    if (fds[0] >= 0 && msg.tag == 'T' && w->tty_master < 0) {
      w->tty_master = fds[0];
      fds[0] = -1;
    } else if (r == static_cast<ssize_t>(sizeof(ChildReport)) && !w->reported) {
      w->report = msg.report;
      w->reported = true;
    }
    CloseIf(fds[0]);
    CloseIf(fds[1]);
  }
  Settle(w);
}

struct Reaper {
  uv_poll_t poll;
  int pidfd;
};

void CloseReaper(uv_handle_t* handle) { delete static_cast<Reaper*>(handle->data); }

void OnPidfdReadable(uv_poll_t* handle, int status, int events) {
  auto* reaper = static_cast<Reaper*>(handle->data);
  siginfo_t info{};
  int r = waitid(static_cast<idtype_t>(P_PIDFD), reaper->pidfd, &info, WEXITED | WNOHANG);
  if (r < 0 && errno == EINTR) return;
  if (r == 0 && info.si_pid == 0) return;  // not exited yet
  uv_poll_stop(handle);
  close(reaper->pidfd);
  uv_close(reinterpret_cast<uv_handle_t*>(handle), CloseReaper);
}

}  // namespace

Napi::Promise WatchLaunch(Napi::Env env, int status_fd) {
  auto* w = new LaunchWatch{{}, status_fd, env, Napi::Promise::Deferred::New(env)};
  Napi::Promise promise = w->deferred.Promise();
  uv_loop_t* loop = nullptr;
  int r = napi_get_uv_event_loop(env, &loop) == napi_ok ? uv_poll_init(loop, &w->poll, status_fd) : UV_EINVAL;
  w->poll.data = w;
  if (r == 0) r = uv_poll_start(&w->poll, UV_READABLE, OnStatusReadable);
  if (r != 0) {
    close(status_fd);
    w->deferred.Reject(MakeSystemError(env, -r, "uv_poll_start", "exec status"));
    delete w;
  }
  return promise;
}

void ReapWhenExited(Napi::Env env, int pidfd) {
  auto* reaper = new Reaper{{}, pidfd};
  reaper->poll.data = reaper;
  uv_loop_t* loop = nullptr;
  int r = napi_get_uv_event_loop(env, &loop) == napi_ok ? uv_poll_init(loop, &reaper->poll, pidfd) : UV_EINVAL;
  if (r == 0) r = uv_poll_start(&reaper->poll, UV_READABLE, OnPidfdReadable);
  if (r != 0) {
    // No event loop to wait on: the helper exits on its own right after its message, so a
    // blocking reap here is bounded by berth's own code.
    siginfo_t info{};
    waitid(static_cast<idtype_t>(P_PIDFD), pidfd, &info, WEXITED);
    close(pidfd);
    delete reaper;
  }
}

}  // namespace berth
