/**
 * berth's default seccomp profile: the semantics of Docker's default profile (moby/profiles),
 * laid out by purpose. Anything not listed fails with EPERM. Differences from Docker are listed
 * in `docs/design/seccomp.md`.
 * @module
 */
import type { SeccompProfile, SeccompRule } from './types.js';

/**
 * Everything a process needs that is either harmless or already namespaced and capability
 * checked by the kernel. Only 64-bit names: berth refuses i386 and x32 syscalls outright, so the
 * `*32`/`*_time64`/`socketcall` variants Docker lists have nothing to match. Names the syscall
 * table does not know yet are skipped by the compiler.
 */
const ALLOWED: Record<string, readonly string[]> = {
  files: [
    'access', 'faccessat', 'faccessat2', 'chdir', 'fchdir', 'getcwd',
    'open', 'openat', 'openat2', 'creat', 'close', 'close_range', 'dup', 'dup2', 'dup3', 'fcntl', 'flock',
    'read', 'readv', 'pread64', 'preadv', 'preadv2', 'readahead',
    'write', 'writev', 'pwrite64', 'pwritev', 'pwritev2',
    'lseek', 'fadvise64', 'fallocate', 'ftruncate', 'truncate',
    'fsync', 'fdatasync', 'sync', 'syncfs', 'sync_file_range',
    'sendfile', 'splice', 'tee', 'vmsplice', 'copy_file_range', 'cachestat',
    'stat', 'fstat', 'lstat', 'newfstatat', 'statx', 'statfs', 'fstatfs',
    'getdents', 'getdents64', 'readlink', 'readlinkat',
    'mkdir', 'mkdirat', 'rmdir', 'mknod', 'mknodat',
    'link', 'linkat', 'symlink', 'symlinkat', 'unlink', 'unlinkat', 'rename', 'renameat', 'renameat2',
    'chmod', 'fchmod', 'fchmodat', 'fchmodat2', 'chown', 'fchown', 'fchownat', 'lchown', 'umask',
    'utime', 'utimes', 'utimensat', 'futimesat',
    // Only producing a handle; using one (open_by_handle_at) is the CAP_DAC_READ_SEARCH rule below.
    'name_to_handle_at',
  ],
  xattrs: [
    'getxattr', 'lgetxattr', 'fgetxattr', 'getxattrat',
    'setxattr', 'lsetxattr', 'fsetxattr', 'setxattrat',
    'listxattr', 'llistxattr', 'flistxattr', 'listxattrat',
    'removexattr', 'lremovexattr', 'fremovexattr', 'removexattrat',
  ],
  events: [
    'poll', 'ppoll', 'select', 'pselect6',
    'epoll_create', 'epoll_create1', 'epoll_ctl', 'epoll_wait', 'epoll_pwait', 'epoll_pwait2',
    'epoll_ctl_old', 'epoll_wait_old',
    'pipe', 'pipe2',
    'eventfd', 'eventfd2', 'signalfd', 'signalfd4', 'timerfd_create', 'timerfd_gettime', 'timerfd_settime',
    'inotify_init', 'inotify_init1', 'inotify_add_watch', 'inotify_rm_watch',
    // fanotify_init needs CAP_SYS_ADMIN (below); marks on an existing group are fine.
    'fanotify_mark',
  ],
  // io_uring is deliberately absent: its syscalls bypass the per-operation seccomp checks and
  // have been a steady source of kernel CVEs; recent Docker refuses it too.
  aio: ['io_setup', 'io_destroy', 'io_submit', 'io_cancel', 'io_getevents', 'io_pgetevents'],
  ioctl: ['ioctl', 'ioprio_get', 'ioprio_set'],
  memory: [
    'brk', 'mmap', 'munmap', 'mremap', 'mprotect', 'madvise', 'mincore', 'msync', 'remap_file_pages',
    'mlock', 'mlock2', 'mlockall', 'munlock', 'munlockall',
    'memfd_create', 'memfd_secret', 'membarrier', 'mseal', 'map_shadow_stack',
    'pkey_alloc', 'pkey_free', 'pkey_mprotect', 'process_mrelease',
  ],
  processes: [
    'execve', 'execveat', 'fork', 'vfork', 'exit', 'exit_group', 'wait4', 'waitid',
    'kill', 'tkill', 'tgkill', 'pidfd_open', 'pidfd_send_signal',
    'getpid', 'getppid', 'gettid', 'getpgid', 'getpgrp', 'setpgid', 'getsid', 'setsid',
    'set_tid_address', 'get_robust_list', 'set_robust_list', 'rseq', 'restart_syscall',
    'futex', 'futex_wait', 'futex_wake', 'futex_requeue', 'futex_waitv',
    'prctl', 'get_thread_area', 'set_thread_area', 'getcpu',
    'capget', 'capset',
    // Processes may confine themselves further.
    'seccomp', 'landlock_create_ruleset', 'landlock_add_rule', 'landlock_restrict_self',
  ],
  signals: [
    'rt_sigaction', 'rt_sigprocmask', 'rt_sigreturn', 'rt_sigpending', 'rt_sigsuspend',
    'rt_sigtimedwait', 'rt_sigqueueinfo', 'rt_tgsigqueueinfo', 'sigaltstack', 'pause',
  ],
  credentials: [
    'getuid', 'geteuid', 'getresuid', 'getgid', 'getegid', 'getresgid', 'getgroups',
    'setuid', 'setreuid', 'setresuid', 'setfsuid', 'setgid', 'setregid', 'setresgid', 'setfsgid', 'setgroups',
  ],
  scheduling: [
    'getrlimit', 'setrlimit', 'prlimit64', 'getrusage', 'getpriority', 'setpriority',
    'sched_yield', 'sched_getaffinity', 'sched_setaffinity', 'sched_getattr', 'sched_setattr',
    'sched_getparam', 'sched_setparam', 'sched_getscheduler', 'sched_setscheduler',
    'sched_get_priority_min', 'sched_get_priority_max', 'sched_rr_get_interval',
  ],
  // Setting the clock is the CAP_SYS_TIME rule; adjtimex and clock_adjtime check it themselves
  // when asked to change anything.
  time: [
    'time', 'gettimeofday', 'clock_gettime', 'clock_getres', 'clock_nanosleep', 'nanosleep',
    'adjtimex', 'clock_adjtime', 'alarm', 'getitimer', 'setitimer', 'times',
    'timer_create', 'timer_delete', 'timer_gettime', 'timer_settime', 'timer_getoverrun',
  ],
  system: ['uname', 'sysinfo', 'getrandom', 'statmount', 'listmount'],
  // socket itself is conditional (AF_VSOCK), see SOCKET_RULES.
  sockets: [
    'socketpair', 'bind', 'connect', 'listen', 'accept', 'accept4', 'shutdown',
    'getsockname', 'getpeername', 'getsockopt', 'setsockopt',
    'sendto', 'sendmsg', 'sendmmsg', 'recvfrom', 'recvmsg', 'recvmmsg',
  ],
  // SysV IPC and POSIX queues live in the container's IPC namespace.
  ipc: [
    'msgget', 'msgsnd', 'msgrcv', 'msgctl', 'semget', 'semop', 'semtimedop', 'semctl',
    'shmget', 'shmat', 'shmdt', 'shmctl',
    'mq_open', 'mq_unlink', 'mq_timedsend', 'mq_timedreceive', 'mq_notify', 'mq_getsetattr',
  ],
};

