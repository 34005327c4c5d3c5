/**
 * The package as a user receives it: `npm pack` (its prepack builds the core and copies it into
 * prebuilds/), then an install of the tarball into a fresh project by an npm whose PATH holds
 * only `node`, `npm`, `sh`, `bash` and `id` — no compiler, no make, no python3 — with libzstd hidden from the
 * loader, and a container run from both an ESM `import` and a CJS `require`.
 *
 * The other side: a tarball without a prebuild, installed where the build tools are missing,
 * fails with one message that lists them and never runs the package manager of the system (an
 * `apt-get` on PATH records any call).
 *
 * Needs root (containers, mount namespaces), g++/make/python3 for the pack itself, and the npm
 * cache or registry for berth's one runtime dependency.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const LIBZSTD = '/usr/lib/x86_64-linux-gnu/libzstd.so.1';
const scratch = mkdtempSync(join(tmpdir(), 'berth-pack-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

/** Shared libraries glibc provides: the only ones a prebuilt file may need. */
const GLIBC_LIBRARIES = new Set(['libc.so.6', 'libm.so.6', 'libdl.so.2', 'libpthread.so.0', 'librt.so.1', 'ld-linux-x86-64.so.2']);

/** A bin directory with only node, npm, sh, bash, id — and an `apt-get` that records being called. */
function bareBin(): { bin: string; aptMarker: string } {
  const bin = join(scratch, 'bin');
  const aptMarker = join(scratch, 'apt-get-was-called');
  mkdirSync(bin, { recursive: true });
  symlinkSync(process.execPath, join(bin, 'node'));
  symlinkSync(execFileSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim(), join(bin, 'npm'));
  symlinkSync('/bin/sh', join(bin, 'sh'));
  // bash and id: what a shell install script finds on any system (the old preinstall used both).
  symlinkSync('/bin/bash', join(bin, 'bash'));
  symlinkSync('/usr/bin/id', join(bin, 'id'));
  writeFileSync(join(bin, 'apt-get'), `#!/bin/sh\necho "$@" >> ${aptMarker}\nexit 1\n`);
  chmodSync(join(bin, 'apt-get'), 0o755);
  return { bin, aptMarker };
}

/** Runs `argv` with a clean environment whose PATH is `bin` only. */
function bare(bin: string, argv: string[], cwd: string): SpawnSyncReturns<string> {
  const env = { PATH: bin, HOME: process.env.HOME ?? '/root', TMPDIR: tmpdir() };
  return spawnSync(argv[0]!, argv.slice(1), { cwd, env, encoding: 'utf8', timeout: 5 * 60_000 });
}

/** `argv` in a private mount namespace where `hidden` paths are covered (a file by /dev/null, a directory by an empty tmpfs). */
function hiding(hidden: string[], argv: string[]): string[] {
  const covers = hidden.map((p) => (p.endsWith('/') ? `/bin/mount -t tmpfs none ${p}` : `/bin/mount --bind /dev/null ${p}`)).join(' && ');
  return ['/usr/bin/unshare', '--mount', '--propagation', 'private', '/bin/sh', '-c', `${covers} && exec "$@"`, 'hiding', ...argv];
}

function freshProject(name: string): string {
  const dir = join(scratch, name);
  mkdirSync(dir);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name, version: '1.0.0', private: true }));
  return dir;
}

function npmInstall(bin: string, project: string, tarball: string): SpawnSyncReturns<string> {
  // --prefer-offline: berth's own dependency comes from the npm cache when it is there.
  return bare(bin, ['npm', 'install', '--prefer-offline', '--no-audit', '--no-fund', '--foreground-scripts', tarball], project);
}

function neededLibraries(file: string): string[] {
  return [...execFileSync('readelf', ['-d', '-W', file], { encoding: 'utf8' }).matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]!);
}

