// Small string helpers for code that may not call libc (raw-syscall.h explains why): the
// children between clone and execve, and berth-exec, which has no libc at all.
#pragma once

#include <cstddef>

namespace berth::raw {

inline size_t Len(const char* s) {
  size_t n = 0;
  while (s[n] != '\0') ++n;
  return n;
}

// Copies src into dst (capacity cap), always NUL-terminated; a null src copies "".
inline void Copy(char* dst, size_t cap, const char* src) {
  size_t i = 0;
  for (; src != nullptr && src[i] != '\0' && i + 1 < cap; ++i) dst[i] = src[i];
  dst[i] = '\0';
}

// Writes the decimal digits of v and a NUL at buf; returns how many digits.
inline size_t AppendUint(char* buf, unsigned long v) {
  char digits[24];
  int d = 0;
  do {
    digits[d++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  size_t n = 0;
  while (d > 0) buf[n++] = digits[--d];
  buf[n] = '\0';
  return n;
}

}  // namespace berth::raw