/** Namespace-creating clone flags: CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET. */
const CLONE_NAMESPACE_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000;
const AF_VSOCK = 40;
const EPERM = 1;
const ENOSYS = 38;

function allow(names: readonly string[], rest: Omit<SeccompRule, 'names' | 'action'> = {}): SeccompRule {
  return { names: [...names], action: 'SCMP_ACT_ALLOW', ...rest };
}

const onlyWith = (...caps: string[]) => ({ includes: { caps } });
const unlessCap = (...caps: string[]) => ({ excludes: { caps } });

/** Plain, unconditional allows. */
const BASE_RULES: SeccompRule[] = [
  allow(Object.values(ALLOWED).flat()),
  // x86 thread-pointer and LDT setup; libc and Wine need them.
  allow(['arch_prctl', 'modify_ldt'], { includes: { arches: ['amd64'] } }),
  // Before Linux 4.8 a ptraced process could rewrite a syscall after seccomp had vetted it.
  allow(['ptrace', 'process_vm_readv', 'process_vm_writev'], { includes: { minKernel: '4.8' } }),
];

/**
 * AF_VSOCK reaches the hypervisor's host side, which container networking does not isolate.
 * Docker allows `socket` when the domain is not 40, compared on all 64 bits; but `domain` is an
 * `int`, so 40 with any high bit set passes that test and the kernel then truncates it to 40.
 * Matching on the low 32 bits first closes that hole.
 */
