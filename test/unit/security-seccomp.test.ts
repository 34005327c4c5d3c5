import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ValidationError } from '../../lib/errors.js';
import {
  compileSeccomp,
  DEFAULT_SECCOMP_PROFILE,
  seccompProgramFor,
  validateSeccompProfile,
  type SeccompOperator,
  type SeccompProfile,
} from '../../lib/security/seccomp/index.js';
import { MAX_SYSCALL_X86_64, SYSCALLS_X86_64 } from '../../lib/security/seccomp/syscalls-x86_64.js';
import { AUDIT_ARCH_I386, execute, parseProgram, verdict, type SeccompData, type Verdict } from '../helpers/bpf-interpreter.js';

const EPERM = 1;
const EACCES = 13;
const ENOSYS = 38;
const X32 = 0x40000000;
const AUDIT_ARCH_AARCH64 = 0xc00000b7;

const CLONE_NEWNS = 0x00020000;
const CLONE_NEWCGROUP = 0x02000000;
const CLONE_NEWUTS = 0x04000000;
const CLONE_NEWIPC = 0x08000000;
const CLONE_NEWUSER = 0x10000000;
const CLONE_NEWPID = 0x20000000;
const CLONE_NEWNET = 0x40000000;
/** What glibc's pthread_create passes. */
const CLONE_THREAD_FLAGS = 0x003d0f00;
/** What glibc's fork passes: CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD. */
const CLONE_FORK_FLAGS = 0x01200011;

/** Docker's default capability set (moby oci/caps/defaults.go). */
const DOCKER_DEFAULT_CAPS = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];
const ALL_CAPS = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN',
  'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT',
  'CAP_SYS_PTRACE', 'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE',
  'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL',
  'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND',
  'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
];

const ALLOW: Verdict = { action: 'allow' };
const errno = (n: number): Verdict => ({ action: 'errno', errno: n });

function nr(name: string): number {
  const n = SYSCALLS_X86_64.get(name);
  assert.ok(n !== undefined, `${name} is in the x86_64 table`);
  return n;
}

function compile(profile: SeccompProfile, capabilities: string[] = [], kernelRelease = '6.8.0'): Buffer {
  return compileSeccomp(profile, { capabilities, kernelRelease });
}

function call(program: Buffer, name: string, args: Array<bigint | number> = [], extra: Partial<SeccompData> = {}): Verdict {
  return verdict(program, { nr: nr(name), args, ...extra });
}

const defaultProgram = compile(DEFAULT_SECCOMP_PROFILE);
const adminProgram = compile(DEFAULT_SECCOMP_PROFILE, ['CAP_SYS_ADMIN']);

