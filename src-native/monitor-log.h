// The container's output as Docker's json-file log: one {"log","stream","time"} object per
// line, rotated by size. Written by the monitor of a detached container; Node's own writer
// (lib/containers/log-writer.ts) writes the same format for attached containers.
#pragma once

#include <string>

namespace berth {

class LogWriter {
 public:
  LogWriter(std::string dir, long long max_size, int max_files);
  ~LogWriter();
  LogWriter(const LogWriter&) = delete;
  LogWriter& operator=(const LogWriter&) = delete;

  // Splits a chunk into lines; a partial line waits for more unless it reached the record cap.
  void Write(int stream, const char* data, size_t n);
  // Writes what is pending (a last line without a newline).
  void Flush();

 private:
  void Open();
  void Rotate();
  void Record(int stream, const char* data, size_t n);

  std::string dir_;
  long long max_size_;
  int max_files_;
  int fd_ = -1;
  long long size_ = 0;
  std::string pending_[2];
  std::string line_;
};

}  // namespace berth
