/**
 * A container's files and resources on the real kernel: diff, export, commit, stats, top,
 * inspect.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { readTarEntries, type TarEntry } from '../helpers/tar-entries.js';
import { UnsupportedError } from '../../lib/errors.js';
import { kernelSkipReason } from '../helpers/busybox-rootfs.js';
import { eventually, openFixture, type Fixture } from '../helpers/containers-fixture.js';
import type { Readable } from 'node:stream';

const skip = kernelSkipReason();

async function untar(stream: Readable): Promise<Map<string, TarEntry>> {
  return new Map((await readTarEntries(stream)).map((e) => [e.name, e]));
}

describe('containers: diff, export, commit', { skip }, () => {
  let f: Fixture;
  before(async () => {
    f = await openFixture();
  });
  after(async () => {
    await f.cleanup();
  });

  const script = [
    'echo new > /added.txt',
    'mkdir -p /newdir/sub && echo deep > /newdir/sub/f',
    'echo changed >> /etc/passwd',
    'rm /etc/secret-in-image',
    'rm -rf /home/app && mkdir /home/app && echo fresh > /home/app/x',
    'rm -rf /home && mkdir /home && echo only > /home/replaced',
    'ln -s /etc/passwd /link-to-passwd',
    'ln /added.txt /hardlink.txt',
  ].join(' && ');

  test('diff: added, changed and deleted paths, whiteouts and opaque directories', async () => {
    const c = await f.sh(script);
    await c.start();
    assert.equal((await c.wait()).exitCode, 0, await c.logs().text());
    const changes = await c.diff();
    const byPath = new Map(changes.map((x) => [x.path, x.kind]));
    assert.equal(byPath.get('/added.txt'), 'A');
    assert.equal(byPath.get('/newdir'), 'A');
    assert.equal(byPath.get('/newdir/sub/f'), 'A');
    assert.equal(byPath.get('/etc'), 'C');
    assert.equal(byPath.get('/etc/passwd'), 'C');
    assert.equal(byPath.get('/etc/secret-in-image'), 'D');
    // /home was removed and made again: opaque. What the image had in it is deleted.
    assert.equal(byPath.get('/home'), 'C');
    assert.equal(byPath.get('/home/app'), 'D');
    assert.equal(byPath.get('/home/replaced'), 'A');
    assert.equal(byPath.get('/link-to-passwd'), 'A');
    assert.ok(!byPath.has('/bin'), 'untouched directories are not listed');
    assert.deepEqual(changes.map((x) => x.path), [...changes.map((x) => x.path)].sort());
  });

  test('export: the merged root as a tar, with deletions applied, symlinks, hard links and modes', async () => {
    const c = await f.sh(script);
    await c.start();
    await c.wait();
    const entries = await untar(c.export());
    assert.equal(entries.get('added.txt')!.body.toString(), 'new\n');
    assert.equal(entries.get('newdir/sub/f')!.body.toString(), 'deep\n');
    assert.match(entries.get('etc/passwd')!.body.toString(), /^root:x:0:0.*\nchanged\n$/s);
    assert.equal(entries.has('etc/secret-in-image'), false, 'a deleted file is not exported');
    assert.equal(entries.has('home/app/'), false, 'the opaque directory hides the image\'s content');
    assert.equal(entries.get('home/replaced')!.body.toString(), 'only\n');
    assert.equal(entries.get('link-to-passwd')!.type, 'symlink');
    assert.equal(entries.get('link-to-passwd')!.linkname, '/etc/passwd');
    const hard = [entries.get('added.txt')!, entries.get('hardlink.txt')!];
    assert.ok(hard.some((e) => e.type === 'link'), 'the second name of a hard-linked file is a link entry');
    assert.equal(entries.get('bin/busybox')!.mode & 0o111, 0o111);
    assert.equal(entries.get('bin/sh')!.type, 'symlink');
    assert.equal(entries.get('tmp/')!.mode, 0o1777);
    assert.ok(entries.has('etc/hostname'), 'files berth wrote into the container are part of its root');
  });

  test('a host-root container has no layers: diff and export are unsupported', async () => {
    const c = await f.rt.containers.create({ image: { host: true }, cmd: ['true'] });
    try {
      await assert.rejects(c.diff(), UnsupportedError);
      await assert.rejects(
        (async () => {
          for await (const _ of c.export()) void _;
        })(),
        UnsupportedError,
      );
    } finally {
      await c.remove();
    }
  });

  test('commit: a new image with the container\'s changes and config', async () => {
    const c = await f.sh('echo committed > /marker');
    await c.start();
    await c.wait();
    const id = await c.commit({ ref: 'localhost/berth-test/committed:1', message: 'test commit', changes: ['CMD ["cat", "/marker"]', 'ENV COMMITTED=1'] });
    assert.match(id, /^sha256:[0-9a-f]{64}$/);
    // A container of the committed image, changed and committed again: base layer + new layer.
    const d = await f.rt.containers.create({ image: 'localhost/berth-test/committed:1', cmd: ['sh', '-c', 'rm /etc/secret-in-image && echo second > /second'] });
    await d.start();
    assert.equal((await d.wait()).exitCode, 0, await d.logs().text());
    assert.deepEqual((await d.diff()).filter((x) => x.path !== '/etc').map((x) => `${x.kind} ${x.path}`), ['D /etc/secret-in-image', 'A /second']);
    const id2 = await d.commit({ ref: 'localhost/berth-test/committed:2', changes: ['CMD ["sh", "-c", "cat /marker /second; test ! -e /etc/secret-in-image && echo deleted"]'] });
    assert.notEqual(id2, id);
    const e = await f.rt.containers.create({ image: 'localhost/berth-test/committed:2' });
    await e.start();
    await e.wait();
    assert.equal(await e.logs().text(), 'committed\nsecond\ndeleted\n');
    assert.ok((await e.inspect()).Config.Env.includes('COMMITTED=1'), 'config carried over from the first commit');
    await e.remove();
    await d.remove();
  });
});

describe('containers: stats, top, inspect', { skip }, () => {
  let f: Fixture;
  before(async () => {
    f = await openFixture();
  });
  after(async () => {
    await f.cleanup();
  });

  test('stats: CPU of a busy loop near 100 %, memory usage under the limit, pids', async () => {
    const c = await f.sh('while :; do :; done', { memory: '64m', cpus: 1 });
    await c.start();
    // What the loop really got, from the kernel's own per-process account over the same window:
    // on a loaded machine it is far from 100 %, and stats() must say so, not a fixed number.
    const pid = (await c.inspect()).State.Pid;
    const cpuTicks = (): number => {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return Number(fields[11]) + Number(fields[12]);
    };
    const ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    const t0 = process.hrtime.bigint();
    const ticks0 = cpuTicks();
    const s = await c.stats({ interval: 500 });
    const got = ((cpuTicks() - ticks0) / ticksPerSecond / (Number(process.hrtime.bigint() - t0) / 1e9)) * 100;
    assert.ok(s.cpu.percent > 0 && s.cpu.percent < 110, `cpu ${s.cpu.percent}`);
    assert.ok(Math.abs(s.cpu.percent - got) < 30, `stats says ${s.cpu.percent.toFixed(1)} %, the kernel's per-process account ${got.toFixed(1)} %`);
    assert.equal(s.memory.limit, 64 * 1024 * 1024);
    assert.ok(s.memory.usage > 0 && s.memory.usage < s.memory.limit);
    assert.ok(s.memory.percent > 0 && s.memory.percent < 100);
    assert.equal(s.pids.current, 1);
    assert.equal(s.pids.limit, 4096);
    assert.equal(s.cpu.onlineCpus, availableParallelism());
    let n = 0;
    for await (const r of c.stats({ stream: true, interval: 100 })) {
      assert.ok(r.cpu.usageNanos > 0);
      if (++n === 3) break;
    }
    assert.equal(n, 3);
    await c.kill();
  });

  test('stats streaming ends when the container stops', async () => {
    const c = await f.sh('sleep 0.35');
    await c.start();
    let n = 0;
    // The point is that the stream ends by itself; how many readings fit depends on the load.
    for await (const _ of c.stats({ stream: true, interval: 100 })) n++;
    assert.ok(n >= 1, `${n} readings`);
  });

  test('top: the container\'s processes from its cgroup, ps -ef columns', async () => {
    const c = await f.sh('sleep 30 & sleep 31 & wait', { init: true });
    await c.start();
    const t = await eventually(async () => {
      // Forked children show the parent's command line until they exec.
      const r = await c.top();
      const cmds = r.Processes.map((p) => p[7]);
      return r.processes.length === 4 && cmds.includes('sleep 30') && cmds.includes('sleep 31') ? r : undefined;
    });
    assert.ok(t, 'init, sh and two sleeps');
    assert.deepEqual(t.Titles, ['UID', 'PID', 'PPID', 'C', 'STIME', 'TTY', 'TIME', 'CMD']);
    const cmds = t.Processes.map((p) => p[7]);
    assert.ok(cmds.includes('sleep 30') && cmds.includes('sleep 31'), cmds.join(' | '));
    const init = t.processes.find((p) => p.nsPid === 1)!;
    assert.equal(init.pid, (await c.inspect()).State.Pid);
    assert.ok(t.processes.every((p) => p.uid === 0));
    await c.kill();
  });

  test('inspect: Docker\'s fields for config and host config', async () => {
    const c = await f.create(['sleep', '1'], { memory: '32m', cpus: 0.5, pids: 100, env: { A: '1' }, user: 'app', workdir: '/tmp', restart: 'always', labels: { x: 'y' }, stopTimeout: 3000, capDrop: ['NET_RAW'] });
    const i = await c.inspect();
    assert.equal(i.HostConfig.Memory, 32 * 1024 * 1024);
    assert.equal(i.HostConfig.NanoCpus, 5e8);
    assert.equal(i.HostConfig.PidsLimit, 100);
    assert.deepEqual(i.HostConfig.RestartPolicy, { Name: 'always', MaximumRetryCount: 0 });
    assert.deepEqual(i.HostConfig.CapDrop, ['NET_RAW']);
    assert.equal(i.HostConfig.NetworkMode, 'none');
    assert.ok(i.Config.Env.includes('A=1') && i.Config.Env.some((e) => e.startsWith('PATH=')));
    assert.equal(i.Config.User, 'app');
    assert.equal(i.Config.WorkingDir, '/tmp');
    assert.equal(i.Config.StopTimeout, 3);
    assert.equal(i.GraphDriver.Name, 'overlay');
    assert.match(i.GraphDriver.Data!.UpperDir!, new RegExp(`${c.id}/upper$`));
    assert.match(i.LogPath, /container\.log$/);
    assert.equal(i.Image, '');
    assert.equal(i.Berth.Lifetime, 'process');
  });
});