describe('default profile, no capabilities', () => {
  it('allows ordinary syscalls', () => {
    for (const name of ['read', 'write', 'openat', 'close', 'mmap', 'execve', 'exit_group', 'futex', 'getpid',
      'rt_sigaction', 'arch_prctl', 'epoll_wait', 'accept4', 'setuid', 'statx', 'rseq', 'ptrace']) {
      assert.deepEqual(call(defaultProgram, name), ALLOW, name);
    }
  });

  it('allows clone for threads and fork', () => {
    assert.deepEqual(call(defaultProgram, 'clone', [CLONE_THREAD_FLAGS]), ALLOW);
    assert.deepEqual(call(defaultProgram, 'clone', [CLONE_FORK_FLAGS]), ALLOW);
    assert.deepEqual(call(defaultProgram, 'clone', [0]), ALLOW);
  });

  it('refuses clone with any namespace flag', () => {
    for (const flag of [CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET]) {
      assert.deepEqual(call(defaultProgram, 'clone', [CLONE_FORK_FLAGS | flag]), errno(EPERM), `flag 0x${flag.toString(16)}`);
    }
    // The kernel reads only the low 32 bits of clone's flags; high bits must not launder a flag.
    assert.deepEqual(call(defaultProgram, 'clone', [(1n << 40n) | BigInt(CLONE_NEWUSER)]), errno(EPERM));
  });

  it('makes clone3 fail with ENOSYS so libc falls back to clone', () => {
    assert.deepEqual(call(defaultProgram, 'clone3'), errno(ENOSYS));
  });

  it('refuses privileged and dangerous syscalls with EPERM', () => {
    for (const name of ['mount', 'umount2', 'pivot_root', 'unshare', 'setns', 'keyctl', 'add_key', 'request_key',
      'bpf', 'perf_event_open', 'kexec_load', 'kexec_file_load', 'init_module', 'finit_module', 'delete_module',
      'reboot', 'swapon', 'acct', 'settimeofday', 'clock_settime', 'iopl', 'ioperm', 'syslog', 'open_by_handle_at',
      'userfaultfd', 'io_uring_setup', 'kcmp', 'process_madvise', 'mbind', 'vhangup', 'chroot', 'fsopen',
      'sethostname', 'quotactl', 'lookup_dcookie', 'move_pages']) {
      assert.deepEqual(call(defaultProgram, name), errno(EPERM), name);
    }
  });

  it('allows only the harmless personalities', () => {
    for (const persona of [0, 0x8, 0x20000, 0x20008, 0xffffffff]) {
      assert.deepEqual(call(defaultProgram, 'personality', [persona]), ALLOW, `persona 0x${persona.toString(16)}`);
    }
    for (const persona of [0x0040000 /* ADDR_NO_RANDOMIZE */, 0x0400000 /* READ_IMPLIES_EXEC */, 0x1, (1n << 32n)]) {
      assert.deepEqual(call(defaultProgram, 'personality', [persona]), errno(EPERM), `persona 0x${persona.toString(16)}`);
    }
  });

  it('refuses AF_VSOCK sockets, including with garbage in the high word', () => {
    assert.deepEqual(call(defaultProgram, 'socket', [2 /* AF_INET */, 1]), ALLOW);
    assert.deepEqual(call(defaultProgram, 'socket', [1 /* AF_UNIX */, 1]), ALLOW);
    assert.deepEqual(call(defaultProgram, 'socket', [40]), errno(EPERM));
    // socket's domain is an int: the kernel truncates 0x1_00000028 to AF_VSOCK.
    assert.deepEqual(call(defaultProgram, 'socket', [(1n << 32n) | 40n]), errno(EPERM));
  });

  it('kills the process for any architecture but x86_64', () => {
    for (const arch of [AUDIT_ARCH_I386, AUDIT_ARCH_AARCH64, 0]) {
      for (const n of [0, 1, 20, 59, 400]) {
        assert.deepEqual(verdict(defaultProgram, { nr: n, arch }), { action: 'kill_process' });
      }
    }
  });

  it('refuses every x32 syscall with ENOSYS', () => {
    for (const name of ['read', 'getpid', 'mount', 'clone']) {
      assert.deepEqual(verdict(defaultProgram, { nr: nr(name) | X32 }), errno(ENOSYS), name);
    }
    assert.deepEqual(verdict(defaultProgram, { nr: 520 | X32 /* x32 execve */ }), errno(ENOSYS));
    assert.deepEqual(verdict(defaultProgram, { nr: -1 }), errno(ENOSYS));
  });

  it('answers ENOSYS for numbers beyond the syscall table and EPERM for holes in it', () => {
    assert.deepEqual(verdict(defaultProgram, { nr: MAX_SYSCALL_X86_64 + 1 }), errno(ENOSYS));
    assert.deepEqual(verdict(defaultProgram, { nr: 0x3fffffff }), errno(ENOSYS));
    assert.deepEqual(verdict(defaultProgram, { nr: 0x80000000 }), errno(ENOSYS));
    assert.ok(![...SYSCALLS_X86_64.values()].includes(400));
    assert.deepEqual(verdict(defaultProgram, { nr: 400 }), errno(EPERM));
  });

  it('refuses ptrace on kernels before 4.8, where it could rewrite a vetted syscall', () => {
    const old = compile(DEFAULT_SECCOMP_PROFILE, [], '4.4.0-210-generic');
    assert.deepEqual(call(old, 'ptrace'), errno(EPERM));
    assert.deepEqual(call(compile(DEFAULT_SECCOMP_PROFILE, [], '4.8.0'), 'ptrace'), ALLOW);
  });

  it('stays small and shallow', () => {
    assert.ok(defaultProgram.length / 8 < 4096);
    let worst = 0;
    for (let n = 0; n <= MAX_SYSCALL_X86_64 + 8; n++) {
      for (const a0 of [0, CLONE_NEWUSER, 40, 0xffffffff]) worst = Math.max(worst, execute(defaultProgram, { nr: n, args: [a0] }).steps);
    }
    // Dispatch is a binary search (~10 steps); personality's five alternatives are the longest chain.
    assert.ok(worst <= 40, `worst path ${worst} instructions`);
  });
});

