/**
 * The `limits` option where berth may not create cgroups, against the real kernel: a child
 * Node process runs in a private mount namespace in which every cgroup filesystem is read-only
 * (as inside a container given a read-only cgroupfs), so each cgroup mkdir fails with EROFS.
 * `strict` refuses limits with the reason and the fix; `best-effort` and a launch without
 * limits run without a cgroup and say so; without a device cgroup CAP_MKNOD is gone.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { busyboxRootfs, kernelSkipReason } from '../helpers/busybox-rootfs.js';
import { parseCases, type Case } from '../helpers/case-report.js';

const skip = kernelSkipReason();
const child = join(dirname(fileURLToPath(import.meta.url)), 'limits-readonly-child.ts');
const CAP_MKNOD = 27n;

describe('limits where the cgroup filesystem is read-only', { skip }, () => {
  let cases: Map<string, Case>;
  let root: string;
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'berth-limits-'));
    // Remount every cgroup mount read-only in a private mount namespace: nothing changes outside it.
    const script = `set -e
for m in $(awk '$3 == "cgroup" || $3 == "cgroup2" { print $2 }' /proc/self/mounts); do mount -o remount,bind,ro "$m"; done
exec "$0" --import tsx "$@"`;
    const out = execFileSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script, process.execPath, child, busyboxRootfs(), root], {
      encoding: 'utf8',
      timeout: 120_000,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    cases = parseCases(out);
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  test("strict (the default): memory is refused with UnsupportedError naming the option, the read-only cgroupfs and the way out", () => {
    const c = cases.get('strict-memory')!;
    assert.equal(c.ok, false, JSON.stringify(c.result));
    assert.equal(c.error!.code, 'ERR_UNSUPPORTED');
    assert.match(c.error!.message, /^memory: cannot be enforced/);
    assert.match(c.error!.message, /read-only/);
    assert.match(c.error!.message, /limits: 'best-effort'/);
    const p = cases.get('strict-pids')!;
    assert.equal(p.ok, false);
    assert.match(p.error!.message, /^pids: cannot be enforced/);
  });

  test('best-effort: the container runs, the result lists the skipped limits, no cgroup is mounted, CAP_MKNOD is gone', () => {
    const c = cases.get('best-effort')!;
    assert.equal(c.ok, true, JSON.stringify(c.error));
    assert.equal(c.result.exitCode, 0, c.result.stderr);
    assert.deepEqual(c.result.limitsSkipped.options, ['memory', 'cpus', 'pids']);
    assert.match(c.result.limitsSkipped.reason, /read-only/);
    const capEff = BigInt(`0x${/CapEff:\s*([0-9a-f]+)/.exec(c.result.stdout)![1]}`);
    // No device cgroup holds a whitelist: the container must not be able to make device nodes.
    assert.equal(capEff & (1n << CAP_MKNOD), 0n, c.result.stdout);
    // Still in a pid namespace of its own.
    assert.match(c.result.stdout, /pid=1\n/);
  });

  test('no limit asked: runs under strict, reporting only that the default pids limit is not in force', () => {
    const c = cases.get('no-limits')!;
    assert.equal(c.ok, true, JSON.stringify(c.error));
    assert.equal(c.result.stdout, 'ran\n');
    assert.deepEqual(c.result.limitsSkipped.options, ['pids']);
  });

  test('a best-effort container starts, execs, says so in inspect(); stats() is refused with the reason', () => {
    const c = cases.get('container')!;
    assert.equal(c.ok, true, JSON.stringify(c.error));
    assert.equal(c.result.exec, 'exec-ok\n');
    assert.deepEqual(c.result.limitsSkipped.Options, ['memory', 'pids']);
    assert.match(c.result.stats, /^UnsupportedError: .*without a cgroup/);
    const s = cases.get('container-strict')!;
    assert.equal(s.ok, false);
    assert.match(s.error!.message, /^memory: cannot be enforced/);
  });

  test("rt.info() says limits are not enforceable and what each mode does", () => {
    const c = cases.get('info')!;
    assert.equal(c.result.enforceable, false);
    assert.match(c.result.detail, /best-effort/);
  });
});
