/**
 * A classic-BPF interpreter for seccomp programs, so the seccomp tests run the compiled bytes
 * instead of inspecting the compiler's intermediate form. It applies the kernel's load-time
 * checks first (bpf_check_classic + seccomp_check_filter), so a program it accepts is one the
 * kernel would accept too.
 */

/** The `struct seccomp_data` a filter sees. Arguments are 64-bit. */
export interface SeccompData {
  nr: number;
  /** Default AUDIT_ARCH_X86_64. */
  arch?: number;
  instructionPointer?: bigint;
  args?: Array<bigint | number>;
}

export interface Instruction {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

export const AUDIT_ARCH_X86_64 = 0xc000003e;
export const AUDIT_ARCH_I386 = 0x40000003;

const LD_W_ABS = 0x20;
const ALU_AND_K = 0x54;
const JMP_JA = 0x05;
const JMP_JEQ_K = 0x15;
const JMP_JGT_K = 0x25;
const JMP_JGE_K = 0x35;
const JMP_JSET_K = 0x45;
const RET_K = 0x06;
const SECCOMP_DATA_SIZE = 64;
const BPF_MAXINSNS = 4096;

/** Decodes a `struct sock_filter[]` and checks it the way the kernel does before loading it. */
export function parseProgram(program: Buffer): Instruction[] {
  if (program.length % 8 !== 0) throw new Error(`program is ${program.length} bytes, not a multiple of 8`);
  const n = program.length / 8;
  if (n === 0 || n > BPF_MAXINSNS) throw new Error(`program has ${n} instructions (kernel accepts 1..${BPF_MAXINSNS})`);
  const insns: Instruction[] = [];
  for (let i = 0; i < n; i++) {
    const insn = {
      code: program.readUInt16LE(i * 8),
      jt: program.readUInt8(i * 8 + 2),
      jf: program.readUInt8(i * 8 + 3),
      k: program.readUInt32LE(i * 8 + 4),
    };
    switch (insn.code) {
      case LD_W_ABS:
        if (insn.k % 4 !== 0 || insn.k >= SECCOMP_DATA_SIZE) throw new Error(`#${i}: load at offset ${insn.k} outside seccomp_data`);
        break;
      case ALU_AND_K:
      case RET_K:
        break;
      case JMP_JA:
        if (i + 1 + insn.k >= n) throw new Error(`#${i}: ja past the end`);
        break;
      case JMP_JEQ_K:
      case JMP_JGT_K:
      case JMP_JGE_K:
      case JMP_JSET_K:
        if (i + 1 + Math.max(insn.jt, insn.jf) >= n) throw new Error(`#${i}: conditional jump past the end`);
        break;
      default:
        throw new Error(`#${i}: opcode 0x${insn.code.toString(16)} not allowed in seccomp filters`);
    }
    insns.push(insn);
  }
  if (insns[n - 1]!.code !== RET_K) throw new Error('last instruction is not a return');
  return insns;
}

function loadWord(data: SeccompData, offset: number): number {
  if (offset === 0) return data.nr >>> 0;
  if (offset === 4) return (data.arch ?? AUDIT_ARCH_X86_64) >>> 0;
  const word = (v: bigint, high: boolean) => Number(BigInt.asUintN(64, v) >> (high ? 32n : 0n) & 0xffffffffn);
  if (offset < 16) return word(data.instructionPointer ?? 0n, offset === 12);
  const arg = BigInt(data.args?.[(offset - 16) >> 3] ?? 0n);
  return word(arg, (offset - 16) % 8 === 4);
}

/** Result of running a filter: the 32-bit return value and how many instructions ran. */
export interface RunResult {
  ret: number;
  steps: number;
}

/** Runs `program` over `data` and returns what the filter returned. */
export function execute(program: Buffer | Instruction[], data: SeccompData): RunResult {
  const insns = Buffer.isBuffer(program) ? parseProgram(program) : program;
  let a = 0;
  let pc = 0;
  let steps = 0;
  for (;;) {
    const insn = insns[pc];
    if (!insn) throw new Error(`fell off the program at ${pc}`);
    steps++;
    pc++;
    switch (insn.code) {
      case LD_W_ABS: a = loadWord(data, insn.k); break;
      case ALU_AND_K: a = (a & insn.k) >>> 0; break;
      case JMP_JA: pc += insn.k; break;
      case JMP_JEQ_K: pc += a === insn.k ? insn.jt : insn.jf; break;
      case JMP_JGT_K: pc += a > insn.k ? insn.jt : insn.jf; break;
      case JMP_JGE_K: pc += a >= insn.k ? insn.jt : insn.jf; break;
      case JMP_JSET_K: pc += (a & insn.k) !== 0 ? insn.jt : insn.jf; break;
      case RET_K: return { ret: insn.k >>> 0, steps };
      default: throw new Error(`opcode 0x${insn.code.toString(16)}`);
    }
  }
}

/** A filter's return value decoded, as the kernel acts on it. */
export type Verdict =
  | { action: 'allow' | 'log' | 'kill_process' | 'kill_thread' | 'trap' }
  | { action: 'errno'; errno: number }
  | { action: 'trace'; data: number };

export function decode(ret: number): Verdict {
  const data = ret & 0xffff;
  switch ((ret & 0xffff0000) >>> 0) {
    case 0x7fff0000: return { action: 'allow' };
    case 0x7ffc0000: return { action: 'log' };
    case 0x80000000: return { action: 'kill_process' };
    case 0x00000000: return { action: 'kill_thread' };
    case 0x00030000: return { action: 'trap' };
    case 0x00050000: return { action: 'errno', errno: data };
    case 0x7ff00000: return { action: 'trace', data };
    default: throw new Error(`unexpected filter return 0x${ret.toString(16)}`);
  }
}

/** Runs the filter and decodes its verdict. */
export function verdict(program: Buffer | Instruction[], data: SeccompData): Verdict {
  return decode(execute(program, data).ret);
}