describe('default profile with capabilities', () => {
  it('CAP_SYS_ADMIN unlocks mount, namespaces and clone3', () => {
    for (const name of ['mount', 'umount2', 'pivot_root', 'unshare', 'setns', 'sethostname', 'fsopen', 'move_mount',
      'bpf', 'perf_event_open', 'syslog', 'clone3']) {
      assert.deepEqual(call(adminProgram, name), ALLOW, name);
    }
    assert.deepEqual(call(adminProgram, 'clone', [CLONE_NEWUSER | CLONE_NEWNS | CLONE_FORK_FLAGS]), ALLOW);
    assert.deepEqual(call(adminProgram, 'keyctl'), errno(EPERM));
    assert.deepEqual(call(adminProgram, 'kexec_load'), errno(EPERM));
  });

  it('each capability unlocks its own group only', () => {
    const groups: Array<[string, string[]]> = [
      ['CAP_SYS_MODULE', ['init_module', 'finit_module', 'delete_module']],
      ['CAP_SYS_BOOT', ['reboot']],
      ['CAP_SYS_PTRACE', ['kcmp', 'pidfd_getfd', 'process_madvise']],
      ['CAP_SYS_TIME', ['settimeofday', 'clock_settime']],
      ['CAP_SYS_NICE', ['mbind', 'set_mempolicy', 'get_mempolicy']],
      ['CAP_SYS_RAWIO', ['iopl', 'ioperm']],
      ['CAP_SYSLOG', ['syslog']],
      ['CAP_BPF', ['bpf']],
      ['CAP_PERFMON', ['perf_event_open']],
      ['CAP_SYS_PACCT', ['acct']],
      ['CAP_SYS_CHROOT', ['chroot']],
      ['CAP_DAC_READ_SEARCH', ['open_by_handle_at']],
      ['CAP_SYS_TTY_CONFIG', ['vhangup']],
    ];
    for (const [cap, names] of groups) {
      const program = compile(DEFAULT_SECCOMP_PROFILE, [cap]);
      for (const name of names) {
        assert.deepEqual(call(program, name), ALLOW, `${name} with ${cap}`);
        assert.deepEqual(call(defaultProgram, name), errno(EPERM), `${name} without ${cap}`);
      }
      assert.deepEqual(call(program, 'mount'), errno(EPERM), `mount with only ${cap}`);
    }
  });

  it("allows chroot with Docker's default capabilities", () => {
    const program = compile(DEFAULT_SECCOMP_PROFILE, DOCKER_DEFAULT_CAPS);
    assert.deepEqual(call(program, 'chroot'), ALLOW);
    assert.deepEqual(call(program, 'mount'), errno(EPERM));
  });

  it('accepts capability names without the CAP_ prefix', () => {
    assert.deepEqual(compile(DEFAULT_SECCOMP_PROFILE, ['sys_admin']), adminProgram);
  });

  it('never allows the keyring or kexec, even with every capability', () => {
    const program = compile(DEFAULT_SECCOMP_PROFILE, ALL_CAPS);
    assert.ok(program.length / 8 < 4096);
    for (const name of ['keyctl', 'add_key', 'request_key', 'kexec_load', 'kexec_file_load', 'io_uring_enter']) {
      assert.deepEqual(call(program, name), errno(EPERM), name);
    }
    assert.deepEqual(call(program, 'clone', [CLONE_NEWUSER]), ALLOW);
  });
});

