/**
 * Encodes a launch spec into the binary format `src-native/spec-codec.cc` decodes. One format
 * for both launch paths (the addon in this process, the detached monitor in another), so they
 * cannot drift apart. Little-endian, fixed field order, framed by magics.
 * @module
 */
import type { NativeLaunchSpec } from '../native.js';

/** Must equal `kSpecFormatVersion` in src-native/spec-codec.h; checked when the addon loads. */
export const SPEC_FORMAT_VERSION = 2;

class Writer {
  #chunks: Buffer[] = [];
  #scratch = Buffer.alloc(8);

  raw(b: Buffer): void {
    this.#chunks.push(b);
  }
  i32(v: number): void {
    this.#scratch.writeInt32LE(v | 0, 0);
    this.#chunks.push(Buffer.from(this.#scratch.subarray(0, 4)));
  }
  u32(v: number): void {
    this.#scratch.writeUInt32LE(v >>> 0, 0);
    this.#chunks.push(Buffer.from(this.#scratch.subarray(0, 4)));
  }
  u64(v: bigint | number): void {
    const big = typeof v === 'bigint' ? v : v < 0 ? 0xffff_ffff_ffff_ffffn : BigInt(Math.trunc(v));
    this.#scratch.writeBigUInt64LE(BigInt.asUintN(64, big), 0);
    this.#chunks.push(Buffer.from(this.#scratch));
  }
  bool(v: boolean | undefined): void {
    this.#chunks.push(Buffer.from([v ? 1 : 0]));
  }
  str(v: string | Buffer | undefined | null): void {
    const b = v === undefined || v === null ? Buffer.alloc(0) : Buffer.isBuffer(v) ? v : Buffer.from(v, 'utf8');
    this.u32(b.length);
    this.#chunks.push(b);
  }
  strs(v: readonly string[] | undefined): void {
    this.u32(v?.length ?? 0);
    for (const s of v ?? []) this.str(s);
  }
  done(): Buffer {
    return Buffer.concat(this.#chunks);
  }
}

/** The bytes of `spec`, in the field order of `DecodeLaunchSpec`. */
export function encodeLaunchSpec(spec: NativeLaunchSpec): Buffer {
  const w = new Writer();
  w.raw(Buffer.from('BLS1'));
  w.i32(spec.cloneFlags);
  w.bool(spec.newCgroupNs);
  w.str(spec.uidMap);
  w.str(spec.gidMap);
  w.strs(spec.cgroupProcs);
  w.i32(spec.join?.pidfd ?? -1);
  w.i32(spec.join?.namespaces ?? 0);
  w.u32(spec.mounts.length);
  for (const m of spec.mounts) {
    w.i32(m.kind);
    w.str(m.source);
    w.str(m.target);
    w.str(m.fstype);
    w.str(m.data);
    w.str(m.content);
    w.strs(m.lowerDirs);
    w.u64(m.flags ?? 0);
    w.u32(m.mode ?? 0);
    w.u64(m.dev ?? 0);
    w.bool(m.readonly);
    w.bool(m.recursive);
    w.bool(m.optional);
    w.i32(m.create ?? 0);
  }
  w.str(spec.hostname);
  w.bool(spec.loopbackUp);
  w.u32(spec.rlimits.length);
  for (const r of spec.rlimits) {
    w.i32(r.resource);
    w.u64(r.soft);
    w.u64(r.hard);
  }
  w.u32(spec.uid);
  w.u32(spec.gid);
  w.u32(spec.groups.length);
  for (const g of spec.groups) w.u32(g);
  const c = spec.capabilities;
  w.u64(c.bounding);
  w.u64(c.effective);
  w.u64(c.permitted);
  w.u64(c.inheritable);
  w.u64(c.ambient);
  w.bool(spec.noNewPrivileges);
  w.str(spec.seccomp ?? undefined);
  w.bool(spec.dieWithParent);
  w.bool(spec.oomScoreAdj !== undefined);
  w.i32(spec.oomScoreAdj ?? 0);
  w.str(spec.cwd);
  w.strs(spec.argv);
  w.strs(spec.env);
  w.strs(spec.execCandidates);
  w.i32(spec.execFd);
  for (const s of spec.stdio) {
    w.i32(s.mode);
    w.i32(s.fd ?? -1);
  }
  w.bool(spec.trace);
  w.bool(spec.tty);
  w.u32(spec.ttyRows ?? 24);
  w.u32(spec.ttyCols ?? 80);
  w.u32(spec.interfaces?.length ?? 0);
  for (const nic of spec.interfaces ?? []) {
    w.str(nic.hostIfname);
    w.str(nic.bridge);
    w.str(nic.ifname);
    w.strs(nic.addresses);
    w.str(nic.gateway);
    w.u32(nic.mtu ?? 0);
    w.str(nic.mac);
    w.str(nic.alias);
    w.bool(nic.hairpin ?? true);
  }
  w.i32(spec.netnsFd ?? -1);
  w.raw(Buffer.from('END!'));
  return w.done();
}
