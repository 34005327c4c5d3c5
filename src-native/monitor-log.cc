#include "monitor-log.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "monitor-io.h"

namespace berth {
namespace {

// A record longer than this is split, as Docker's json-file driver does.
constexpr size_t kMaxRecord = 16 * 1024;

}  // namespace

LogWriter::LogWriter(std::string dir, long long max_size, int max_files)
    : dir_(std::move(dir)), max_size_(max_size), max_files_(max_files) {
  Open();
}

LogWriter::~LogWriter() {
  if (fd_ >= 0) {
    fsync(fd_);
    close(fd_);
  }
}

void LogWriter::Write(int stream, const char* data, size_t n) {
  std::string& pending = pending_[stream];
  pending.append(data, n);
  size_t start = 0;
  for (;;) {
    size_t nl = pending.find('\n', start);
    if (nl == std::string::npos) break;
    while (nl + 1 - start > kMaxRecord) {
      Record(stream, pending.data() + start, kMaxRecord);
      start += kMaxRecord;
    }
    Record(stream, pending.data() + start, nl + 1 - start);
    start = nl + 1;
  }
  while (pending.size() - start >= kMaxRecord) {
    Record(stream, pending.data() + start, kMaxRecord);
    start += kMaxRecord;
  }
  pending.erase(0, start);
  // An idle container must not keep a 64 KiB burst's buffer: the monitor's idle memory is a goal.
  if (pending.empty() && pending.capacity() > 4096) std::string().swap(pending);
}

void LogWriter::Flush() {
  for (int s = 0; s < 2; ++s) {
    if (!pending_[s].empty()) Record(s, pending_[s].data(), pending_[s].size());
    std::string().swap(pending_[s]);
  }
  std::string().swap(line_);
  if (fd_ >= 0) fsync(fd_);
}

void LogWriter::Open() {
  std::string path = dir_ + "/container.log";
  fd_ = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  struct stat st;
  size_ = (fd_ >= 0 && fstat(fd_, &st) == 0) ? st.st_size : 0;
}

void LogWriter::Rotate() {
  if (fd_ >= 0) close(fd_);
  std::string base = dir_ + "/container.log";
  for (int i = max_files_ - 1; i >= 1; --i) {
    std::string from = i == 1 ? base : base + "." + std::to_string(i - 1);
    std::string to = base + "." + std::to_string(i);
    rename(from.c_str(), to.c_str());
  }
  if (max_files_ <= 1) unlink(base.c_str());
  Open();
}

void LogWriter::Record(int stream, const char* data, size_t n) {
  line_.clear();
  line_.append("{\"log\":");
  AppendJsonString(&line_, data, n);
  line_.append(stream == 0 ? ",\"stream\":\"stdout\",\"time\":\"" : ",\"stream\":\"stderr\",\"time\":\"");
  line_.append(Rfc3339Nano());
  line_.append("\"}\n");
  if (max_size_ > 0 && size_ > 0 && size_ + static_cast<long long>(line_.size()) > max_size_) Rotate();
  if (fd_ >= 0 && WriteAll(fd_, line_.data(), line_.size())) size_ += static_cast<long long>(line_.size());
}

}  // namespace berth
