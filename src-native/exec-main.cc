// berth-exec: joins a running container and starts one process in it, on Node's behalf, so
// that no process sharing Node's memory ever enters a container (spawn-exec.cc tells the whole
// path). A freestanding static program: no libc, hence no libc start-up, which on virtual
// machines costs more than the rest of an exec (glibc probes the CPU with dozens of CPUID
// instructions, each a trap to the hypervisor). Only raw system calls (raw-syscall.h).
//
// `berth-exec park` is the other use: a pooled sandbox's parked PID 1 (park-main.cc).
//
// Descriptors from the addon's trampoline: 3 the exec plan (a memfd, exec-plan.h), 4 the sync
// socket to Node, 5 a pidfd of the container's PID 1, 6..8 stdio when the plan says so.
#include <fcntl.h>
#include <linux/errno.h>
#include <linux/sched.h>
#include <linux/prctl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "clone3-vm.h"
#include "exec-plan.h"
#include "park-main.h"
#include "process-setup.h"
#include "raw-syscall.h"

// The compiler may emit calls to these for struct copies and zeroing.
extern "C" {
void* memcpy(void* dst, const void* src, size_t n) {
  auto* d = static_cast<char*>(dst);
  const auto* s = static_cast<const char*>(src);
  for (size_t i = 0; i < n; ++i) d[i] = s[i];
  return dst;
}
void* memmove(void* dst, const void* src, size_t n) {
  auto* d = static_cast<char*>(dst);
  const auto* s = static_cast<const char*>(src);
  if (d < s) {
    for (size_t i = 0; i < n; ++i) d[i] = s[i];
  } else {
    for (size_t i = n; i > 0; --i) d[i - 1] = s[i - 1];
  }
  return dst;
}
void* memset(void* dst, int c, size_t n) {
  auto* d = static_cast<char*>(dst);
  for (size_t i = 0; i < n; ++i) d[i] = static_cast<char>(c);
  return dst;
}
int memcmp(const void* a, const void* b, size_t n) {
  const auto* x = static_cast<const unsigned char*>(a);
  const auto* y = static_cast<const unsigned char*>(b);
  for (size_t i = 0; i < n; ++i) {
    if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
  }
  return 0;
}
}