describe('custom profiles', () => {
  const only = (rules: SeccompProfile['syscalls'], defaultAction: SeccompProfile['defaultAction'] = 'SCMP_ACT_ERRNO'): SeccompProfile =>
    ({ defaultAction, syscalls: rules });

  it('compares 64-bit arguments on both words', () => {
    const ops: SeccompOperator[] = ['SCMP_CMP_EQ', 'SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_GE', 'SCMP_CMP_GT'];
    const operands = [0n, 1n, 0xffffffffn, 0x1_00000000n, 0x1_00000005n, 0x2_00000004n, 0x7fffffff_ffffffffn, 0xffffffff_ffffffffn];
    const probes = new Set<bigint>();
    for (const v of operands) for (const d of [-1n, 0n, 1n, 0x1_00000000n, -0x1_00000000n]) probes.add(BigInt.asUintN(64, v + d));
    const holds = (op: SeccompOperator, a: bigint, v: bigint): boolean =>
      ({ SCMP_CMP_EQ: a === v, SCMP_CMP_NE: a !== v, SCMP_CMP_LT: a < v, SCMP_CMP_LE: a <= v,
        SCMP_CMP_GE: a >= v, SCMP_CMP_GT: a > v, SCMP_CMP_MASKED_EQ: false })[op];
    for (const op of ops) {
      for (const value of operands) {
        const program = compile(only([{ names: ['read'], action: 'SCMP_ACT_ALLOW', args: [{ index: 3, value, op }] }]));
        for (const a of probes) {
          const expected: Verdict = holds(op, a, value) ? ALLOW : errno(EPERM);
          assert.deepEqual(call(program, 'read', [0, 0, 0, a]), expected, `${op} 0x${a.toString(16)} vs 0x${value.toString(16)}`);
        }
      }
    }
  });

  it('MASKED_EQ takes value as the mask and valueTwo as the expected bits', () => {
    const program = compile(only([{
      names: ['ioctl'], action: 'SCMP_ACT_ALLOW',
      args: [{ index: 1, value: 0xff000000_000000ffn, valueTwo: 0x12000000_00000034n, op: 'SCMP_CMP_MASKED_EQ' }],
    }]));
    assert.deepEqual(call(program, 'ioctl', [0, 0x12abcdef_00001234n]), ALLOW);
    assert.deepEqual(call(program, 'ioctl', [0, 0x12000000_00000034n]), ALLOW);
    assert.deepEqual(call(program, 'ioctl', [0, 0x13000000_00000034n]), errno(EPERM));
    assert.deepEqual(call(program, 'ioctl', [0, 0x12000000_00000035n]), errno(EPERM));
    assert.deepEqual(call(program, 'ioctl', [0, 0x34]), errno(EPERM));
    // Expected bits outside the mask can never match.
    const never = compile(only([{ names: ['ioctl'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0xf0, valueTwo: 0x0f, op: 'SCMP_CMP_MASKED_EQ' }] }]));
    assert.deepEqual(call(never, 'ioctl', [0x0f]), errno(EPERM));
  });

  it('ANDs the conditions of a rule, and tries rules for a syscall in order', () => {
    const program = compile({
      defaultAction: 'SCMP_ACT_ERRNO',
      defaultErrnoRet: EACCES,
      syscalls: [
        { names: ['write'], action: 'SCMP_ACT_ERRNO', errnoRet: 5, args: [{ index: 0, value: 2, op: 'SCMP_CMP_EQ' }] },
        { names: ['write'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 3, op: 'SCMP_CMP_GE' }, { index: 2, value: 100, op: 'SCMP_CMP_LE' }] },
        { names: ['write'], action: 'SCMP_ACT_LOG', args: [{ index: 0, value: 1, op: 'SCMP_CMP_EQ' }] },
        { names: ['write', 'read'], action: 'SCMP_ACT_TRAP' },
        { names: ['write', 'read'], action: 'SCMP_ACT_ALLOW' },
      ],
    });
    assert.deepEqual(call(program, 'write', [2, 0, 10]), errno(5));
    assert.deepEqual(call(program, 'write', [3, 0, 100]), ALLOW);
    assert.deepEqual(call(program, 'write', [3, 0, 101]), { action: 'trap' });
    assert.deepEqual(call(program, 'write', [1]), { action: 'log' });
    assert.deepEqual(call(program, 'write', [0]), { action: 'trap' });
    assert.deepEqual(call(program, 'read'), { action: 'trap' });
    assert.deepEqual(call(program, 'close'), errno(EACCES));
  });

  it('encodes every action', () => {
    const cases: Array<[SeccompProfile['defaultAction'], number | undefined, Verdict]> = [
      ['SCMP_ACT_ALLOW', undefined, ALLOW],
      ['SCMP_ACT_LOG', undefined, { action: 'log' }],
      ['SCMP_ACT_ERRNO', undefined, errno(EPERM)],
      ['SCMP_ACT_ERRNO', 0, errno(0)],
      ['SCMP_ACT_ERRNO', 4095, errno(4095)],
      ['SCMP_ACT_KILL', undefined, { action: 'kill_thread' }],
      ['SCMP_ACT_KILL_THREAD', undefined, { action: 'kill_thread' }],
      ['SCMP_ACT_KILL_PROCESS', undefined, { action: 'kill_process' }],
      ['SCMP_ACT_TRAP', undefined, { action: 'trap' }],
      ['SCMP_ACT_TRACE', 7, { action: 'trace', data: 7 }],
    ];
    for (const [action, errnoRet, expected] of cases) {
      const program = compile(only([{ names: ['getpid'], action, ...(errnoRet === undefined ? {} : { errnoRet }) }], 'SCMP_ACT_ALLOW'));
      assert.deepEqual(call(program, 'getpid'), expected, action);
      assert.deepEqual(call(program, 'getppid'), ALLOW);
    }
  });

  it('ignores unknown names and rules for other architectures', () => {
    const program = compile(only([
      { names: ['no_such_syscall', 'chown32', 'getpid'], action: 'SCMP_ACT_ALLOW' },
      { names: ['getppid'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['arm64'] } },
      { names: ['gettid'], action: 'SCMP_ACT_ALLOW', excludes: { arches: ['amd64'] } },
      { names: ['getuid'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['amd64'] } },
      { name: 'getgid', action: 'SCMP_ACT_ALLOW' } as never,
    ]));
    assert.deepEqual(call(program, 'getpid'), ALLOW);
    assert.deepEqual(call(program, 'getppid'), errno(EPERM));
    assert.deepEqual(call(program, 'gettid'), errno(EPERM));
    assert.deepEqual(call(program, 'getuid'), ALLOW);
    assert.deepEqual(call(program, 'getgid'), ALLOW);
  });

  it('lets x32 and foreign arches in to no profile, even an allow-by-default one', () => {
    const program = compile(only([{ names: ['mount'], action: 'SCMP_ACT_ERRNO' }], 'SCMP_ACT_ALLOW'));
    assert.deepEqual(call(program, 'mount'), errno(EPERM));
    assert.deepEqual(verdict(program, { nr: nr('mount') | X32 }), errno(ENOSYS));
    assert.deepEqual(verdict(program, { nr: 21 /* i386 mount */, arch: AUDIT_ARCH_I386 }), { action: 'kill_process' });
    // With an allowing default, syscalls newer than the table are allowed too.
    assert.deepEqual(verdict(program, { nr: MAX_SYSCALL_X86_64 + 1 }), ALLOW);
    assert.ok(compile(only([], 'SCMP_ACT_ALLOW')).length / 8 <= 8);
  });

  it('dispatches correctly through a 400-name rule', () => {
    const names = [...SYSCALLS_X86_64.keys()];
    const known = names.filter((_, i) => i % 2 === 0);
    const rule = [...known, ...Array.from({ length: 400 - known.length }, (_, i) => `made_up_${i}`)];
    assert.equal(rule.length, 400);
    const program = compile(only([{ names: rule, action: 'SCMP_ACT_ALLOW' }]));
    for (const [name, n] of SYSCALLS_X86_64) {
      assert.deepEqual(verdict(program, { nr: n }), known.includes(name) ? ALLOW : errno(EPERM), name);
    }
  });

  it('reaches far targets in a program too big for 8-bit jumps', () => {
    // One conditional rule per syscall with its own errno: hundreds of distinct outcomes, so
    // most dispatch edges are far more than 255 instructions from their target.
    const rules: SeccompProfile['syscalls'] = [];
    for (const [name, n] of SYSCALLS_X86_64) {
      rules.push({ names: [name], action: 'SCMP_ACT_ERRNO', errnoRet: n + 1, args: [{ index: 0, value: n, op: 'SCMP_CMP_EQ' }] });
    }
    rules.push({ names: [...SYSCALLS_X86_64.keys()], action: 'SCMP_ACT_TRAP' });
    const program = compile(only(rules));
    const count = program.length / 8;
    assert.ok(count > 1024 && count < 4096, `${count} instructions`);
    const insns = parseProgram(program);
    assert.ok(insns.some((i) => i.code === 0x05), 'uses long jumps');
    for (const n of SYSCALLS_X86_64.values()) {
      assert.deepEqual(verdict(insns, { nr: n, args: [n] }), errno(n + 1), `nr ${n}`);
      assert.deepEqual(verdict(insns, { nr: n, args: [n + 1] }), { action: 'trap' }, `nr ${n}`);
      assert.deepEqual(verdict(insns, { nr: n, args: [BigInt(n) | (1n << 32n)] }), { action: 'trap' }, `nr ${n}`);
    }
  });

  it('refuses a profile that compiles to more than 4096 instructions', () => {
    const rules: SeccompProfile['syscalls'] = [];
    for (let v = 0; v < 3; v++) {
      for (const name of SYSCALLS_X86_64.keys()) {
        rules.push({ names: [name], action: 'SCMP_ACT_ALLOW', args: [{ index: v, value: v, op: 'SCMP_CMP_EQ' }] });
      }
    }
    assert.throws(() => compile(only(rules)), (e: unknown) => e instanceof ValidationError && e.option === 'seccomp' && /4096/.test(e.message));
  });
});

