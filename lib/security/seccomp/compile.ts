/**
 * Compiles a Docker-shaped seccomp profile into a classic BPF program for
 * `seccomp(SECCOMP_SET_MODE_FILTER)`, without libseccomp. Layout and rationale:
 * `docs/design/seccomp.md`.
 * @module
 */
import { release } from 'node:os';
import { ValidationError } from '../../errors.js';
import { MAX_SYSCALL_X86_64, SYSCALLS_X86_64 } from './syscalls-x86_64.js';
import type { SeccompAction, SeccompOperator, SeccompProfile } from './types.js';

/** Options for {@link compileSeccomp}. */
export interface CompileSeccompOptions {
  /** The container's capabilities (`CAP_SYS_ADMIN` or `SYS_ADMIN`), matched against `includes`/`excludes`. */
  capabilities: Iterable<string>;
  /** Kernel release matched against `includes.minKernel`. Default: the host's, `os.release()`. */
  kernelRelease?: string;
}

// linux/audit.h, linux/seccomp.h, linux/filter.h.
const AUDIT_ARCH_X86_64 = 0xc000003e;
const X32_SYSCALL_BIT = 0x40000000;
const BPF_MAXINSNS = 4096;
const SECCOMP_RET_KILL_PROCESS = 0x80000000;
const SECCOMP_RET_KILL_THREAD = 0x00000000;
const SECCOMP_RET_TRAP = 0x00030000;
const SECCOMP_RET_ERRNO = 0x00050000;
const SECCOMP_RET_TRACE = 0x7ff00000;
const SECCOMP_RET_LOG = 0x7ffc0000;
const SECCOMP_RET_ALLOW = 0x7fff0000;
const EPERM = 1;
const ENOSYS = 38;

// struct seccomp_data { int nr; u32 arch; u64 instruction_pointer; u64 args[6]; }, little-endian.
const OFFSET_NR = 0;
const OFFSET_ARCH = 4;
const argLow = (index: number) => 16 + 8 * index;
const argHigh = (index: number) => 16 + 8 * index + 4;

const BPF_LD_W_ABS = 0x20;
const BPF_ALU_AND_K = 0x54;
const BPF_JMP_JA = 0x05;
const BPF_JMP_JEQ_K = 0x15;
const BPF_JMP_JGT_K = 0x25;
const BPF_JMP_JGE_K = 0x35;
const BPF_JMP_JSET_K = 0x45;
const BPF_RET_K = 0x06;

const ACTIONS: ReadonlySet<string> = new Set<SeccompAction>([
  'SCMP_ACT_ALLOW', 'SCMP_ACT_ERRNO', 'SCMP_ACT_KILL', 'SCMP_ACT_KILL_PROCESS',
  'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_TRAP', 'SCMP_ACT_LOG', 'SCMP_ACT_TRACE',
]);
const OPERATORS: ReadonlySet<string> = new Set<SeccompOperator>([
  'SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ',
]);
/** Go's GOARCH for x86_64 (what Docker matches `arches` against), plus the kernel's spelling. */
const NATIVE_ARCHES: ReadonlySet<string> = new Set(['amd64', 'x86_64']);

const U64_MAX = (1n << 64n) - 1n;
const MAX_ERRNO = 4095;

interface Condition {
  index: number;
  op: SeccompOperator;
  value: bigint;
  valueTwo: bigint;
}

interface CheckedRule {
  names: string[];
  ret: number;
  conditions: Condition[];
  includeCaps: string[];
  excludeCaps: string[];
  includeArches: string[] | undefined;
  excludeArches: string[];
  minKernel: number[] | undefined;
}

interface CheckedProfile {
  defaultRet: number;
  defaultAllows: boolean;
  rules: CheckedRule[];
}

// ---------------------------------------------------------------------------------------------
// Validation

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkErrno(value: unknown, option: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_ERRNO) {
    throw new ValidationError(option, `must be an errno number from 0 to ${MAX_ERRNO}, got ${JSON.stringify(value)}`);
  }
  return value;
}

function checkAction(value: unknown, option: string): SeccompAction {
  if (typeof value !== 'string' || !ACTIONS.has(value)) {
    throw new ValidationError(option, `unknown action ${JSON.stringify(value)}; expected one of ${[...ACTIONS].join(', ')}`);
  }
  return value as SeccompAction;
}

