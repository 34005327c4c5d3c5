// A failure as data. Kernel code on any thread (a libuv worker, the netlink or spawn code, the
// detached monitor) fills one in; only N-API glue turns it into a JS error (napi-errors.h), so
// this header needs neither N-API nor the spawn machinery.
#pragma once

#include <string>

namespace berth {

struct NativeError {
  int err = 0;              // positive errno
  std::string syscall;
  std::string path;
  std::string message;      // optional extra words
  // An exec failure where no candidate existed (Docker's 127), as opposed to one that could
  // not be executed (126).
  bool not_found = false;
  bool ok() const { return err == 0 && message.empty(); }
};

}  // namespace berth