const SOCKET_RULES: SeccompRule[] = [
  {
    names: ['socket'],
    action: 'SCMP_ACT_ERRNO',
    errnoRet: EPERM,
    args: [{ index: 0, value: 0xffffffff, valueTwo: AF_VSOCK, op: 'SCMP_CMP_MASKED_EQ' }],
  },
  allow(['socket']),
];

/**
 * personality(2) can turn on READ_IMPLIES_EXEC or ADDR_NO_RANDOMIZE; only these personas are
 * allowed: PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, and 0xffffffff which only queries.
 */
const PERSONALITY_RULES: SeccompRule[] = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff].map((persona) =>
  allow(['personality'], { args: [{ index: 0, value: persona, op: 'SCMP_CMP_EQ' }] }),
);

/** Syscalls only a holder of the named capability may make. */
const CAPABILITY_RULES: SeccompRule[] = [
  allow(
    [
      'mount', 'umount2', 'pivot_root', 'mount_setattr', 'move_mount', 'open_tree',
      'fsopen', 'fsconfig', 'fsmount', 'fspick',
      'unshare', 'setns', 'clone', 'clone3',
      'sethostname', 'setdomainname', 'quotactl', 'quotactl_fd',
      'fanotify_init', 'lookup_dcookie', 'syslog', 'bpf', 'perf_event_open',
      'lsm_get_self_attr', 'lsm_set_self_attr', 'lsm_list_modules',
    ],
    onlyWith('CAP_SYS_ADMIN'),
  ),
  // Without CAP_SYS_ADMIN, clone may make threads and processes but no namespaces. clone's flags
  // are a full register on x86_64, but the kernel only reads the low 32 bits, and so does the mask.
  allow(['clone'], {
    args: [{ index: 0, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }],
    ...unlessCap('CAP_SYS_ADMIN'),
  }),
  // clone3 passes its flags in memory, where seccomp cannot look. ENOSYS (not EPERM) makes glibc
  // fall back to clone, whose flags the rule above can check.
  { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS, ...unlessCap('CAP_SYS_ADMIN') },
  // "Shocker": file handles bypass the mount namespace, reaching any file on the filesystem.
  allow(['open_by_handle_at'], onlyWith('CAP_DAC_READ_SEARCH')),
  allow(['reboot'], onlyWith('CAP_SYS_BOOT')),
  allow(['chroot'], onlyWith('CAP_SYS_CHROOT')),
  allow(['init_module', 'finit_module', 'delete_module'], onlyWith('CAP_SYS_MODULE')),
  allow(['acct'], onlyWith('CAP_SYS_PACCT')),
  allow(['ptrace', 'process_vm_readv', 'process_vm_writev', 'kcmp', 'pidfd_getfd', 'process_madvise'], onlyWith('CAP_SYS_PTRACE')),
  allow(['iopl', 'ioperm'], onlyWith('CAP_SYS_RAWIO')),
  allow(['settimeofday', 'clock_settime'], onlyWith('CAP_SYS_TIME')),
  allow(['vhangup'], onlyWith('CAP_SYS_TTY_CONFIG')),
  allow(['get_mempolicy', 'set_mempolicy', 'set_mempolicy_home_node', 'mbind'], onlyWith('CAP_SYS_NICE')),
  allow(['syslog'], onlyWith('CAP_SYSLOG')),
  allow(['bpf'], onlyWith('CAP_BPF')),
  allow(['perf_event_open'], onlyWith('CAP_PERFMON')),
];

// Never allowed, whatever the capabilities: the kernel keyring is not namespaced (keyctl,
// add_key, request_key); kexec_load/kexec_file_load replace the host kernel; swapon/swapoff,
// userfaultfd (a classic exploit primitive for stalling kernel copies), move_pages and
// migrate_pages (other processes' NUMA placement), io_uring_*, and obsolete syscalls (uselib,
// ustat, sysfs, _sysctl, nfsservctl, ...). They simply have no rule and get the default action.

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/**
 * berth's default profile, in Docker's JSON shape: deny with EPERM by default, allow the list
 * above, and let capabilities unlock the matching privileged syscalls. Frozen, so it can be
 * cached by identity.
 */
export const DEFAULT_SECCOMP_PROFILE: Readonly<SeccompProfile> = deepFreeze({
  defaultAction: 'SCMP_ACT_ERRNO',
  defaultErrnoRet: EPERM,
  syscalls: [...BASE_RULES, ...SOCKET_RULES, ...PERSONALITY_RULES, ...CAPABILITY_RULES],
});