describe('validation', () => {
  const base = (): Record<string, unknown> => ({
    defaultAction: 'SCMP_ACT_ERRNO',
    syscalls: [
      { names: ['read'], action: 'SCMP_ACT_ALLOW' },
      { names: ['write'], action: 'SCMP_ACT_ALLOW' },
      { names: ['close'], action: 'SCMP_ACT_ALLOW' },
      { names: ['ioctl'], action: 'SCMP_ACT_ALLOW', args: [{ index: 1, value: 0x5401, op: 'SCMP_CMP_EQ' }] },
    ],
  });
  const cases: Array<[string, (p: any) => void, string]> = [
    ['unknown action', (p) => { p.syscalls[3].action = 'SCMP_ACT_MAYBE'; }, 'seccomp.syscalls[3].action'],
    ['unknown default action', (p) => { p.defaultAction = 'ALLOW'; }, 'seccomp.defaultAction'],
    ['unknown operator', (p) => { p.syscalls[3].args[0].op = 'SCMP_CMP_LIKE'; }, 'seccomp.syscalls[3].args[0].op'],
    ['argument index 6', (p) => { p.syscalls[3].args[0].index = 6; }, 'seccomp.syscalls[3].args[0].index'],
    ['negative value', (p) => { p.syscalls[3].args[0].value = -1; }, 'seccomp.syscalls[3].args[0].value'],
    ['unsafe number', (p) => { p.syscalls[3].args[0].value = 2 ** 60; }, 'seccomp.syscalls[3].args[0].value'],
    ['bigint above 2^64', (p) => { p.syscalls[3].args[0].valueTwo = 1n << 64n; }, 'seccomp.syscalls[3].args[0].valueTwo'],
    ['args not an array', (p) => { p.syscalls[3].args = { index: 0 }; }, 'seccomp.syscalls[3].args'],
    ['names a string', (p) => { p.syscalls[1].names = 'write'; }, 'seccomp.syscalls[1].names'],
    ['names missing', (p) => { delete p.syscalls[1].names; }, 'seccomp.syscalls[1].names'],
    ['name and names', (p) => { p.syscalls[1].name = 'write'; }, 'seccomp.syscalls[1]'],
    ['rule not an object', (p) => { p.syscalls[2] = 'close'; }, 'seccomp.syscalls[2]'],
    ['syscalls not an array', (p) => { p.syscalls = {}; }, 'seccomp.syscalls'],
    ['errno out of range', (p) => { p.syscalls[0].errnoRet = 70000; }, 'seccomp.syscalls[0].errnoRet'],
    ['default errno negative', (p) => { p.defaultErrnoRet = -1; }, 'seccomp.defaultErrnoRet'],
    ['caps not strings', (p) => { p.syscalls[0].includes = { caps: [1] }; }, 'seccomp.syscalls[0].includes.caps'],
    ['bad minKernel', (p) => { p.syscalls[0].includes = { minKernel: 'new' }; }, 'seccomp.syscalls[0].includes.minKernel'],
    ['minKernel in excludes', (p) => { p.syscalls[0].excludes = { minKernel: '4.8' }; }, 'seccomp.syscalls[0].excludes.minKernel'],
  ];
  for (const [what, mutate, option] of cases) {
    it(`rejects ${what} naming ${option}`, () => {
      const profile = base();
      mutate(profile);
      const isIt = (e: unknown) => e instanceof ValidationError && e.option === option && e.code === 'ERR_INVALID_OPTION';
      assert.throws(() => compileSeccomp(profile as unknown as SeccompProfile, { capabilities: [] }), isIt);
      assert.throws(() => validateSeccompProfile(profile), isIt);
    });
  }

  it('accepts the base profile and Docker-style nulls', () => {
    validateSeccompProfile(base());
    validateSeccompProfile({ defaultAction: 'SCMP_ACT_ALLOW', defaultErrnoRet: null, syscalls: null, archMap: null });
    validateSeccompProfile(DEFAULT_SECCOMP_PROFILE);
  });

  it('rejects a setting that is neither a profile nor a known name', () => {
    assert.throws(() => seccompProgramFor('strict' as never, []), (e: unknown) => e instanceof ValidationError && e.option === 'seccomp');
    assert.throws(() => seccompProgramFor(null as never, []), (e: unknown) => e instanceof ValidationError && e.option === 'seccomp');
  });
});

