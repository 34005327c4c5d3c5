// Raw system calls for code that runs in a child cloned with CLONE_VM.
//
// Why not libc: the child shares the Node process's memory and, without CLONE_SETTLS, the
// calling thread's TLS. glibc wrappers write `errno` (a TLS variable) and some take locks, so
// a libc call in the child could clobber the parent thread's errno or deadlock on a lock that
// another Node thread held at clone time. These wrappers return -errno instead and touch
// nothing but registers and the stack.
#pragma once

#include <cstdint>
#include <type_traits>
#include <sys/syscall.h>

namespace berth::raw {

inline long Syscall6(long n, long a1 = 0, long a2 = 0, long a3 = 0, long a4 = 0, long a5 = 0,
                     long a6 = 0) {
  long ret;
  register long r10 __asm__("r10") = a4;
  register long r8 __asm__("r8") = a5;
  register long r9 __asm__("r9") = a6;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(n), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}

template <typename T>
inline long ToArg(T v) {
  if constexpr (std::is_pointer_v<T> || std::is_null_pointer_v<T>) {
    return reinterpret_cast<long>(v);
  } else {
    return static_cast<long>(v);
  }
}

// Any syscall with pointer or integer arguments; returns the result or -errno.
template <typename... A>
inline long Call(long n, A... args) {
  return Syscall6(n, ToArg(args)...);
}

inline long Write(int fd, const void* buf, unsigned long len) {
  return Call(SYS_write, fd, reinterpret_cast<long>(buf), len);
}
inline long Read(int fd, void* buf, unsigned long len) {
  return Call(SYS_read, fd, reinterpret_cast<long>(buf), len);
}
inline long Close(int fd) { return Call(SYS_close, fd); }
[[noreturn]] inline void ExitGroup(int code) {
  for (;;) Call(SYS_exit_group, code);
}

}  // namespace berth::raw
