/**
 * The loader refuses a prebuilt core made for another machine before loading it, with a
 * PrebuildMismatchError naming what the prebuild is for and what this process needs. Each case
 * is a crafted package directory: a manifest and ELF headers that claim another arch, libc,
 * glibc or N-API version, or a directory whose name and manifest say x64 while its files are
 * arm64. The accepted case is the real core, copied by scripts/prebuild.mjs's own rules.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { PrebuildMismatchError, checkPrebuild, hostTarget, loadCore, type BuildTarget, type PrebuildManifest } from '../../lib/native.js';
import { PrebuildMismatchError as PublicPrebuildMismatchError, UnsupportedError, isBerthError } from '../../lib/index.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BUILT = join(REPO, 'build', 'Release');
const scratch = mkdtempSync(join(tmpdir(), 'berth-prebuild-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

const host: BuildTarget = { platform: 'linux', arch: 'x64', libc: 'glibc', glibc: '2.36', napi: 9 };
const FILES = ['berth.node', 'berth-helper', 'berth-exec'];

/** A 64-bit little-endian ELF header for `machine` (62: x86-64, 183: aarch64), padded. */
function elfHeader(machine: number): Buffer {
  const b = Buffer.alloc(64);
  b.writeUInt32BE(0x7f454c46, 0);
  b[4] = 2; // ELFCLASS64
  b[5] = 1; // little-endian
  b[6] = 1;
  b.writeUInt16LE(3, 16); // ET_DYN
  b.writeUInt16LE(machine, 18);
  return b;
}

let packages = 0;
/** A package root whose prebuilds/<dirName>/ holds `manifest` and files with ELF machine `machine`. */
function craftedPackage(dirName: string, manifest: Partial<PrebuildManifest>, machine: number): { root: string; dir: string } {
  const root = join(scratch, `pkg-${packages++}`);
  const dir = join(root, 'prebuilds', dirName);
  mkdirSync(dir, { recursive: true });
  const full = { platform: 'linux', arch: 'x64', libc: 'glibc', glibc: '2.36', napi: 8, specFormatVersion: 5, files: FILES, ...manifest };
  writeFileSync(join(dir, 'prebuild.json'), JSON.stringify(full));
  for (const f of FILES) writeFileSync(join(dir, f), elfHeader(machine));
  return { root, dir };
}

function refusal(dir: string, target: BuildTarget = host): PrebuildMismatchError {
  const verdict = checkPrebuild(dir, target);
  assert.equal(verdict.ok, false, `${dir} should be refused`);
  return (verdict as { ok: false; error: PrebuildMismatchError }).error;
}

describe('prebuild check (lib/native/prebuild.ts)', () => {
  it('accepts a prebuild made for this machine', () => {
    const { dir } = craftedPackage('linux-x64', {}, 62);
    const verdict = checkPrebuild(dir, host);
    assert.equal(verdict.ok, true);
  });

  it('refuses a prebuild for another arch, naming both', () => {
    const { dir } = craftedPackage('linux-arm64', { arch: 'arm64' }, 183);
    const e = refusal(dir);
    assert.equal(e.found, 'linux-arm64, glibc >= 2.36, N-API 8');
    assert.equal(e.needed, 'linux-x64, glibc <= 2.36, N-API <= 9');
    assert.match(e.message, /is for linux-arm64, glibc >= 2\.36, N-API 8; this process needs linux-x64, glibc <= 2\.36, N-API <= 9/);
    assert.equal(e.path, dir);
  });

  it('refuses a prebuild for another libc', () => {
    const e = refusal(craftedPackage('linux-x64', { libc: 'musl', glibc: undefined }, 62).dir);
    assert.match(e.message, /is for linux-x64, musl, N-API 8; this process needs linux-x64, glibc <= 2\.36/);
  });

  it('refuses a prebuild that needs a newer glibc than the system has', () => {
    const e = refusal(craftedPackage('linux-x64', { glibc: '2.38' }, 62).dir);
    assert.match(e.message, /needs glibc 2\.38 .*this system has 2\.36/);
  });

  it('refuses a prebuild compiled for a newer N-API than this Node offers', () => {
    const e = refusal(craftedPackage('linux-x64', { napi: 10 }, 62).dir);
    assert.match(e.message, /needs N-API 10 .*this Node offers 9/);
  });

  it('refuses a directory labelled x64 whose files are arm64 (the ELF header decides)', () => {
    const e = refusal(craftedPackage('linux-x64', {}, 183).dir);
    assert.equal(e.found, 'berth.node: linux-arm64');
    assert.match(e.message, /is labelled linux-x64, glibc >= 2\.36, N-API 8 but its berth\.node is built for linux-arm64/);
  });

  it('refuses a file that is no ELF file, and a prebuild without its manifest', () => {
    const { dir } = craftedPackage('linux-x64', {}, 62);
    writeFileSync(join(dir, 'berth-exec'), '#!/bin/sh\n');
    assert.match(refusal(dir).message, /its berth-exec is not an ELF file/);
    rmSync(join(dir, 'prebuild.json'));
    assert.match(refusal(dir).message, /cannot be checked: .*prebuild\.json is missing/);
  });
});

describe('loader (lib/native.ts loadCore)', () => {
  it('throws a PrebuildMismatchError when the only prebuild is for another arch and no build/ exists', () => {
    const { root, dir } = craftedPackage('linux-arm64', { arch: 'arm64' }, 183);
    assert.throws(
      () => loadCore(root, host),
      (e: unknown) => {
        assert.ok(e instanceof PublicPrebuildMismatchError, 'the public export is the class thrown');
        assert.ok(e instanceof UnsupportedError);
        assert.ok(isBerthError(e));
        assert.equal(e.code, 'ERR_UNSUPPORTED');
        assert.equal(e.path, dir);
        assert.equal(e.found, 'linux-arm64, glibc >= 2.36, N-API 8');
        assert.match(e.message, /this process needs linux-x64/);
        assert.match(e.message, /build\/Release\/berth\.node \(absent\)/);
        assert.match(e.message, /npm rebuild berth/);
        return true;
      },
    );
  });

  it('a refused prebuild (labelled x64, arm64 inside) falls through to build/', { skip: !existsSync(join(BUILT, 'berth.node')) && 'no build/Release' }, () => {
    const { root } = craftedPackage('linux-x64', {}, 183);
    mkdirSync(join(root, 'build', 'Release'), { recursive: true });
    for (const f of FILES) copyFileSync(join(BUILT, f), join(root, 'build', 'Release', f));
    const loaded = loadCore(root, hostTarget());
    assert.equal(loaded.dir, join(root, 'build', 'Release'));
    assert.equal(typeof loaded.binding.spawn, 'function');
  });

  it('without any prebuild or build, says what it tried and how to build', () => {
    const root = join(scratch, 'empty');
    mkdirSync(root);
    assert.throws(
      () => loadCore(root, host),
      (e: unknown) => e instanceof UnsupportedError && !(e instanceof PrebuildMismatchError) && /prebuilds\/linux-x64 \(no prebuild for this platform\)/.test(e.message),
    );
  });
});
