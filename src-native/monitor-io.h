// Small file and JSON helpers of `berth-helper monitor`: the monitor writes JSON that Node
// reads (run.json, the events journal, the json-file log) and has no JSON library to do it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace berth {

// Appends `data` as a JSON string literal (quotes included), escaping what JSON requires.
void AppendJsonString(std::string* out, const char* data, size_t n);
inline void AppendJsonString(std::string* out, const std::string& s) { AppendJsonString(out, s.data(), s.size()); }

// The current time as RFC 3339 with nanoseconds, UTC ("2026-12-02T11:00:00.123456789Z").
std::string Rfc3339Nano();

// Monotonic milliseconds.
int64_t MonotonicMs();

bool WriteAll(int fd, const char* p, size_t n);
std::string ReadAll(int fd);

// Replaces `path` by `content` atomically (temp file in the same directory, fsync, rename):
// a reader sees the old file or the new one, never a torn one.
bool WriteFileAtomic(const std::string& path, const std::string& content);

// Field 22 of /proc/<pid>/stat (start time in clock ticks), as Node's process identity reads
// it (lib/state/process-identity.ts); empty when the process is gone.
std::string ProcessStartTime(int pid);

}  // namespace berth
