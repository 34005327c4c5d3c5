/**
 * A pooled command is started by the sandbox's parked PID 1 (src-native/park-main.cc), not by
 * an exec from the host: it must still get exactly what `run()` gives the same command with
 * the same options: user and groups, every capability set, no_new_privs, the seccomp filter,
 * rlimits. Compared field by field from /proc/self/status and /proc/self/limits, inside.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Runtime, type PoolSandboxOptions } from '../../lib/index.js';
import { busyboxRootfs, kernelSkipReason } from '../helpers/busybox-rootfs.js';

const skip = kernelSkipReason();

const FIELDS = ['Uid', 'Gid', 'Groups', 'CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb', 'NoNewPrivs', 'Seccomp', 'Seccomp_filters'];
const PROBE = ['sh', '-c', 'cat /proc/self/status /proc/self/limits; echo "cwd=$(pwd)"'];

/** The security-relevant lines of what PROBE printed. */
function identity(out: string): string[] {
  return out.split('\n').filter((l) => FIELDS.some((f) => l.startsWith(`${f}:`)) || l.startsWith('Max ') || l.startsWith('cwd='));
}

describe('pool: a pooled command gets what run() gives it', { skip, timeout: 180_000 }, () => {
  let root: string;
  let rt: Runtime;

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'berth-pool-security-'));
    rt = await Runtime.open({ root });
  });

  after(async () => {
    await rt?.close();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  const cases: Array<{ name: string; options: PoolSandboxOptions; perCommand?: { user?: string; workdir?: string } }> = [
    { name: 'defaults (root, the default capabilities and seccomp profile)', options: {} },
    { name: 'a non-root user, a dropped capability, an added one, ulimits', options: { user: '1000:1000', capDrop: ['CHOWN', 'SETUID'], capAdd: ['NET_ADMIN'], ulimits: { nofile: { soft: 256, hard: 512 } } } },
    { name: 'per-command user and workdir over the pool\'s', options: { user: '1000' }, perCommand: { user: '2000:3000', workdir: '/tmp' } },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const rootfs = busyboxRootfs();
      const plain = await rt.run({ rootfs }, PROBE, { ...c.options, ...(c.perCommand ?? {}) });
      assert.equal(plain.exitCode, 0, plain.stderr);
      const pool = await rt.pool({ source: { rootfs }, size: 1, options: c.options });
      try {
        const sb = await pool.acquire();
        const pooled = await sb.run(PROBE, c.perCommand ?? {});
        await sb.release();
        assert.equal(pooled.exitCode, 0, pooled.stderr);
        const expected = identity(plain.stdout);
        assert.ok(expected.length >= FIELDS.length, `the probe printed too little: ${plain.stdout}`);
        assert.deepEqual(identity(pooled.stdout), expected);
      } finally {
        await pool.close();
      }
    });
  }
});
