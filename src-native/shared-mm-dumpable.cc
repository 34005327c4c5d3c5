#include "shared-mm-dumpable.h"

#include <sys/prctl.h>

#include <mutex>

namespace berth {
namespace {

std::mutex g_mutex;
int g_open = 0;        // windows open: children that may still run on this memory
int g_restore_to = 1;  // the flag when the first of them opened

}  // namespace

SharedMmWindow::SharedMmWindow() {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_open++ == 0) g_restore_to = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
}

SharedMmWindow::~SharedMmWindow() {
  std::lock_guard<std::mutex> lock(g_mutex);
  // Only a flag this process had is put back (a process that chose 0 keeps 0), and only when
  // no other launch's child is between its credential change and its execve.
  if (--g_open == 0 && g_restore_to == 1 && prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 1) prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
}

}  // namespace berth
