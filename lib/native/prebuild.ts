/**
 * Whether a prebuilt core in `prebuilds/<platform>-<arch>/` was made for this process, judged
 * before anything is loaded: a dlopen of an addon for another machine fails with a linker
 * message that names neither what the file is nor what was needed, and a helper for another
 * arch would only fail at the first container's exec.
 *
 * The facts come from two places: the `prebuild.json` that `scripts/prebuild.mjs` writes when
 * the package is packed (libc, glibc version, N-API version), and the ELF headers of the files
 * themselves (machine and class), so that a directory whose name or manifest lies is refused too.
 * @internal
 * @module
 */
import { closeSync, existsSync, openSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { UnsupportedError } from '../errors.js';

/** What a prebuild was made for, or what this process needs. */
export interface BuildTarget {
  platform: string;
  arch: string;
  /** `glibc`, `musl`, … */
  libc: string;
  /** glibc's version (`2.36`): the newest one the prebuild uses, or the one this process runs on. */
  glibc?: string;
  /** The N-API version the addon was compiled for, or the newest one this Node offers. */
  napi: number;
}

/** The contents of `prebuild.json`. */
export interface PrebuildManifest extends BuildTarget {
  /** The launch spec format of the contract the addon implements (src-native/spec-codec.h). */
  specFormatVersion: number;
  /** The files of the prebuild: the addon and the helper executables. */
  files: string[];
}

/**
 * A prebuilt native core was made for another machine or Node (arch, platform, libc, glibc or
 * N-API version) and nothing else could be loaded. `.found` is what the prebuild is for,
 * `.needed` what this process needs, `.path` the prebuild's directory.
 */
export class PrebuildMismatchError extends UnsupportedError {
  /** What the refused prebuild was made for, e.g. `linux-arm64, glibc >= 2.36, N-API 8`. */
  readonly found: string;
  /** What this process needs, e.g. `linux-x64, glibc <= 2.36, N-API <= 9`. */
  readonly needed: string;

  constructor(found: string, needed: string, message: string, path: string) {
    super(message, { path });
    this.found = found;
    this.needed = needed;
  }
}

/** The ELF `e_machine` of each Node arch berth could be built for. */
const ELF_MACHINE: Readonly<Record<string, number>> = { x64: 62, arm64: 183, ia32: 3, arm: 40, riscv64: 243, ppc64: 21, s390x: 22 };

/** This process: its platform, arch, libc and N-API version. */
export function hostTarget(): BuildTarget {
  const header = (process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header;
  const glibc = header?.glibcVersionRuntime;
  return {
    platform: process.platform,
    arch: process.arch,
    libc: glibc ? 'glibc' : 'musl',
    ...(glibc ? { glibc } : {}),
    napi: Number(process.versions.napi),
  };
}

function describeBuilt(t: BuildTarget): string {
  return `${t.platform}-${t.arch}, ${t.libc}${t.glibc ? ` >= ${t.glibc}` : ''}, N-API ${t.napi}`;
}

function describeNeeded(t: BuildTarget): string {
  return `${t.platform}-${t.arch}, ${t.libc}${t.glibc ? ` <= ${t.glibc}` : ''}, N-API <= ${t.napi}`;
}

function versionAbove(a: string, b: string): boolean {
  const [a1 = 0, a2 = 0] = a.split('.').map(Number);
  const [b1 = 0, b2 = 0] = b.split('.').map(Number);
  return a1 > b1 || (a1 === b1 && a2 > b2);
}

/** The arch an ELF file was built for (by `e_machine`), or why it is not a usable ELF file. */
function elfArch(path: string): { arch?: string; problem?: string } {
  const header = Buffer.alloc(20);
  let read: number;
  const fd = openSync(path, 'r');
  try {
    read = readSync(fd, header, 0, header.length, 0);
  } finally {
    closeSync(fd);
  }
  if (read < 20 || header.readUInt32BE(0) !== 0x7f454c46) return { problem: 'not an ELF file' };
  const little = header[5] === 1;
  const machine = little ? header.readUInt16LE(18) : header.readUInt16BE(18);
  const arch = Object.keys(ELF_MACHINE).find((a) => ELF_MACHINE[a] === machine);
  return arch === undefined ? { problem: `an ELF file for machine ${machine}` } : { arch };
}

function readManifest(dir: string): PrebuildManifest | string {
  const path = join(dir, 'prebuild.json');
  if (!existsSync(path)) return `${path} is missing`;
  try {
    const m = JSON.parse(readFileSync(path, 'utf8')) as Partial<PrebuildManifest>;
    if (typeof m.platform !== 'string' || typeof m.arch !== 'string' || typeof m.libc !== 'string' || typeof m.napi !== 'number' || !Array.isArray(m.files)) {
      return `${path} lacks platform, arch, libc, napi or files`;
    }
    return m as PrebuildManifest;
  } catch (error) {
    return `${path} is not JSON: ${(error as Error).message}`;
  }
}

/** The verdict on one prebuild directory. */
export type PrebuildVerdict =
  | { ok: true; manifest: PrebuildManifest }
  | { ok: false; error: PrebuildMismatchError };

/**
 * Checks the prebuild in `dir` against `host` without loading it: its manifest, then the ELF
 * machine of every file it lists (a directory named `linux-x64` holding arm64 files is refused).
 */
export function checkPrebuild(dir: string, host: BuildTarget = hostTarget()): PrebuildVerdict {
  const needed = describeNeeded(host);
  const refuse = (found: string, why: string): PrebuildVerdict => ({
    ok: false,
    error: new PrebuildMismatchError(found, needed, `the prebuilt native core in ${dir} ${why}; this process needs ${needed}`, dir),
  });
  const manifest = readManifest(dir);
  if (typeof manifest === 'string') return refuse('an unlabelled prebuild', `cannot be checked: ${manifest}`);
  const found = describeBuilt(manifest);
  if (manifest.platform !== host.platform || manifest.arch !== host.arch || manifest.libc !== host.libc) {
    return refuse(found, `is for ${found}`);
  }
  if (manifest.glibc !== undefined && host.glibc !== undefined && versionAbove(manifest.glibc, host.glibc)) {
    return refuse(found, `needs glibc ${manifest.glibc} (it is for ${found}), this system has ${host.glibc}`);
  }
  if (manifest.napi > host.napi) return refuse(found, `needs N-API ${manifest.napi} (it is for ${found}), this Node offers ${host.napi}`);
  for (const file of manifest.files) {
    const path = join(dir, file);
    if (!existsSync(path)) return refuse(found, `lacks ${file}, which its prebuild.json lists`);
    const elf = elfArch(path);
    if (elf.arch !== host.arch) {
      const what = elf.arch ? `${host.platform}-${elf.arch}` : elf.problem!;
      return refuse(`${file}: ${what}`, `is labelled ${found} but its ${file} is ${elf.arch ? `built for ${what}` : what}`);
    }
  }
  return { ok: true, manifest };
}