/** The filter's return value. `data` is errnoRet: the errno for ERRNO, the tracer's message for TRACE. */
function actionRet(action: SeccompAction, data: number | undefined): number {
  switch (action) {
    case 'SCMP_ACT_ALLOW': return SECCOMP_RET_ALLOW;
    case 'SCMP_ACT_LOG': return SECCOMP_RET_LOG;
    case 'SCMP_ACT_ERRNO': return (SECCOMP_RET_ERRNO | ((data ?? EPERM) & 0xffff)) >>> 0;
    case 'SCMP_ACT_TRACE': return (SECCOMP_RET_TRACE | ((data ?? EPERM) & 0xffff)) >>> 0;
    case 'SCMP_ACT_TRAP': return SECCOMP_RET_TRAP;
    case 'SCMP_ACT_KILL':
    case 'SCMP_ACT_KILL_THREAD': return SECCOMP_RET_KILL_THREAD;
    case 'SCMP_ACT_KILL_PROCESS': return SECCOMP_RET_KILL_PROCESS;
  }
}

function checkU64(value: unknown, option: string): bigint {
  if (typeof value === 'bigint' && value >= 0n && value <= U64_MAX) return value;
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return BigInt(value);
  const hint = typeof value === 'number' && Number.isInteger(value) && value > 0 ? '; use a bigint above 2^53' : '';
  throw new ValidationError(option, `must be an unsigned 64-bit integer, got ${String(value)}${hint}`);
}

function checkStrings(value: unknown, option: string, what: string): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
    throw new ValidationError(option, `must be an array of ${what}`);
  }
  return value as string[];
}

/** `sys_admin` and `CAP_SYS_ADMIN` both become `CAP_SYS_ADMIN`. @internal */
export function normalizeCap(cap: string): string {
  const upper = cap.toUpperCase();
  return upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
}

function parseKernelVersion(text: string): number[] | undefined {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(text);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : undefined;
}

function checkCondition(value: unknown, option: string): Condition {
  if (!isRecord(value)) throw new ValidationError(option, 'must be an object { index, value, valueTwo?, op }');
  const { index, op } = value;
  if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index > 5) {
    throw new ValidationError(`${option}.index`, `must be an argument position from 0 to 5, got ${JSON.stringify(index)}`);
  }
  if (typeof op !== 'string' || !OPERATORS.has(op)) {
    throw new ValidationError(`${option}.op`, `unknown operator ${JSON.stringify(op)}; expected one of ${[...OPERATORS].join(', ')}`);
  }
  return {
    index,
    op: op as SeccompOperator,
    value: checkU64(value.value, `${option}.value`),
    valueTwo: value.valueTwo === undefined || value.valueTwo === null ? 0n : checkU64(value.valueTwo, `${option}.valueTwo`),
  };
}

function checkRule(value: unknown, option: string): CheckedRule {
  if (!isRecord(value)) throw new ValidationError(option, 'must be an object { names, action, ... }');
  let names: string[];
  if (value.names !== undefined && value.names !== null) {
    if (value.name !== undefined && value.name !== null) {
      throw new ValidationError(option, 'has both "name" and "names"; use "names"');
    }
    names = checkStrings(value.names, `${option}.names`, 'syscall names');
  } else if (typeof value.name === 'string') {
    names = [value.name];
  } else {
    throw new ValidationError(`${option}.names`, 'must be an array of syscall names');
  }
  const action = checkAction(value.action, `${option}.action`);
  const errnoRet = checkErrno(value.errnoRet, `${option}.errnoRet`);

  let conditions: Condition[] = [];
  if (value.args !== undefined && value.args !== null) {
    if (!Array.isArray(value.args)) throw new ValidationError(`${option}.args`, 'must be an array');
    conditions = value.args.map((arg, i) => checkCondition(arg, `${option}.args[${i}]`));
  }

  const includes = value.includes ?? {};
  const excludes = value.excludes ?? {};
  if (!isRecord(includes)) throw new ValidationError(`${option}.includes`, 'must be an object');
  if (!isRecord(excludes)) throw new ValidationError(`${option}.excludes`, 'must be an object');
  let minKernel: number[] | undefined;
  if (includes.minKernel !== undefined && includes.minKernel !== null) {
    minKernel = typeof includes.minKernel === 'string' ? parseKernelVersion(includes.minKernel) : undefined;
    if (!minKernel) {
      throw new ValidationError(`${option}.includes.minKernel`, `must be a kernel version like "4.8", got ${JSON.stringify(includes.minKernel)}`);
    }
  }
  if (excludes.minKernel !== undefined && excludes.minKernel !== null) {
    throw new ValidationError(`${option}.excludes.minKernel`, 'is only supported in "includes"');
  }
  const includeArches = checkStrings(includes.arches, `${option}.includes.arches`, 'architecture names');
  return {
    names,
    ret: actionRet(action, errnoRet),
    conditions,
    includeCaps: checkStrings(includes.caps, `${option}.includes.caps`, 'capability names').map(normalizeCap),
    excludeCaps: checkStrings(excludes.caps, `${option}.excludes.caps`, 'capability names').map(normalizeCap),
    includeArches: includeArches.length > 0 ? includeArches : undefined,
    excludeArches: checkStrings(excludes.arches, `${option}.excludes.arches`, 'architecture names'),
    minKernel,
  };
}

