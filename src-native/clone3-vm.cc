#include "clone3-vm.h"

#include <sys/syscall.h>

// x86_64 only (berth targets Linux x64). The syscall instruction clobbers rcx and r11; r8 and
// r9 survive it and are copied into the child, so they carry fn and arg across.
static_assert(SYS_clone3 == 435, "clone3 syscall number");
static_assert(SYS_exit == 60, "exit syscall number");

asm(R"(
    .text
    .globl berth_clone3_vm
    .type berth_clone3_vm, @function
berth_clone3_vm:
    mov %rdx, %r8
    mov %rcx, %r9
    mov $435, %eax
    syscall
    test %rax, %rax
    jz 1f
    ret
1:
    xor %ebp, %ebp
    and $-16, %rsp
    mov %r9, %rdi
    call *%r8
    mov %eax, %edi
    mov $60, %eax
    syscall
    hlt
    .size berth_clone3_vm, .-berth_clone3_vm
    .section .note.GNU-stack,"",@progbits
    .text
)");
