/**
 * Encodes a launch spec into the binary format `src-native/spec-codec.cc` decodes. One format
 * for both launch paths (the addon in this process, the detached monitor in another), so they
 * cannot drift apart. Little-endian, fixed field order, framed by magics.
 * @module
 */
import type { NativeLaunchSpec } from './launch-spec.js';

/** Must equal `kSpecFormatVersion` in src-native/spec-codec.h; checked when the addon loads. */
export const SPEC_FORMAT_VERSION = 10;

// One growable buffer, reused: encoding runs on every container start, and a Buffer per
// field (the obvious way) showed up in profiles.
let scratch = Buffer.allocUnsafe(64 * 1024);

class Writer {
  #buf = scratch;
  #at = 0;

  #room(n: number): void {
    if (this.#at + n <= this.#buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.#buf.length * 2, this.#at + n));
    this.#buf.copy(bigger, 0, 0, this.#at);
    this.#buf = bigger;
    scratch = bigger;
  }
  raw(b: Buffer): void {
    this.#room(b.length);
    b.copy(this.#buf, this.#at);
    this.#at += b.length;
  }
  i32(v: number): void {
    this.#room(4);
    this.#at = this.#buf.writeInt32LE(v | 0, this.#at);
  }
  u32(v: number): void {
    this.#room(4);
    this.#at = this.#buf.writeUInt32LE(v >>> 0, this.#at);
  }
  u64(v: bigint | number): void {
    const big = typeof v === 'bigint' ? v : v < 0 ? 0xffff_ffff_ffff_ffffn : BigInt(Math.trunc(v));
    this.#room(8);
    this.#at = this.#buf.writeBigUInt64LE(BigInt.asUintN(64, big), this.#at);
  }
  bool(v: boolean | undefined): void {
    this.#room(1);
    this.#buf[this.#at++] = v ? 1 : 0;
  }
  str(v: string | Buffer | undefined | null): void {
    if (v === undefined || v === null) return this.u32(0);
    if (Buffer.isBuffer(v)) {
      this.u32(v.length);
      return this.raw(v);
    }
    const len = Buffer.byteLength(v, 'utf8');
    this.u32(len);
    this.#room(len);
    this.#at += this.#buf.write(v, this.#at, 'utf8');
  }
  strs(v: readonly string[] | undefined): void {
    this.u32(v?.length ?? 0);
    for (const s of v ?? []) this.str(s);
  }
  /** A copy: the scratch buffer is reused by the next encode. */
  done(): Buffer {
    return Buffer.from(this.#buf.subarray(0, this.#at));
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
  w.i32(spec.join?.helperFd ?? -1);
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
  w.str(spec.cgroupDir);
  w.str(spec.idMapHelpers?.newuidmap);
  w.str(spec.idMapHelpers?.newgidmap);
  w.bool(spec.unprivileged);
  w.str(spec.dns?.control);
  w.str(spec.dns?.message);
  w.i32(spec.joinUserns?.fd ?? -1);
  w.bool(spec.joinUserns?.setgroupsDenied ?? false);
  w.raw(Buffer.from('END!'));
  return w.done();
}