function checkProfile(profile: unknown): CheckedProfile {
  if (!isRecord(profile)) throw new ValidationError('seccomp', 'must be a profile object');
  const defaultAction = checkAction(profile.defaultAction, 'seccomp.defaultAction');
  const defaultErrno = checkErrno(profile.defaultErrnoRet, 'seccomp.defaultErrnoRet');
  checkStrings(profile.architectures, 'seccomp.architectures', 'architecture names');
  if (profile.archMap !== undefined && profile.archMap !== null && !Array.isArray(profile.archMap)) {
    throw new ValidationError('seccomp.archMap', 'must be an array');
  }
  const syscalls = profile.syscalls ?? [];
  if (!Array.isArray(syscalls)) throw new ValidationError('seccomp.syscalls', 'must be an array of rules');
  return {
    defaultRet: actionRet(defaultAction, defaultErrno),
    defaultAllows: defaultAction === 'SCMP_ACT_ALLOW' || defaultAction === 'SCMP_ACT_LOG',
    rules: syscalls.map((rule, i) => checkRule(rule, `seccomp.syscalls[${i}]`)),
  };
}

/**
 * Throws a {@link ValidationError} naming the offending option (`seccomp.syscalls[3].action`)
 * unless `profile` is a well-formed {@link SeccompProfile}.
 */
export function validateSeccompProfile(profile: unknown): asserts profile is SeccompProfile {
  checkProfile(profile);
}

// ---------------------------------------------------------------------------------------------
// Rule selection: which rules apply to this container, and in what order for each syscall.

function versionAtLeast(have: number[], want: number[]): boolean {
  for (let i = 0; i < want.length; i++) {
    if ((have[i] ?? 0) !== want[i]) return (have[i] ?? 0) > want[i]!;
  }
  return true;
}

/** Docker's semantics: `includes` needs every listed cap, `excludes` is tripped by any one. */
function ruleApplies(rule: CheckedRule, caps: ReadonlySet<string>, kernel: number[] | undefined): boolean {
  if (rule.excludeCaps.some((cap) => caps.has(cap))) return false;
  if (!rule.includeCaps.every((cap) => caps.has(cap))) return false;
  if (rule.excludeArches.some((arch) => NATIVE_ARCHES.has(arch))) return false;
  if (rule.includeArches && !rule.includeArches.some((arch) => NATIVE_ARCHES.has(arch))) return false;
  if (rule.minKernel && !(kernel && versionAtLeast(kernel, rule.minKernel))) return false;
  return true;
}

/** The rules a syscall goes through, first match wins; an unconditional rule ends the chain. */
interface Chain {
  rules: CheckedRule[];
  terminated: boolean;
}

/** A MASKED_EQ whose expected value has bits outside the mask can never hold. */
function neverHolds(c: Condition): boolean {
  return c.op === 'SCMP_CMP_MASKED_EQ' && (c.valueTwo & ~c.value & U64_MAX) !== 0n;
}

function simplify(chain: CheckedRule[], defaultRet: number): CheckedRule[] {
  const rules = chain.filter((rule) => !rule.conditions.some(neverHolds));
  // A trailing rule that returns the default changes nothing: falling off the chain does too.
  while (rules.length > 0 && rules[rules.length - 1]!.ret === defaultRet) rules.pop();
  return rules;
}

// ---------------------------------------------------------------------------------------------
// Assembly. Code refers to labels; jumps are resolved, and widened where BPF's 8-bit jt/jf
// cannot reach, only once the whole program exists.