namespace berth {
namespace {

using raw::Call;

constexpr int kPlanFd = kExecPlanFd;
constexpr int kSyncFd = kExecSyncFd;
constexpr int kJoinFd = kExecJoinFd;
constexpr int kStdioFd = kExecStdioFd;

// The process runs on this memory until its execve (CLONE_VM): this program's, never Node's.
alignas(16) char g_process_stack[128 * 1024];
const char* g_pointers[64 * 1024];
ExecPlanView g_plan;
ProcessContext g_process;
int g_close_in_process[2];

[[noreturn]] void Fail(long neg_errno, const char* syscall, const char* path) {
  ReportAndExit(kSyncFd, ChildReportKind::kSetupError, neg_errno, syscall, path);
}

long Check(long r, const char* syscall, const char* path) {
  if (r < 0) Fail(r, syscall, path);
  return r;
}

int ProcessMain(void*) {
  // Without CLONE_FILES the descriptor table is the process's own copy.
  for (int fd : g_close_in_process) raw::Close(fd);
  FinishAndExec(&g_process);
}

[[noreturn]] void Main() {
  // Not dumpable, before anything can see the process it starts: that process shares this
  // memory until its execve, so the container cannot ptrace it or open its /proc/<pid>/mem,
  // environ or fd meanwhile.
  Call(SYS_prctl, PR_SET_DUMPABLE, 0, 0, 0, 0);
  Call(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  // Node ignores SIGPIPE, and ignored signals survive execve: the process gets Docker's
  // defaults. The mask (all blocked since the trampoline) is cleared just before its execve.
  ResetSignalDispositions();
  // Node's stdio must not travel on; the host's /dev/null stands in (a container's /dev/null
  // is whatever the container made of it).
  int devnull = static_cast<int>(Check(Call(SYS_openat, AT_FDCWD, "/dev/null", O_RDWR | O_CLOEXEC), "open", "/dev/null"));
  for (int fd = 0; fd < 3; ++fd) {
    if (fd != devnull) Call(SYS_dup3, devnull, fd, 0);
  }

  struct stat st {};
  Check(Call(SYS_fstat, kPlanFd, &st), "fstat", "exec plan");
  void* plan = reinterpret_cast<void*>(
      Call(SYS_mmap, nullptr, st.st_size, PROT_READ, MAP_PRIVATE, kPlanFd, 0));
  if (reinterpret_cast<long>(plan) < 0 && reinterpret_cast<long>(plan) > -4096) {
    Fail(reinterpret_cast<long>(plan), "mmap", "exec plan");
  }
  raw::Close(kPlanFd);
  if (!ReadExecPlan(static_cast<const char*>(plan), static_cast<size_t>(st.st_size), &g_plan, g_pointers,
                    sizeof(g_pointers) / sizeof(g_pointers[0]))) {
    Fail(-EINVAL, "decode", "exec plan");
  }

  // Node writes this process into the container's cgroups, then says "go".
  char go = 0;
  long r;
  do {
    r = raw::Read(kSyncFd, &go, 1);
  } while (r == -EINTR);
  if (r != 1 || go != 'G') raw::ExitGroup(125);

  Check(Call(SYS_setns, kJoinFd, g_plan.join_namespaces), "setns", "container");
  raw::Close(kJoinFd);
  int status[2];
  Check(Call(SYS_socketpair, AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, status), "socketpair", "exec status");

  g_process.spec = &g_plan.process;
  g_process.sync_fd = status[1];
  for (int i = 0; i < 3; ++i) g_process.stdio_fds[i] = (g_plan.stdio_given & (1 << i)) ? kStdioFd + i : devnull;
  g_process.argv = g_plan.argv;
  g_process.envp = g_plan.envp;
  g_close_in_process[0] = kSyncFd;
  g_close_in_process[1] = status[0];

  // setns() into the pid namespace places only children there: clone once more. CLONE_PARENT
  // makes the process a child of Node (which reaps it through the pidfd); CLONE_VM spares a
  // copy of page tables. Its status socket is its own: Node's worker thread waits only for
  // this program's message, never for a process the container can see and stop.
  int pidfd = -1;
  clone_args args{};
  args.flags = CLONE_VM | CLONE_PARENT | CLONE_PIDFD;
  args.pidfd = reinterpret_cast<uint64_t>(&pidfd);
  args.stack = reinterpret_cast<uint64_t>(g_process_stack);
  args.stack_size = sizeof(g_process_stack);
  long pid = berth_clone3_vm(&args, sizeof(args), ProcessMain, nullptr);
  if (pid < 0) Fail(pid, "clone3", "exec");
  raw::Close(status[1]);

  struct {
    char tag;
    int pid;
  } __attribute__((packed)) payload{'P', static_cast<int>(pid)};
  int fds[2] = {pidfd, status[0]};
  long sent = SendWithFds(kSyncFd, &payload, sizeof(payload), fds, 2);
  // Node never learnt of the process: it must not run.
  if (sent < 0) Call(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0);
  raw::ExitGroup(sent < 0 ? 125 : 0);
}

}  // namespace
}  // namespace berth

// `berth-exec park` (argv as the launch gives it: "berth-init", "park"): a pooled sandbox's
// PID 1 (park-main.h), its control socket on stdin. Anything else: an exec, as above.
extern "C" [[noreturn]] void berth_exec_main(const long* sp) {
  long argc = sp[0];
  const char* const* argv = reinterpret_cast<const char* const*>(sp + 1);
  if (argc == 2) {
    const char* mode = argv[1];
    if (mode[0] == 'p' && mode[1] == 'a' && mode[2] == 'r' && mode[3] == 'k' && mode[4] == '\0') berth::RunPark(0);
  }
  berth::Main();
}

// The entry point: no C runtime to set up. The kernel's stack holds argc, then argv; it is
// aligned as the ABI wants for a call.
asm(R"(
    .text
    .globl _start
    .type _start, @function
_start:
    xor %ebp, %ebp
    mov %rsp, %rdi
    and $-16, %rsp
    call berth_exec_main
    hlt
    .size _start, .-_start
    .section .note.GNU-stack,"",@progbits
    .text
)");
