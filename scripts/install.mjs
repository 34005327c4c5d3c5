// `npm install` of berth: use the prebuilt core when one ships for this machine, otherwise build
// from source — and when the tools for that are missing, fail with one message that lists them.
// It never installs anything: a library does not touch the system's packages.
//
// This runs before dist/ exists (in a clone, `prepare` builds it after install), so it cannot
// use the loader's checks in lib/native/prebuild.ts. It checks what decides whether the prebuilt
// files can load at all (platform, arch, libc, N-API) and then dlopens the addon; the loader
// repeats the full check, with its typed error, every time the package is used.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const target = `${process.platform}-${process.arch}`;
const prebuildDir = join(root, 'prebuilds', target);
const hostLibc = process.report.getReport().header.glibcVersionRuntime ? 'glibc' : 'not glibc';

/** Why the shipped prebuild cannot serve this machine, or undefined when it can. */
function prebuildProblem() {
  const manifestPath = join(prebuildDir, 'prebuild.json');
  if (!existsSync(manifestPath)) return `no prebuilt core for ${target} ships in this package`;
  const m = JSON.parse(readFileSync(manifestPath, 'utf8'));
  const hostNapi = Number(process.versions.napi);
  if (m.platform !== process.platform || m.arch !== process.arch) return `the prebuilt core is for ${m.platform}-${m.arch}, this machine is ${target}`;
  if (m.libc !== hostLibc) return `the prebuilt core is for ${m.libc}, this machine's libc is ${hostLibc}`;
  if (m.napi > hostNapi) return `the prebuilt core needs N-API ${m.napi}, this Node offers ${hostNapi}`;
  try {
    createRequire(import.meta.url)(join(prebuildDir, 'berth.node'));
  } catch (error) {
    return `the prebuilt core does not load here: ${error.message}`;
  }
  return undefined;
}

function onPath(command) {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => dir !== '' && existsSync(join(dir, command)));
}

/** Build tools that are missing, by their Debian package names. */
function missingBuildTools() {
  const missing = [];
  if (!onPath('g++')) missing.push('g++');
  if (!onPath('make')) missing.push('make');
  if (!onPath('python3')) missing.push('python3');
  // binding.gyp links libzstd.a statically: the headers alone are not enough.
  const zstdArchive = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/usr/local/lib'].some((d) => existsSync(join(d, 'libzstd.a')));
  if (!existsSync('/usr/include/zstd.h') || !zstdArchive) missing.push('libzstd-dev');
  return missing;
}

const problem = prebuildProblem();
if (problem === undefined) process.exit(0);

const missing = missingBuildTools();
if (missing.length > 0) {
  console.error(
    `berth: ${problem}, and building it from source needs ${missing.join(', ')}, which ${missing.length === 1 ? 'is' : 'are'} missing.\n` +
      `berth: install ${missing.length === 1 ? 'it' : 'them'} (Debian: apt-get install ${missing.join(' ')}), then run \`npm rebuild berth\`.`,
  );
  process.exit(1);
}

// node-gyp-build loads an addon already built in build/ (a clone's second install) or runs
// node-gyp rebuild — npm's own node-gyp, which npm hands install scripts on PATH.
const nodeGypBuild = join(dirname(createRequire(import.meta.url).resolve('node-gyp-build/package.json')), 'bin.js');
const build = spawnSync(process.execPath, [nodeGypBuild], { cwd: root, stdio: 'inherit' });
if (build.error) {
  console.error(`berth: could not run node-gyp-build: ${build.error.message}`);
  process.exit(1);
}
process.exit(build.status ?? 1);