type Label = { readonly id: number };
type Insn =
  | { kind: 'stmt'; code: number; k: number }
  | { kind: 'jump'; code: number; k: number; jt: Label; jf: Label }
  | { kind: 'ja'; to: Label }
  | { kind: 'label'; label: Label };

class Assembler {
  readonly insns: Insn[] = [];
  private nextId = 0;

  label(): Label {
    return { id: this.nextId++ };
  }
  place(label: Label): void {
    this.insns.push({ kind: 'label', label });
  }
  load(offset: number): void {
    this.insns.push({ kind: 'stmt', code: BPF_LD_W_ABS, k: offset });
  }
  and(k: number): void {
    this.insns.push({ kind: 'stmt', code: BPF_ALU_AND_K, k: k >>> 0 });
  }
  ret(k: number): void {
    this.insns.push({ kind: 'stmt', code: BPF_RET_K, k: k >>> 0 });
  }
  jump(code: number, k: number, jt: Label, jf: Label): void {
    this.insns.push({ kind: 'jump', code, k: k >>> 0, jt, jf });
  }
  ja(to: Label): void {
    this.insns.push({ kind: 'ja', to });
  }

  /**
   * Resolves labels into a `struct sock_filter[]`. A conditional jump that cannot reach its
   * target in 255 instructions gets a trampoline right after it: a copy of the target when that
   * is a `ret` (same size, one hop less), else a `ja`, whose offset is 32 bits. Trampolines only
   * lengthen other jumps, so repeat until nothing is out of reach.
   */
  assemble(): Buffer {
    let code = this.insns;
    for (;;) {
      const { positions, real } = layout(code);
      const out: Insn[] = [];
      let widened = false;
      let index = 0;
      for (const insn of code) {
        out.push(insn);
        if (insn.kind === 'label') continue;
        index++;
        if (insn.kind !== 'jump') continue;
        const far = (label: Label) => positions.get(label.id)! - index > 255;
        if (!far(insn.jt) && !far(insn.jf)) continue;
        widened = true;
        const jt = far(insn.jt) ? this.label() : insn.jt;
        const jf = far(insn.jf) ? this.label() : insn.jf;
        out[out.length - 1] = { ...insn, jt, jf };
        if (jt !== insn.jt) out.push({ kind: 'label', label: jt }, trampoline(insn.jt, positions, real));
        if (jf !== insn.jf) out.push({ kind: 'label', label: jf }, trampoline(insn.jf, positions, real));
      }
      code = out;
      if (!widened) return encode(code);
    }
  }
}

function layout(code: Insn[]): { positions: Map<number, number>; real: Insn[] } {
  const positions = new Map<number, number>();
  const real: Insn[] = [];
  for (const insn of code) {
    if (insn.kind === 'label') positions.set(insn.label.id, real.length);
    else real.push(insn);
  }
  return { positions, real };
}

function trampoline(to: Label, positions: Map<number, number>, real: Insn[]): Insn {
  const target = real[positions.get(to.id)!];
  return target?.kind === 'stmt' && target.code === BPF_RET_K ? target : { kind: 'ja', to };
}

function encode(code: Insn[]): Buffer {
  const { positions, real } = layout(code);
  if (real.length > BPF_MAXINSNS) {
    throw new ValidationError('seccomp', `profile compiles to ${real.length} BPF instructions; the kernel accepts at most ${BPF_MAXINSNS}`);
  }
  const buf = Buffer.alloc(real.length * 8);
  real.forEach((insn, i) => {
    const at = i * 8;
    const offset = (label: Label) => {
      const d = positions.get(label.id)! - (i + 1);
      // BPF cannot jump backwards; a negative offset is a compiler bug, not a profile problem.
      if (d < 0) throw new Error(`seccomp compiler: backward jump at instruction ${i}`);
      return d;
    };
    switch (insn.kind) {
      case 'stmt':
        buf.writeUInt16LE(insn.code, at);
        buf.writeUInt32LE(insn.k, at + 4);
        break;
      case 'ja':
        buf.writeUInt16LE(BPF_JMP_JA, at);
        buf.writeUInt32LE(offset(insn.to), at + 4);
        break;
      case 'jump':
        buf.writeUInt16LE(insn.code, at);
        buf.writeUInt8(offset(insn.jt), at + 2);
        buf.writeUInt8(offset(insn.jf), at + 3);
        buf.writeUInt32LE(insn.k, at + 4);
        break;
      case 'label':
        break;
    }
  });
  return buf;
}

// ---------------------------------------------------------------------------------------------
// Code generation

