#pragma once

namespace berth {

// A launch's child shares this process's memory (CLONE_VM) until its execve. When it switches to
// the container's user, the kernel marks that memory not dumpable, and so this process: its
// /proc files then belong to root, which a rootless Node cannot read or write (its children's
// uid_map among them). Holding a SharedMmWindow from before such a clone until the child has
// exec'd or died lets the last window to close put the flag back as it was when the first one
// opened. Never earlier: while any child with changed credentials still runs on this memory,
// the memory must stay undumpable, or a process of that user could ptrace it.
class SharedMmWindow {
 public:
  SharedMmWindow();
  ~SharedMmWindow();
  SharedMmWindow(const SharedMmWindow&) = delete;
  SharedMmWindow& operator=(const SharedMmWindow&) = delete;
};

}  // namespace berth
