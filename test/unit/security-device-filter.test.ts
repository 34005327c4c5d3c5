/**
 * The cgroup v2 device program, evaluated instruction by instruction for every kind of
 * access: it must allow exactly what the v1 `devices.allow` lines allow. (The kernel verifier
 * and a real container run it in test/kernel/devices.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_DEVICE_RULES, type DeviceRule } from '../../lib/security/device-rules.js';
import { DEVCG, deviceFilterInsns, encodeBpfInsns, type BpfInsn } from '../../lib/security/device-filter.js';

/** Runs the subset of eBPF the compiler emits against a bpf_cgroup_dev_ctx. */
function evaluate(prog: readonly BpfInsn[], ctx: { accessType: number; major: number; minor: number }): number {
  const r = new Array<number>(11).fill(0);
  const mem = [ctx.accessType, ctx.major, ctx.minor];
  for (let pc = 0, steps = 0; pc < prog.length && steps < 10_000; pc++, steps++) {
    const i = prog[pc]!;
    switch (i.code) {
      case 0x61: assert.equal(i.src, 1); r[i.dst] = mem[i.off / 4]! >>> 0; break;
      case 0xbf: r[i.dst] = r[i.src]!; break;
      case 0xb7: r[i.dst] = i.imm; break;
      case 0x54: r[i.dst] = (r[i.dst]! & i.imm) >>> 0; break;
      case 0x74: r[i.dst] = r[i.dst]! >>> i.imm; break;
      case 0x55: if (r[i.dst] !== (i.imm >>> 0)) pc += i.off; break;
      case 0x95: return r[0]!;
      default: assert.fail(`unexpected opcode 0x${i.code.toString(16)}`);
    }
  }
  assert.fail('the program ran off its end');
}

/** What a v1 devices cgroup with `deny a` + these rules answers. */
function v1Allows(rules: readonly DeviceRule[], type: 'c' | 'b', major: number, minor: number, access: string): boolean {
  return rules.some((r) => r.type === type && r.major === major && (r.minor === '*' || r.minor === minor) && [...access].every((a) => r.access.includes(a)));
}

const ACCESS = { r: DEVCG.BPF_DEVCG_ACC_READ, w: DEVCG.BPF_DEVCG_ACC_WRITE, m: DEVCG.BPF_DEVCG_ACC_MKNOD };

test('the program allows exactly what the v1 rules allow', () => {
  const prog = deviceFilterInsns(DEFAULT_DEVICE_RULES);
  const devices: Array<[number, number]> = [[1, 3], [1, 5], [1, 1], [1, 11], [5, 0], [5, 2], [136, 0], [136, 7], [8, 0], [254, 0], [10, 200], [4, 1]];
  let allowed = 0;
  for (const type of ['c', 'b'] as const) {
    for (const [major, minor] of devices) {
      for (const access of ['r', 'w', 'm', 'rw', 'rwm']) {
        const bits = [...access].reduce((a, ch) => a | ACCESS[ch as 'r'], 0);
        const devType = type === 'c' ? DEVCG.BPF_DEVCG_DEV_CHAR : DEVCG.BPF_DEVCG_DEV_BLOCK;
        const got = evaluate(prog, { accessType: (bits << 16) | devType, major, minor }) === 1;
        assert.equal(got, v1Allows(DEFAULT_DEVICE_RULES, type, major, minor, access), `${type} ${major}:${minor} ${access}`);
        if (got) allowed++;
      }
    }
  }
  assert.ok(allowed > 0);
});

test('a rule grants only its own access letters', () => {
  const prog = deviceFilterInsns([{ type: 'c', major: 1, minor: 3, access: 'r' }]);
  const char = DEVCG.BPF_DEVCG_DEV_CHAR;
  assert.equal(evaluate(prog, { accessType: (ACCESS.r << 16) | char, major: 1, minor: 3 }), 1);
  assert.equal(evaluate(prog, { accessType: (ACCESS.w << 16) | char, major: 1, minor: 3 }), 0);
  assert.equal(evaluate(prog, { accessType: ((ACCESS.r | ACCESS.m) << 16) | char, major: 1, minor: 3 }), 0);
  assert.equal(evaluate(deviceFilterInsns([]), { accessType: (ACCESS.r << 16) | char, major: 1, minor: 3 }), 0);
});

test('encoding: 8 bytes per instruction, registers packed src<<4|dst', () => {
  const bytes = encodeBpfInsns([{ code: 0x61, dst: 2, src: 1, off: 4, imm: -1 }]);
  assert.deepEqual([...bytes], [0x61, 0x12, 4, 0, 0xff, 0xff, 0xff, 0xff]);
});
