import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { describe, it } from 'node:test';
import { busyboxRootfs, kernelSkipReason } from '../helpers/busybox-rootfs.js';

const skip = kernelSkipReason();
const lib = new URL('../../lib/index.ts', import.meta.url).href;

function runChild(script: string): ReturnType<typeof spawn> {
  return spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
}

function runCgroupsOf(pid: number): string[] {
  const dir = '/sys/fs/cgroup/pids/berth';
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((d) => d.startsWith(`run-${pid}-`));
}

describe('a run() whose owner is SIGKILLed', { skip }, () => {
  it('dies with its owner, and the next process removes the cgroup it left', async () => {
    const rootfs = busyboxRootfs();
    const owner = runChild(`import { run } from '${lib}'; process.stdout.write('go\\n'); await run({ rootfs: '${rootfs}' }, ['sleep', '30']);`);
    await new Promise<void>((resolve) => owner.stdout!.once('data', () => resolve()));
    // Bounded wait until the container runs in its cgroup: the cgroup is made before the
    // process is cloned and written into it, so its existence alone is not enough.
    const { readFileSync } = await import('node:fs');
    const procsOf = (dir: string) => readFileSync(`/sys/fs/cgroup/pids/berth/${dir}/cgroup.procs`, 'utf8').trim();
    for (let i = 0; i < 100 && !runCgroupsOf(owner.pid!).some((d) => procsOf(d).length > 0); i++) await new Promise((r) => setTimeout(r, 50));
    const left = runCgroupsOf(owner.pid!);
    assert.equal(left.length, 1, 'the owner made one run cgroup');
    const procs = procsOf(left[0]!);
    assert.ok(procs.length > 0, 'the container runs in it');
    owner.kill('SIGKILL');
    await new Promise((r) => owner.once('exit', r));
    // PID 1 had a parent-death signal: it is gone without anyone cleaning up.
    for (let i = 0; i < 100 && existsSync(`/proc/${procs.split('\n')[0]}`); i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(existsSync(`/proc/${procs.split('\n')[0]}`), false, 'container process died with its owner');
    assert.deepEqual(runCgroupsOf(owner.pid!), left, 'nobody has removed the cgroup yet');
    const next = runChild(`import { run } from '${lib}'; const r = await run({ rootfs: '${rootfs}' }, ['true']); process.exit(r.exitCode);`);
    const code = await new Promise((r) => next.once('exit', r));
    assert.equal(code, 0);
    assert.deepEqual(runCgroupsOf(owner.pid!), [], 'the next process swept the orphan');
  });
});
