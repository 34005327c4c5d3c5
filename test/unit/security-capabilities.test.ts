import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  CAPABILITY_NAMES,
  DEFAULT_CAPABILITIES,
  LAST_KNOWN_CAP,
  capabilityBit,
  kernelLastCap,
  maskToNames,
  resolveCapabilities,
} from '../../lib/security/capabilities.js';
import { ValidationError, isBerthError } from '../../lib/errors.js';

/** Docker's 14 minus CAP_NET_RAW (Podman's default set). */
const DEFAULT_MASK = 0x00000000a80405fbn;
const ALL_41 = (1n << 41n) - 1n;

function bit(name: string): bigint {
  const b = capabilityBit(name);
  assert.notEqual(b, undefined, name);
  return 1n << BigInt(b!);
}

function assertValidation(fn: () => unknown, option: string, includes: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ValidationError, `expected ValidationError, got ${String(err)}`);
    assert.ok(isBerthError(err));
    assert.equal(err.code, 'ERR_INVALID_OPTION');
    assert.equal(err.option, option);
    assert.ok(err.message.startsWith(`${option}: `), err.message);
    assert.ok(err.message.includes(includes), err.message);
    return true;
  });
}

test('the name table matches linux/capability.h at the anchor points', () => {
  assert.equal(CAPABILITY_NAMES.length, 41);
  assert.equal(LAST_KNOWN_CAP, 40);
  const anchors: Array<[string, number]> = [
    ['CAP_CHOWN', 0], ['CAP_KILL', 5], ['CAP_SETPCAP', 8], ['CAP_NET_BIND_SERVICE', 10], ['CAP_NET_ADMIN', 12],
    ['CAP_NET_RAW', 13], ['CAP_SYS_CHROOT', 18], ['CAP_SYS_PTRACE', 19], ['CAP_SYS_ADMIN', 21], ['CAP_SYS_TIME', 25],
    ['CAP_MKNOD', 27], ['CAP_AUDIT_WRITE', 29], ['CAP_SETFCAP', 31], ['CAP_SYSLOG', 34], ['CAP_AUDIT_READ', 37],
    ['CAP_PERFMON', 38], ['CAP_BPF', 39], ['CAP_CHECKPOINT_RESTORE', 40],
  ];
  for (const [name, b] of anchors) assert.equal(capabilityBit(name), b, name);
  assert.equal(new Set(CAPABILITY_NAMES).size, 41, 'no duplicate names');
  for (const name of CAPABILITY_NAMES) assert.match(name, /^CAP_[A-Z_]+$/);
  assert.equal(capabilityBit('CAP_NOPE'), undefined);
  assert.equal(capabilityBit('chown'), undefined, 'capabilityBit takes canonical names only');
  assert.ok(Object.isFrozen(CAPABILITY_NAMES));
});

test("DEFAULT_CAPABILITIES is Docker's 14 minus NET_RAW: 13 with mask 0xa80405fb", () => {
  assert.equal(DEFAULT_CAPABILITIES.length, 13);
  let mask = 0n;
  for (const name of DEFAULT_CAPABILITIES) mask |= bit(name);
  assert.equal(mask, DEFAULT_MASK);
  assert.equal(mask | bit('CAP_NET_RAW'), 0xa80425fbn, "plus NET_RAW it is Docker's set");
  assert.ok(!DEFAULT_CAPABILITIES.includes('CAP_NET_RAW'), 'raw sockets forge ARP and router advertisements');
  assert.ok(Object.isFrozen(DEFAULT_CAPABILITIES));
});

test('no options: the defaults, names sorted by bit', () => {
  const r = resolveCapabilities({ lastCap: 40 });
  assert.equal(r.mask, DEFAULT_MASK);
  assert.deepEqual(r.names, [
    'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID',
    'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_MKNOD', 'CAP_AUDIT_WRITE',
    'CAP_SETFCAP',
  ]);
  assert.deepEqual(resolveCapabilities(), resolveCapabilities({}));
  assert.deepEqual(resolveCapabilities({ capAdd: [], capDrop: [] }).mask, DEFAULT_MASK);
});

