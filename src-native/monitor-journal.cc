#include "monitor-journal.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "monitor-io.h"

namespace berth {

EventJournal::EventJournal(std::string path, std::string id, std::string name, std::string attributes)
    : path_(std::move(path)), id_(std::move(id)), name_(std::move(name)), attributes_(std::move(attributes)) {
  // Only an object is spliced into records; anything else (it comes from our own Node side)
  // is dropped rather than corrupting the journal.
  if (attributes_.size() < 2 || attributes_.front() != '{' || attributes_.back() != '}') attributes_ = "{}";
}

void EventJournal::RotateIfFull(int fd) {
  struct stat mine;
  if (fstat(fd, &mine) != 0 || mine.st_size < kJournalMaxBytes) return;
  std::string lock_path = path_ + ".lock";
  int lock = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock < 0) return;
  if (flock(lock, LOCK_EX) == 0) {
    struct stat now;
    // Another writer may have rotated already: only the file we found full is renamed.
    if (stat(path_.c_str(), &now) == 0 && now.st_ino == mine.st_ino && now.st_dev == mine.st_dev &&
        now.st_size >= kJournalMaxBytes) {
      std::string old = path_ + ".1";
      rename(path_.c_str(), old.c_str());
    }
    flock(lock, LOCK_UN);
  }
  close(lock);
}

void EventJournal::Append(const char* action, std::initializer_list<std::pair<const char*, std::string>> extra) {
  if (path_.empty()) return;
  std::string line = "{\"type\":\"container\",\"action\":\"";
  line += action;
  line += "\",\"id\":\"" + id_ + "\",\"name\":";
  AppendJsonString(&line, name_);
  line += ",\"time\":\"" + Rfc3339Nano() + "\",\"attributes\":";
  line.append(attributes_, 0, attributes_.size() - 1);
  bool first = attributes_.size() == 2;
  for (const auto& [key, value] : extra) {
    if (!first) line.push_back(',');
    first = false;
    AppendJsonString(&line, key, __builtin_strlen(key));
    line.push_back(':');
    AppendJsonString(&line, value);
  }
  line += "},\"src\":\"monitor-" + std::to_string(getpid()) + "\"}\n";
  int fd = open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) return;
  RotateIfFull(fd);
  struct stat st;
  struct stat now;
  if (fstat(fd, &st) == 0 && (stat(path_.c_str(), &now) != 0 || now.st_ino != st.st_ino)) {
    // Rotated under us: the record goes to the new file.
    close(fd);
    fd = open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) return;
  }
  // One write: O_APPEND places it at the end as a whole, never interleaved with another writer's.
  ssize_t w = write(fd, line.data(), line.size());
  (void)w;
  close(fd);
}

}  // namespace berth
