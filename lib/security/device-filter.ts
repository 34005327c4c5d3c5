/**
 * The device allow-list as a `BPF_CGROUP_DEVICE` program, for cgroup v2, which has no
 * `devices.allow` file: the kernel runs the program on every open and mknod of a device node
 * by a process of the cgroup, and refuses the access when it returns 0. Same rules as the v1
 * driver writes (DEFAULT_DEVICE_RULES in ./device-rules.ts), so the guarantee does not rest on `nodev`
 * mount flags alone on either version (the hostile-code issue, item 2).
 *
 * The program reads `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`
 * (`access_type` = access << 16 | device type) and tries each rule in order.
 * @module
 */
import type { DeviceRule } from './device-rules.js';

// <linux/bpf.h>
const BPF_DEVCG_DEV_BLOCK = 1;
const BPF_DEVCG_DEV_CHAR = 2;
const BPF_DEVCG_ACC_MKNOD = 1;
const BPF_DEVCG_ACC_READ = 2;
const BPF_DEVCG_ACC_WRITE = 4;

// Instruction opcodes (class | op | source) of the few eBPF instructions used here.
const LDX_MEM_W = 0x61; // dst = *(u32 *)(src + off)
const ALU32_AND_K = 0x54; // dst &= imm
const ALU32_RSH_K = 0x74; // dst >>= imm
const ALU64_MOV_X = 0xbf; // dst = src
const ALU64_MOV_K = 0xb7; // dst = imm
const JMP_JNE_K = 0x55; // if dst != imm: pc += off
const JMP_EXIT = 0x95;

/** One 8-byte eBPF instruction. */
export interface BpfInsn {
  code: number;
  dst: number;
  src: number;
  off: number;
  imm: number;
}

const insn = (code: number, dst = 0, src = 0, off = 0, imm = 0): BpfInsn => ({ code, dst, src, off, imm });

/** The access bits of a rule's `rwm` letters. */
export function accessMask(access: string): number {
  let mask = 0;
  for (const ch of access) {
    if (ch === 'r') mask |= BPF_DEVCG_ACC_READ;
    else if (ch === 'w') mask |= BPF_DEVCG_ACC_WRITE;
    else if (ch === 'm') mask |= BPF_DEVCG_ACC_MKNOD;
    else throw new Error(`device rule access "${access}": unknown letter "${ch}"`);
  }
  return mask;
}

/** The program as instructions: allow what a rule allows, deny everything else. */
export function deviceFilterInsns(rules: readonly DeviceRule[]): BpfInsn[] {
  const out: BpfInsn[] = [
    insn(LDX_MEM_W, 2, 1, 0), // r2 = access_type
    insn(ALU64_MOV_X, 3, 2), // r3 = r2
    insn(ALU32_AND_K, 3, 0, 0, 0xffff), // r3 = device type
    insn(ALU32_RSH_K, 2, 0, 0, 16), // r2 = access
    insn(LDX_MEM_W, 4, 1, 4), // r4 = major
    insn(LDX_MEM_W, 5, 1, 8), // r5 = minor
  ];
  for (const rule of rules) {
    const block: BpfInsn[] = [];
    const skips: BpfInsn[] = [];
    const skip = (code: number, dst: number, imm: number) => {
      const i = insn(code, dst, 0, 0, imm);
      skips.push(i);
      block.push(i);
    };
    skip(JMP_JNE_K, 3, rule.type === 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK);
    skip(JMP_JNE_K, 4, rule.major);
    if (rule.minor !== '*') skip(JMP_JNE_K, 5, rule.minor);
    // Every requested access bit must be one the rule grants.
    block.push(insn(ALU64_MOV_X, 6, 2), insn(ALU32_AND_K, 6, 0, 0, ~accessMask(rule.access) & 0x7));
    skip(JMP_JNE_K, 6, 0);
    block.push(insn(ALU64_MOV_K, 0, 0, 0, 1), insn(JMP_EXIT));
    // Each skip jumps past the end of this rule's block.
    for (const s of skips) s.off = block.length - block.indexOf(s) - 1;
    out.push(...block);
  }
  out.push(insn(ALU64_MOV_K, 0, 0, 0, 0), insn(JMP_EXIT));
  return out;
}

/** The program's bytes, as `bpf(BPF_PROG_LOAD)` takes them (little-endian `struct bpf_insn`). */
export function encodeBpfInsns(insns: readonly BpfInsn[]): Buffer {
  const buf = Buffer.alloc(insns.length * 8);
  insns.forEach((i, n) => {
    buf.writeUInt8(i.code, n * 8);
    buf.writeUInt8((i.src << 4) | i.dst, n * 8 + 1);
    buf.writeInt16LE(i.off, n * 8 + 2);
    buf.writeInt32LE(i.imm, n * 8 + 4);
  });
  return buf;
}

/** Device type and access constants, for tests that evaluate the program. */
export const DEVCG = Object.freeze({ BPF_DEVCG_DEV_BLOCK, BPF_DEVCG_DEV_CHAR, BPF_DEVCG_ACC_MKNOD, BPF_DEVCG_ACC_READ, BPF_DEVCG_ACC_WRITE });
