/**
 * deploy/server.mjs, the code-execution service the Kubernetes manifests deploy, run for real on
 * this host (as root, its own state dir, 127.0.0.1 and a free port): it becomes ready only after
 * a sandbox ran under its limits, runs snippets with those limits, and on SIGTERM (what
 * Kubernetes sends) closes and exits, leaving no berth cgroup of its own.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { kernelSkipReason } from '../helpers/busybox-rootfs.js';
import { berthCgroupDirs } from '../helpers/leaks.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const skip = kernelSkipReason();

describe('deploy/server.mjs', { skip }, () => {
  const root = mkdtempSync(join(tmpdir(), 'berth-deploy-server-'));
  let server: ChildProcess | undefined;
  after(() => {
    if (server && server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
    rmSync(root, { recursive: true, force: true });
  });

  test('ready after a limited sandbox ran; POST /run applies the limits; SIGTERM ends it cleanly', async () => {
    server = spawn(process.execPath, ['--import', 'tsx', '--import', join(REPO, 'test/helpers/berth-from-source.mjs'), join(REPO, 'deploy/server.mjs')], {
      env: { ...process.env, BERTH_ROOT: root, HOST: '127.0.0.1', PORT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    server.stderr!.on('data', (d) => (err += d));
    const exited = once(server, 'exit');
    // The server prints its address, then "ready" once its self-check sandbox ran.
    const port = await new Promise<number>((res, rej) => {
      server!.stdout!.on('data', (d) => {
        out += d;
        const m = /listening on 127\.0\.0\.1:(\d+)\nready\n/.exec(out);
        if (m) res(Number(m[1]));
      });
      server!.once('exit', (code) => rej(new Error(`server exited ${code} before ready: ${out}${err}`)));
    });
    const base = `http://127.0.0.1:${port}`;
    assert.equal((await fetch(`${base}/readyz`)).status, 200);
    assert.equal((await fetch(`${base}/healthz`)).status, 200);

    const post = async (code: string) => (await (await fetch(`${base}/run`, { method: 'POST', body: code })).json()) as Record<string, unknown>;
    assert.deepEqual(await post('echo "2 + 2 = $((2 + 2))"').then((r) => [r.exitCode, r.stdout]), [0, '2 + 2 = 4\n']);
    const limits = await post('cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; id -u');
    assert.equal(limits.stdout, `${64 * 1024 * 1024}\n32\n65534\n`, JSON.stringify(limits));
    assert.equal((await fetch(`${base}/nope`)).status, 404);

    server.kill('SIGTERM');
    const [code, signal] = await exited;
    assert.deepEqual([code, signal], [0, null], err);
    // run() names a sandbox's cgroup run-<n>-<owner pid>-<random>: others' tests run beside this one.
    const mine = berthCgroupDirs().filter((d) => basename(d).includes(`-${server!.pid}-`) && existsSync(d));
    assert.deepEqual(mine, [], 'a sandbox cgroup outlived the server');
  });
});