describe('seccompProgramFor', () => {
  it('returns null for unconfined and the default program otherwise', () => {
    assert.equal(seccompProgramFor('unconfined', ['CAP_SYS_ADMIN']), null);
    assert.deepEqual(seccompProgramFor('default', []), defaultProgram);
    assert.deepEqual(seccompProgramFor('default', ['SYS_ADMIN', 'CAP_SYS_ADMIN']), adminProgram);
  });

  it('caches per profile and capability set, handing out copies', () => {
    const profile: SeccompProfile = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mount'], action: 'SCMP_ACT_ERRNO' }] };
    const first = seccompProgramFor(profile, ['CAP_KILL', 'CAP_CHOWN'])!;
    first.fill(0);
    const second = seccompProgramFor(profile, new Set(['CAP_CHOWN', 'CAP_KILL']))!;
    assert.deepEqual(call(second, 'mount'), errno(EPERM));

    const started = performance.now();
    for (let i = 0; i < 200; i++) seccompProgramFor('default', DOCKER_DEFAULT_CAPS);
    assert.ok(performance.now() - started < 200, 'cached lookups are cheap');
  });
});

describe('syscall table', () => {
  it('has the numbers the kernel ABI fixes', () => {
    assert.equal(nr('read'), 0);
    assert.equal(nr('execve'), 59);
    assert.equal(nr('clone3'), 435);
    assert.equal(nr('mseal'), 462);
    assert.equal(MAX_SYSCALL_X86_64, Math.max(...SYSCALLS_X86_64.values()));
    assert.equal(SYSCALLS_X86_64.get('constructor'), undefined);
  });

  const header = '/usr/include/x86_64-linux-gnu/asm/unistd_64.h';
  it('matches what scripts/gen-syscall-table.mjs generates', { skip: !existsSync(header) && `${header} not installed` }, () => {
    const script = fileURLToPath(new URL('../../scripts/gen-syscall-table.mjs', import.meta.url));
    execFileSync(process.execPath, [script, '--check', header], { stdio: 'pipe' });
  });
});