test('capAdd adds; names are case-insensitive with or without CAP_', () => {
  for (const spelling of ['NET_ADMIN', 'net_admin', 'CAP_NET_ADMIN', 'cap_net_admin', 'Cap_Net_Admin']) {
    const r = resolveCapabilities({ capAdd: [spelling], lastCap: 40 });
    assert.equal(r.mask, DEFAULT_MASK | bit('CAP_NET_ADMIN'), spelling);
    assert.ok(r.names.includes('CAP_NET_ADMIN'));
  }
  const two = resolveCapabilities({ capAdd: ['SYS_PTRACE', 'sys_admin', 'SYS_PTRACE'], lastCap: 40 });
  assert.equal(two.mask, DEFAULT_MASK | bit('CAP_SYS_PTRACE') | bit('CAP_SYS_ADMIN'));
  assert.equal(two.names.filter((n) => n === 'CAP_SYS_PTRACE').length, 1, 'duplicates collapse');
  assert.equal(resolveCapabilities({ capAdd: ['CHOWN'], lastCap: 40 }).mask, DEFAULT_MASK, 'adding a default is a no-op');
});

test('capAdd NET_RAW restores raw sockets', () => {
  const r = resolveCapabilities({ capAdd: ['NET_RAW'], lastCap: 40 });
  assert.equal(r.mask, DEFAULT_MASK | bit('CAP_NET_RAW'));
  assert.ok(r.names.includes('CAP_NET_RAW'));
});

test('capDrop removes from the defaults', () => {
  const r = resolveCapabilities({ capDrop: ['kill', 'CAP_MKNOD'], lastCap: 40 });
  assert.equal(r.mask, DEFAULT_MASK & ~bit('CAP_KILL') & ~bit('CAP_MKNOD'));
  assert.ok(!r.names.includes('CAP_KILL'));
  assert.equal(resolveCapabilities({ capDrop: ['NET_RAW'], lastCap: 40 }).mask, DEFAULT_MASK, 'NET_RAW is not a default');
  assert.equal(resolveCapabilities({ capDrop: ['SYS_ADMIN'], lastCap: 40 }).mask, DEFAULT_MASK, 'dropping a non-default is a no-op');
});

test("a name in both capAdd and capDrop is kept (moby's TweakCapabilities adds after dropping)", () => {
  const r = resolveCapabilities({ capAdd: ['NET_ADMIN', 'CHOWN'], capDrop: ['net_admin', 'chown', 'kill'], lastCap: 40 });
  assert.equal(r.mask, (DEFAULT_MASK | bit('CAP_NET_ADMIN')) & ~bit('CAP_KILL'));
});

test('capDrop ALL + capAdd X gives exactly X', () => {
  assert.deepEqual(resolveCapabilities({ capDrop: ['ALL'], capAdd: ['NET_BIND_SERVICE'], lastCap: 40 }), {
    names: ['CAP_NET_BIND_SERVICE'],
    mask: bit('CAP_NET_BIND_SERVICE'),
  });
  assert.deepEqual(resolveCapabilities({ capDrop: ['all'], lastCap: 40 }), { names: [], mask: 0n });
  // Docker ignores other capDrop entries once ALL is there: capAdd is the whole set.
  assert.equal(resolveCapabilities({ capDrop: ['ALL', 'KILL'], capAdd: ['KILL', 'SYS_ADMIN'], lastCap: 40 }).mask,
    bit('CAP_KILL') | bit('CAP_SYS_ADMIN'));
});

test('capAdd ALL gives every supported capability minus capDrop', () => {
  assert.equal(resolveCapabilities({ capAdd: ['ALL'], lastCap: 40 }).mask, ALL_41);
  assert.equal(resolveCapabilities({ capAdd: ['all'], capDrop: ['SYS_ADMIN', 'cap_bpf'], lastCap: 40 }).mask,
    ALL_41 & ~bit('CAP_SYS_ADMIN') & ~bit('CAP_BPF'));
  assert.equal(resolveCapabilities({ capAdd: ['ALL'], lastCap: 37 }).mask, (1n << 38n) - 1n);
  // moby checks capAdd ALL first, so drop ALL does not win over add ALL.
  assert.equal(resolveCapabilities({ capAdd: ['ALL'], capDrop: ['ALL'], lastCap: 40 }).mask, ALL_41);
});