describe('npm pack, then install without a compiler', () => {
  let tarball = '';
  let entries: string[] = [];
  let bin = '';
  let aptMarker = '';

  before(() => {
    ({ bin, aptMarker } = bareBin());
    const packDir = join(scratch, 'packed');
    mkdirSync(packDir);
    execFileSync('npm', ['pack', '--pack-destination', packDir], { cwd: REPO, stdio: ['ignore', 'ignore', 'inherit'] });
    const packed = readdirSync(packDir).filter((f) => f.endsWith('.tgz'));
    assert.equal(packed.length, 1, `one tarball in ${packDir}`);
    tarball = join(packDir, packed[0]!);
    entries = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).trim().split('\n');
  });

  it('ships the prebuilt core for linux-x64, and no test, bench or build files', () => {
    for (const f of ['berth.node', 'berth-helper', 'berth-exec', 'prebuild.json']) {
      assert.ok(entries.includes(`package/prebuilds/linux-x64/${f}`), `prebuilds/linux-x64/${f} is packed`);
    }
    for (const f of ['dist/index.js', 'dist/index.cjs', 'dist/index.d.ts', 'dist/index.d.cts', 'dist/cli.js', 'scripts/install.mjs']) {
      assert.ok(entries.includes(`package/${f}`), `${f} is packed`);
    }
    const unwanted = entries.filter((e) => /^package\/(test|bench|build|examples|docs|lib)\//.test(e) || /\.test\.[cm]?[jt]s$/.test(e));
    assert.deepEqual(unwanted, []);
    assert.equal(existsSync(join(REPO, 'prebuilds', 'linux-x64')), false, 'postpack removed the prebuild from the working tree');
  });

  it('the prebuilt files need nothing beyond glibc', () => {
    const dir = join(scratch, 'unpacked');
    mkdirSync(dir);
    execFileSync('tar', ['-xzf', tarball, '-C', dir]);
    const manifest = JSON.parse(readFileSync(join(dir, 'package/prebuilds/linux-x64/prebuild.json'), 'utf8'));
    assert.deepEqual({ platform: manifest.platform, arch: manifest.arch, libc: manifest.libc }, { platform: 'linux', arch: 'x64', libc: 'glibc' });
    for (const f of ['berth.node', 'berth-helper', 'berth-exec']) {
      const foreign = neededLibraries(join(dir, 'package/prebuilds/linux-x64', f)).filter((l) => !GLIBC_LIBRARIES.has(l));
      assert.deepEqual(foreign, [], `${f} needs only glibc`);
    }
  });

  it('publint and arethetypeswrong find nothing wrong with the tarball', () => {
    const publint = spawnSync(join(REPO, 'node_modules/.bin/publint'), ['run', tarball, '--strict', '--level', 'warning'], { encoding: 'utf8' });
    assert.equal(publint.status, 0, `publint:\n${publint.stdout}${publint.stderr}`);
    const attw = spawnSync(join(REPO, 'node_modules/.bin/attw'), [tarball, '--format', 'ascii', '--no-color'], { encoding: 'utf8' });
    assert.equal(attw.status, 0, `attw:\n${attw.stdout}${attw.stderr}`);
  });

  it('installs with no compiler on PATH without compiling, then runs a container from ESM and CJS with libzstd hidden', () => {
    const project = freshProject('app');
    const install = npmInstall(bin, project, tarball);
    assert.equal(install.status, 0, `npm install:\n${install.stdout}${install.stderr}`);
    const installed = join(project, 'node_modules', 'berth');
    assert.equal(existsSync(join(installed, 'build')), false, 'nothing was compiled');
    assert.equal(existsSync(aptMarker), false, 'apt-get was never called');

    writeFileSync(
      join(project, 'esm.mjs'),
      "import { run } from 'berth';\n" +
        "const r = await run({ host: true }, ['sh', '-c', 'echo esm in $(cat /proc/1/comm)']);\n" +
        'console.log(JSON.stringify({ exitCode: r.exitCode, stdout: r.stdout }));\n',
    );
    writeFileSync(
      join(project, 'cjs.cjs'),
      "const { run, isBerthError } = require('berth');\n" +
        "run({ host: true }, ['sh', '-c', 'echo cjs; exit 3']).then((r) => console.log(JSON.stringify({ exitCode: r.exitCode, stdout: r.stdout, guard: typeof isBerthError })));\n",
    );
    const esm = bare(bin, hiding([LIBZSTD], ['node', 'esm.mjs']), project);
    assert.equal(esm.status, 0, `esm.mjs:\n${esm.stdout}${esm.stderr}`);
    assert.deepEqual(JSON.parse(esm.stdout), { exitCode: 0, stdout: 'esm in sh\n' });
    const cjs = bare(bin, hiding([LIBZSTD], ['node', 'cjs.cjs']), project);
    assert.equal(cjs.status, 0, `cjs.cjs:\n${cjs.stdout}${cjs.stderr}`);
    assert.deepEqual(JSON.parse(cjs.stdout), { exitCode: 3, stdout: 'cjs\n', guard: 'function' });

    // The `berth` bin of the installed package, on a state directory of its own.
    const state = join(scratch, 'cli-state');
    const cliRun = bare(bin, hiding([LIBZSTD], ['node_modules/.bin/berth', '--root', state, 'run', '--rm', '--host', 'sh', '-c', 'echo bin; exit 4']), project);
    assert.deepEqual({ code: cliRun.status, stdout: cliRun.stdout }, { code: 4, stdout: 'bin\n' }, cliRun.stderr);
    const cliPs = bare(bin, ['node_modules/.bin/berth', '--root', state, 'ps', '-a', '--json'], project);
    assert.equal(cliPs.status, 0, cliPs.stderr);
    assert.deepEqual(JSON.parse(cliPs.stdout), []);
  });

  it('without a prebuild and without build tools, install fails with one message listing them and installs nothing', () => {
    const repacked = join(scratch, 'no-prebuild');
    mkdirSync(repacked);
    execFileSync('tar', ['-xzf', tarball, '-C', repacked]);
    rmSync(join(repacked, 'package/prebuilds/linux-x64'), { recursive: true });
    const bareTarball = join(scratch, 'berth-no-prebuild.tgz');
    execFileSync('tar', ['-czf', bareTarball, '-C', repacked, 'package']);

    const project = freshProject('app-source');
    // /usr/include hidden too, so libzstd-dev's header is missing as well.
    const install = bare(bin, hiding(['/usr/include/'], ['npm', 'install', '--prefer-offline', '--no-audit', '--no-fund', '--foreground-scripts', bareTarball]), project);
    assert.equal(existsSync(aptMarker), false, `apt-get was called: ${existsSync(aptMarker) ? readFileSync(aptMarker, 'utf8') : ''}`);
    assert.notEqual(install.status, 0, 'the install fails');
    const output = `${install.stdout}${install.stderr}`;
    const lines = output.split('\n').filter((l) => l.startsWith('berth:'));
    assert.match(lines.join('\n'), /no prebuilt core for linux-x64 ships in this package, and building it from source needs g\+\+, make, python3, libzstd-dev, which are missing/);
    assert.match(lines.join('\n'), /apt-get install g\+\+ make python3 libzstd-dev/);
    assert.equal(existsSync(join(project, 'node_modules', 'berth', 'build')), false, 'nothing was compiled');
  });
});