const hi = (v: bigint) => Number(v >> 32n);
const lo = (v: bigint) => Number(v & 0xffffffffn);

/**
 * Emits a test of one 64-bit argument that continues at `pass` or `fail`. The kernel hands
 * seccomp full registers, so the high word must be checked too: an `int` argument compared
 * only on its low word would let garbage in the high word slip past an EQ.
 */
function emitCondition(asm: Assembler, c: Condition, pass: Label, fail: Label): void {
  const H = argHigh(c.index);
  const L = argLow(c.index);
  const vh = hi(c.value);
  const vl = lo(c.value);
  switch (c.op) {
    case 'SCMP_CMP_EQ':
    case 'SCMP_CMP_NE': {
      const [match, differ] = c.op === 'SCMP_CMP_EQ' ? [pass, fail] : [fail, pass];
      const low = asm.label();
      asm.load(H);
      asm.jump(BPF_JMP_JEQ_K, vh, low, differ);
      asm.place(low);
      asm.load(L);
      asm.jump(BPF_JMP_JEQ_K, vl, match, differ);
      return;
    }
    case 'SCMP_CMP_GT':
    case 'SCMP_CMP_GE':
    case 'SCMP_CMP_LT':
    case 'SCMP_CMP_LE': {
      // Unsigned 64-bit order: the high words decide unless equal, then the low words do.
      const greater = c.op === 'SCMP_CMP_GT' || c.op === 'SCMP_CMP_GE';
      const [above, below] = greater ? [pass, fail] : [fail, pass];
      const low = asm.label();
      asm.load(H);
      if (vh === 0) {
        asm.jump(BPF_JMP_JGT_K, 0, above, low);
      } else {
        const equal = asm.label();
        asm.jump(BPF_JMP_JGT_K, vh, above, equal);
        asm.place(equal);
        asm.jump(BPF_JMP_JEQ_K, vh, low, below);
      }
      asm.place(low);
      asm.load(L);
      // GT: lo > v; GE: lo >= v; LT is !(lo >= v); LE is !(lo > v).
      const strict = c.op === 'SCMP_CMP_GT' || c.op === 'SCMP_CMP_LE';
      asm.jump(strict ? BPF_JMP_JGT_K : BPF_JMP_JGE_K, vl, above, below);
      return;
    }
    case 'SCMP_CMP_MASKED_EQ': {
      const parts: Array<[offset: number, mask: number, want: number]> = [
        [H, hi(c.value), hi(c.valueTwo)],
        [L, lo(c.value), lo(c.valueTwo)],
      ].filter(([, mask]) => mask !== 0) as Array<[number, number, number]>;
      // neverHolds() dropped rules where want has bits outside mask, so a zero mask always holds.
      if (parts.length === 0) {
        asm.ja(pass);
        return;
      }
      parts.forEach(([offset, mask, want], i) => {
        const ok = i === parts.length - 1 ? pass : asm.label();
        asm.load(offset);
        if (want === 0) {
          asm.jump(BPF_JMP_JSET_K, mask, fail, ok);
        } else {
          if (mask !== 0xffffffff) asm.and(mask);
          asm.jump(BPF_JMP_JEQ_K, want, ok, fail);
        }
        if (ok !== pass) asm.place(ok);
      });
      return;
    }
  }
}

/** Emits the rules of one syscall in order; falling off the end returns the default. */
function emitChain(asm: Assembler, rules: CheckedRule[], defaultRet: number): void {
  for (const rule of rules) {
    const next = asm.label();
    for (const c of rule.conditions) {
      const pass = asm.label();
      emitCondition(asm, c, pass, next);
      asm.place(pass);
    }
    asm.ret(rule.ret);
    if (rule.conditions.length === 0) return;
    asm.place(next);
  }
  asm.ret(defaultRet);
}

interface Outcome {
  label: Label;
  emit: () => void;
}

/**
 * Compiles `profile` for one container into a `struct sock_filter[]` (8 bytes per instruction,
 * little-endian) to pass to `seccomp(SECCOMP_SET_MODE_FILTER)`.
 *
 * The program kills the process on any architecture but x86_64, refuses x32 syscalls and
 * syscalls newer than the syscall table with ENOSYS, then finds the syscall's rules by binary
 * search. Rules apply according to `includes`/`excludes` evaluated against
 * `opts.capabilities`; names the x86_64 table does not know are ignored.
 *
 * @throws {ValidationError} if the profile is malformed or compiles to more than 4096 instructions.
 */
