// `npm pack` (prepack), after prebuildify compiled and stripped the addon: puts it, and the two
// helper executables the same node-gyp run built in build/Release, into
// prebuilds/<platform>-<arch>/ under the names the loader looks for, with a prebuild.json that says what it was built for, after checking that it needs nothing
// beyond glibc. `--clean` (postpack) removes it again, so that a clone never runs a stale
// prebuild in preference to the build/ it is working on.
//
// The manifest is what lib/native/prebuild.ts checks before it loads anything: platform, arch,
// libc, the N-API version the addon was compiled against, the newest glibc symbol version it
// uses and the launch spec format of the contract.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const target = `${process.platform}-${process.arch}`;
const outDir = join(root, 'prebuilds', target);

if (process.argv.includes('--clean')) {
  rmSync(outDir, { recursive: true, force: true });
  process.exit(0);
}

/** Shared libraries glibc itself provides: the only ones a prebuild may need at run time. */
const GLIBC_LIBRARIES = new Set(['libc.so.6', 'libm.so.6', 'libdl.so.2', 'libpthread.so.0', 'librt.so.1', 'ld-linux-x86-64.so.2', 'ld-linux-aarch64.so.1']);

const FILES = [
  { name: 'berth.node', mode: 0o644 },
  { name: 'berth-helper', mode: 0o755 },
  { name: 'berth-exec', mode: 0o755 },
];

function fail(message) {
  console.error(`prebuild: ${message}`);
  process.exit(1);
}

function readelf(args, file) {
  return execFileSync('readelf', [...args, file], { encoding: 'utf8', maxBuffer: 64 << 20 });
}

function neededLibraries(file) {
  return [...readelf(['-d', '-W'], file).matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
}

/** The newest `GLIBC_x.y` symbol version the file references: the oldest glibc it loads on. */
function newestGlibcVersion(file) {
  let newest = [0, 0];
  for (const m of readelf(['--dyn-syms', '-W'], file).matchAll(/@GLIBC_(\d+)\.(\d+)/g)) {
    const v = [Number(m[1]), Number(m[2])];
    if (v[0] > newest[0] || (v[0] === newest[0] && v[1] > newest[1])) newest = v;
  }
  return `${newest[0]}.${newest[1]}`;
}

function napiVersionOfBuild() {
  const gyp = readFileSync(join(root, 'binding.gyp'), 'utf8');
  const m = /"NAPI_VERSION=(\d+)"/.exec(gyp);
  if (!m) fail('binding.gyp defines no NAPI_VERSION');
  return Number(m[1]);
}

if (process.platform !== 'linux') fail(`berth builds for Linux only, not ${process.platform}`);
const glibcRuntime = process.report.getReport().header.glibcVersionRuntime;
if (!glibcRuntime) fail('this builder is not a glibc system; prebuilds are made and labelled for glibc');

const built = join(root, 'build', 'Release');
// prebuildify names the addon by its tags (berth.glibc.node); the loader and the manifest know
// it as berth.node.
const taggedName = existsSync(outDir) ? readdirSync(outDir).find((f) => f.endsWith('.node') && f !== 'berth.node') : undefined;
if (taggedName === undefined) fail(`no addon from prebuildify in ${outDir}; run \`prebuildify --napi --strip --tag-libc\` first (npm pack does)`);
const tagged = join(outDir, taggedName);
// prebuildify moved the addon out of build/Release: a copy goes back, so the clone's own build/
// stays whole for everything that runs after a pack (the test suite packs in the middle).
copyFileSync(tagged, join(built, 'berth.node'));
/** Where each shipped file comes from. */
const sourceOf = (name) => (name === 'berth.node' ? tagged : join(built, name));
for (const { name } of FILES) {
  if (!existsSync(sourceOf(name))) fail(`${sourceOf(name)} is missing; run \`npm run build:native\` first`);
}
for (const { name } of FILES) {
  const foreign = neededLibraries(sourceOf(name)).filter((lib) => !GLIBC_LIBRARIES.has(lib));
  if (foreign.length > 0) {
    fail(`${name} needs ${foreign.join(', ')} at run time; a prebuild may need nothing beyond glibc (link it statically in binding.gyp)`);
  }
}

const addon = createRequire(import.meta.url)(tagged);
const manifest = {
  platform: process.platform,
  arch: process.arch,
  libc: 'glibc',
  glibc: newestGlibcVersion(tagged),
  napi: napiVersionOfBuild(),
  specFormatVersion: addon.specFormatVersion,
  files: FILES.map((f) => f.name),
};

mkdirSync(outDir, { recursive: true });
for (const { name, mode } of FILES) {
  // The addon as prebuildify stripped it; the helpers are linked with -s already.
  copyFileSync(sourceOf(name), join(outDir, name));
  chmodSync(join(outDir, name), mode);
}
rmSync(tagged);
writeFileSync(join(outDir, 'prebuild.json'), `${JSON.stringify(manifest, null, 2)}\n`);
console.log(`prebuild: ${outDir} (${manifest.platform}-${manifest.arch}, glibc >= ${manifest.glibc}, N-API ${manifest.napi})`);