test('privileged gives every capability the kernel knows and ignores add/drop', () => {
  const r = resolveCapabilities({ privileged: true, lastCap: 40 });
  assert.equal(r.mask, ALL_41);
  assert.equal(r.names.length, 41);
  assert.deepEqual(r.names, [...CAPABILITY_NAMES]);
  assert.equal(resolveCapabilities({ privileged: true, capDrop: ['ALL'], lastCap: 40 }).mask, ALL_41);
  assert.equal(resolveCapabilities({ privileged: true, lastCap: 35 }).mask, (1n << 36n) - 1n);
  assert.equal(resolveCapabilities({ privileged: false, lastCap: 40 }).mask, DEFAULT_MASK);
});

test('privileged without lastCap follows /proc/sys/kernel/cap_last_cap', () => {
  let expected = 40;
  try {
    expected = Math.min(40, Number.parseInt(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8'), 10));
  } catch {
    // no procfs: the documented fallback
  }
  assert.equal(kernelLastCap(), expected);
  assert.equal(resolveCapabilities({ privileged: true }).mask, (1n << BigInt(expected + 1)) - 1n);
});

test('unknown names throw a ValidationError naming the option index and the value', () => {
  assertValidation(() => resolveCapabilities({ capAdd: ['NET_ADMIN', 'NET_ADMN'], lastCap: 40 }), 'capAdd[1]', '"NET_ADMN"');
  assertValidation(() => resolveCapabilities({ capDrop: ['bogus'], lastCap: 40 }), 'capDrop[0]', '"bogus"');
  assertValidation(() => resolveCapabilities({ capAdd: [''], lastCap: 40 }), 'capAdd[0]', '""');
  assertValidation(() => resolveCapabilities({ capAdd: ['CAP_'], lastCap: 40 }), 'capAdd[0]', '"CAP_"');
  assertValidation(() => resolveCapabilities({ capAdd: ['CAP_ALL'], lastCap: 40 }), 'capAdd[0]', '"CAP_ALL"');
  assertValidation(() => resolveCapabilities({ capAdd: [' NET_ADMIN'], lastCap: 40 }), 'capAdd[0]', '" NET_ADMIN"');
  // Validated even when privileged makes them moot, so a typo never hides.
  assertValidation(() => resolveCapabilities({ privileged: true, capDrop: ['SYS_ADMN'], lastCap: 40 }), 'capDrop[0]', 'SYS_ADMN');
});

test('a capability newer than the running kernel is rejected, not silently ignored', () => {
  assertValidation(() => resolveCapabilities({ capAdd: ['CHECKPOINT_RESTORE'], lastCap: 39 }), 'capAdd[0]',
    'not supported by the running kernel');
  assert.equal(resolveCapabilities({ capAdd: ['BPF'], lastCap: 39 }).mask, DEFAULT_MASK | bit('CAP_BPF'));
});

test('wrong types throw ValidationError', () => {
  assertValidation(() => resolveCapabilities({ capAdd: 'NET_ADMIN' as unknown as string[] }), 'capAdd', 'array');
  assertValidation(() => resolveCapabilities({ capDrop: [7 as unknown as string] }), 'capDrop[0]', 'number');
});

test('maskToNames inverts the mask', () => {
  assert.deepEqual(maskToNames(0n), []);
  assert.deepEqual(maskToNames(1n), ['CAP_CHOWN']);
  assert.deepEqual(maskToNames(1n << 40n), ['CAP_CHECKPOINT_RESTORE']);
  assert.deepEqual(maskToNames(DEFAULT_MASK).sort(), [...DEFAULT_CAPABILITIES].sort());
  assert.deepEqual(maskToNames(ALL_41), [...CAPABILITY_NAMES]);
  assert.deepEqual(maskToNames((1n << 41n) | (1n << 63n)), ['CAP_41', 'CAP_63']);
  for (const name of CAPABILITY_NAMES) assert.deepEqual(maskToNames(bit(name)), [name]);
});