export function compileSeccomp(profile: SeccompProfile, opts: CompileSeccompOptions): Buffer {
  const checked = checkProfile(profile);
  const caps = new Set([...opts.capabilities].map(normalizeCap));
  const kernel = parseKernelVersion(opts.kernelRelease ?? release());
  const { defaultRet } = checked;

  const chains = new Map<number, Chain>();
  for (const rule of checked.rules) {
    if (!ruleApplies(rule, caps, kernel)) continue;
    for (const name of rule.names) {
      const nr = SYSCALLS_X86_64.get(name);
      if (nr === undefined) continue;
      let chain = chains.get(nr);
      if (!chain) chains.set(nr, (chain = { rules: [], terminated: false }));
      if (chain.terminated || chain.rules.includes(rule)) continue;
      chain.rules.push(rule);
      chain.terminated = rule.conditions.length === 0;
    }
  }

  const asm = new Assembler();
  // Outcomes are emitted after the dispatch tree because BPF only jumps forward. Plain returns
  // are shared by every syscall with that result; a conditional chain is shared by syscalls
  // whose rules are the same.
  const outcomes = new Map<string, Outcome>();
  const outcome = (key: string, emit: () => void): Outcome => {
    let o = outcomes.get(key);
    if (!o) outcomes.set(key, (o = { label: asm.label(), emit }));
    return o;
  };
  const returning = (k: number) => outcome(`ret:${k >>> 0}`, () => asm.ret(k));
  const enosys = returning(SECCOMP_RET_ERRNO | ENOSYS);
  const kill = returning(SECCOMP_RET_KILL_PROCESS);

  const outcomeOf = (nr: number): Outcome => {
    const chain = chains.get(nr);
    const rules = chain ? simplify(chain.rules, defaultRet) : [];
    if (rules.length === 0) return returning(defaultRet);
    if (rules[0]!.conditions.length === 0) return returning(rules[0]!.ret);
    const key = `chain:${rules.map((r) => checked.rules.indexOf(r)).join(',')}`;
    return outcome(key, () => emitChain(asm, rules, defaultRet));
  };

  // Runs of consecutive syscall numbers with the same outcome: [first number, outcome].
  const runs: Array<[number, Outcome]> = [];
  for (let nr = 0; nr <= MAX_SYSCALL_X86_64; nr++) {
    const o = outcomeOf(nr);
    if (runs.length === 0 || runs[runs.length - 1]![1] !== o) runs.push([nr, o]);
  }
  // Numbers past the table may be syscalls newer than it; the profile cannot have meant to
  // allow them by name, and ENOSYS (unlike EPERM) makes libc fall back to an older syscall.
  const beyond = checked.defaultAllows ? returning(defaultRet) : enosys;
  if (runs[runs.length - 1]![1] !== beyond) runs.push([MAX_SYSCALL_X86_64 + 1, beyond]);

  const dispatch = asm.label();
  const checkNr = asm.label();
  asm.load(OFFSET_ARCH);
  // i386 (int 0x80) and any other ABI reach the filter with another arch: berth gives them no rules.
  asm.jump(BPF_JMP_JEQ_K, AUDIT_ARCH_X86_64, checkNr, kill.label);
  asm.place(checkNr);
  asm.load(OFFSET_NR);
  // x32 syscalls arrive with AUDIT_ARCH_X86_64 and nr | 0x40000000; refuse them the way a kernel
  // built without CONFIG_X86_X32_ABI does, so no rule can be reached through the x32 numbers.
  asm.jump(BPF_JMP_JSET_K, X32_SYSCALL_BIT, enosys.label, dispatch);
  asm.place(dispatch);

  const tree = (from: number, to: number): Label => {
    if (to - from === 1) return runs[from]![1].label;
    const here = asm.label();
    const mid = (from + to) >>> 1;
    asm.place(here);
    // Preorder: the node comes first, so its targets are filled in once the subtrees exist.
    const node: Insn & { kind: 'jump' } = { kind: 'jump', code: BPF_JMP_JGE_K, k: runs[mid]![0], jt: here, jf: here };
    asm.insns.push(node);
    node.jf = tree(from, mid);
    node.jt = tree(mid, to);
    return here;
  };
  const root = tree(0, runs.length);
  if (runs.length === 1) asm.ja(root);

  for (const o of outcomes.values()) {
    asm.place(o.label);
    o.emit();
  }
  return asm.assemble();
}
