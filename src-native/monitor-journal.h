// The runtime's events journal as the monitor writes it: `<root>/events.jsonl`, one
// RuntimeEvent (lib/containers/events.ts) per line, read by `rt.events({ since })` in any Node
// process later. Node appends to the same file (lib/containers/event-journal.ts), so both
// follow one protocol:
//   - a record is one write(2) on an O_APPEND descriptor: records never interleave;
//   - past kJournalMaxBytes the file is renamed to `events.jsonl.1` (replacing the previous
//     one), under flock of `events.jsonl.lock`, after checking that nobody rotated it first;
//     the journal is bounded to two files.
#pragma once

#include <string>

namespace berth {

constexpr long long kJournalMaxBytes = 1 << 20;

class EventJournal {
 public:
  // `attributes` is the JSON object every event of this container carries (name, image,
  // labels), as Node renders it.
  EventJournal(std::string path, std::string id, std::string name, std::string attributes);

  // Appends one event; `extra` are more attributes (name, value pairs). Best effort: a full
  // disk must not stop the supervision.
  void Append(const char* action, std::initializer_list<std::pair<const char*, std::string>> extra = {});

  bool enabled() const { return !path_.empty(); }

 private:
  void RotateIfFull(int fd);

  std::string path_;
  std::string id_;
  std::string name_;
  std::string attributes_;
};

}  // namespace berth
