// clone3() for a child that shares our memory (CLONE_VM) and runs on its own stack.
//
// glibc has no clone3 wrapper, and a plain syscall() cannot be used: the child returns from
// the syscall on the new, empty stack and would "ret" into garbage. This tiny assembly routine
// does what glibc's internal __clone3 does: in the child, call fn(arg) on the new stack, then
// exit with its result. We need clone3 for CLONE_INTO_CGROUP (cgroup v2), which places the
// child in its cgroup at birth instead of migrating it afterwards: a migration takes the
// kernel's threadgroup rwsem for writing, which can wait a whole RCU grace period.
#pragma once

#include <cstddef>

extern "C" {
// Returns the child's pid in the parent, or -errno (not via errno). Never returns in the child.
long berth_clone3_vm(void* clone_args, size_t size, int (*fn)(void*), void* arg);
}
