/**
 * Container I/O on the real kernel: logs (follow, tail, since, streams, timestamps, rotation),
 * attach, exec (result and streaming forms), healthchecks, and the wait helpers.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AbortError, ConflictError, ValidationError } from '../../lib/errors.js';
import { APP_UID, kernelSkipReason } from '../helpers/busybox-rootfs.js';
import { eventually, openFixture, type Fixture } from '../helpers/containers-fixture.js';

const skip = kernelSkipReason();

describe('containers: logs and attach', { skip }, () => {
  let f: Fixture;
  before(async () => {
    f = await openFixture();
  });
  after(async () => {
    await f.cleanup();
  });

  test('stdout and stderr kept apart, tail, timestamps, since/until', async () => {
    const c = await f.sh('echo o1; echo e1 >&2; echo o2; sleep 0.3; echo o3; echo e2 >&2');
    await c.start();
    await c.wait();
    const entries = [];
    for await (const e of c.logs()) entries.push(e);
    assert.deepEqual(entries.map((e) => `${e.stream}:${e.line}`).sort(), ['stderr:e1', 'stderr:e2', 'stdout:o1', 'stdout:o2', 'stdout:o3']);
    assert.equal(await c.logs({ stderr: false }).text(), 'o1\no2\no3\n');
    assert.equal(await c.logs({ stdout: false }).text(), 'e1\ne2\n');
    assert.equal((await c.logs({ tail: 2 }).text()).split('\n').filter(Boolean).length, 2);
    const stamped = await c.logs({ timestamps: true, stderr: false, tail: 1 }).text();
    assert.match(stamped, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z o3\n$/);
    const o3 = entries.find((e) => e.line === 'o3')!;
    assert.deepEqual((await c.logs({ since: o3.time, stderr: false }).text()), 'o3\n');
    assert.deepEqual((await c.logs({ until: o3.time, stderr: false }).text()), 'o1\no2\n');
    // The Readable form.
    const chunks: Buffer[] = [];
    for await (const chunk of c.logs({ stderr: false }).stream()) chunks.push(chunk as Buffer);
    assert.equal(Buffer.concat(chunks).toString(), 'o1\no2\no3\n');
  });

  test('follow sees lines as they are written and ends when the container stops', async () => {
    const c = await f.sh('for i in 1 2 3 4 5; do echo line-$i; sleep 0.1; done');
    await c.start();
    const times: number[] = [];
    const lines: string[] = [];
    for await (const e of c.logs({ follow: true })) {
      lines.push(e.line);
      times.push(Date.now());
    }
    assert.deepEqual(lines, ['line-1', 'line-2', 'line-3', 'line-4', 'line-5']);
    assert.ok(times[4]! - times[0]! >= 300, 'lines arrived over time, not all at the end');
    assert.equal(await c.status(), 'exited');
  });

  test('follow with tail: the last line, then the new ones; AbortSignal stops it', async () => {
    const c = await f.sh('echo old-1; echo old-2; sleep 0.3; echo new-1; sleep 30');
    await c.start();
    await c.waitForLog('old-2');
    const ac = new AbortController();
    const lines: string[] = [];
    await assert.rejects(
      (async () => {
        for await (const e of c.logs({ follow: true, tail: 1, signal: ac.signal })) {
          lines.push(e.line);
          if (e.line === 'new-1') ac.abort();
        }
      })(),
      AbortError,
    );
    assert.deepEqual(lines, ['old-2', 'new-1']);
    await c.kill();
  });

  test('logs rotate at log.maxSize into maxFiles files, read back in order', async () => {
    const c = await f.sh('i=0; while [ $i -lt 300 ]; do echo "line $i"; i=$((i+1)); done', { log: { maxSize: 4096, maxFiles: 3 } });
    await c.start();
    await c.wait();
    const files = readdirSync(join(f.root, 'containers', c.id)).filter((n) => n.startsWith('container.log')).sort();
    assert.deepEqual(files, ['container.log', 'container.log.1', 'container.log.2']);
    const lines = (await c.logs().text()).split('\n').filter(Boolean);
    assert.equal(lines.at(-1), 'line 299');
    // The oldest lines were rotated away; what is left is contiguous.
    const first = Number(lines[0]!.split(' ')[1]);
    assert.deepEqual(lines, Array.from({ length: 300 - first }, (_, i) => `line ${first + i}`));
  });

  test('attach: live stdout/stderr from now on, stdin into the container (openStdin)', async () => {
    const c = await f.sh('echo before; while read l; do echo "out:$l"; echo "err:$l" >&2; done; echo done', { openStdin: true });
    await c.start();
    await c.waitForLog('before');
    const a = await c.attach();
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    a.stdout.on('data', (d: Buffer) => out.push(d));
    a.stderr!.on('data', (d: Buffer) => err.push(d));
    a.stdin!.write('one\n');
    a.stdin!.end('two\n');
    await c.wait();
    await eventually(() => Buffer.concat(out).toString().includes('done'));
    assert.equal(Buffer.concat(out).toString(), 'out:one\nout:two\ndone\n');
    assert.equal(Buffer.concat(err).toString(), 'err:one\nerr:two\n');
    assert.match(await c.logs().text(), /before\n[\s\S]*out:two/);
  });

  test('attach without openStdin has no stdin; detach stops the copy', async () => {
    const c = await f.sh('while :; do echo tick; sleep 0.05; done');
    await c.start();
    const a = await c.attach();
    assert.equal(a.stdin, null);
    let n = 0;
    a.stdout.on('data', () => n++);
    await eventually(() => n >= 2);
    a.detach();
    const seen = n;
    await sleep(200);
    assert.ok(n <= seen + 1);
    await c.kill();
  });

  test('resize sets the terminal size of a tty container', async () => {
    const c = await f.sh('while :; do stty size; sleep 0.05; done', { tty: true });
    await c.start();
    await c.resize({ rows: 42, cols: 101 });
    await c.waitForLog('42 101', { timeout: 5000 });
    await assert.rejects(c.resize({ rows: 0, cols: 10 }), ValidationError);
    await c.kill();
    const plain = await f.sh('sleep 30');
    await plain.start();
    await assert.rejects(plain.resize({ rows: 10, cols: 10 }), /has no TTY/);
    await plain.kill();
  });

  test('a tty container: one stream, attach sees it', async () => {
    const c = await f.sh('tty; echo on-tty; sleep 0.2', { tty: true });
    await c.start();
    await c.wait();
    const text = await c.logs().text();
    assert.match(text, /\/dev\/pts\/\d+/);
    assert.match(text, /on-tty/);
    assert.equal(await c.logs({ stdout: false }).text(), '');
  });
});

describe('containers: exec', { skip }, () => {
  let f: Fixture;
  before(async () => {
    f = await openFixture();
  });
  after(async () => {
    await f.cleanup();
  });

  test('result form: exit code, stdout, stderr; env, user, workdir; inside the container\'s namespaces', async () => {
    const c = await f.sh('echo $$ > /tmp/pid1; sleep 30', { env: { FROM_CONTAINER: 'yes' }, hostname: 'exec-host' });
    await c.start();
    await c.waitForLog('', { timeout: 200 }).catch(() => {});
    const r = await c.exec(['sh', '-c', 'echo $FROM_CONTAINER $EXTRA $(hostname) $(cat /tmp/pid1); pwd; id -u; echo err >&2; exit 3'], { env: { EXTRA: 'x' }, user: 'app', workdir: '/home/app' });
    assert.equal(r.exitCode, 3);
    assert.equal(r.stdout, `yes x exec-host 1\n/home/app\n${APP_UID}\n`);
    assert.equal(r.stderr, 'err\n');
    const ps = await c.exec(['ps', '-o', 'pid,comm']);
    assert.match(ps.stdout, /^\s*1 sleep$/m, 'the exec sees the container\'s pid namespace (PID 1 is the sleep)');
    const bin = await c.exec(['printf', '\\001\\377'], { encoding: 'buffer' });
    assert.deepEqual([...bin.stdout], [1, 255]);
    const fed = await c.exec(['cat'], { stdin: 'from stdin' });
    assert.equal(fed.stdout, 'from stdin');
    await c.kill();
  });

  test('command not found is exit code 127; exec into a stopped container is a conflict', async () => {
    const c = await f.sh('sleep 30');
    await c.start();
    const r = await c.exec(['no-such-tool']);
    assert.equal(r.exitCode, 127);
    assert.match(r.stderr, /no-such-tool/);
    await assert.rejects(c.exec([]), ValidationError);
    await c.kill();
    await c.wait();
    await assert.rejects(c.exec(['true']), ConflictError);
  });

  test('streaming form and AbortSignal', async () => {
    const c = await f.sh('sleep 30');
    await c.start();
    const s = await c.execStream(['sh', '-c', 'while read l; do echo "got $l"; done'], { stdin: true });
    const out: Buffer[] = [];
    s.stdout!.on('data', (d: Buffer) => out.push(d));
    s.stdin!.write('a\n');
    s.stdin!.end('b\n');
    assert.deepEqual(await s.exited, { exitCode: 0, signal: null });
    await eventually(() => Buffer.concat(out).toString().includes('got b'));
    assert.equal(Buffer.concat(out).toString(), 'got a\ngot b\n');
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    await assert.rejects(c.exec(['sleep', '30'], { signal: ac.signal }), AbortError);
    await c.kill();
  });

  test('healthcheck via exec: starting -> healthy -> unhealthy, events and inspect', async () => {
    const c = await f.sh('touch /tmp/ok; sleep 30', { healthcheck: { test: ['CMD', 'test', '-e', '/tmp/ok'], interval: 100, retries: 2, timeout: 2000 } });
    const statuses: string[] = [];
    c.on('health_status', (s) => statuses.push(s));
    await c.start();
    assert.equal((await c.inspect()).State.Health?.Status, 'starting');
    await c.waitForHealthy({ timeout: 5000 });
    await c.exec(['rm', '/tmp/ok']);
    assert.ok(await eventually(async () => (await c.inspect()).State.Health?.Status === 'unhealthy', 5000));
    const h = (await c.inspect()).State.Health!;
    assert.ok(h.FailingStreak >= 2);
    assert.ok(h.Log.length > 0 && h.Log.length <= 5);
    assert.deepEqual(statuses, ['healthy', 'unhealthy']);
    const rows = await f.rt.containers.list({ filters: { id: c.id } });
    assert.match(rows[0]!.Status, /\(unhealthy\)/);
    await c.kill();
  });
});

describe('containers: wait helpers', { skip }, () => {
  let f: Fixture;
  before(async () => {
    f = await openFixture();
  });
  after(async () => {
    await f.cleanup();
  });

  test('waitForLog: regex, times, timeout, and a container that exits first', async () => {
    const c = await f.sh('sleep 0.2; echo ready 1; echo ready 2; sleep 30');
    await c.start();
    const e = await c.waitForLog(/ready \d/, { times: 2, timeout: 5000 });
    assert.equal(e.line, 'ready 2');
    await assert.rejects(c.waitForLog('never', { timeout: 150 }), { code: 'ERR_TIMEOUT' });
    await c.kill();
    const d = await f.sh('echo bye');
    await d.start();
    await assert.rejects(d.waitForLog('never', { timeout: 5000 }), (err: Error) => err instanceof ConflictError && /stopped/.test(err.message));
  });

  test('waitForPort with network none: sees the listener in the container\'s own loopback, no exec', async () => {
    const c = await f.sh('sleep 0.3; exec httpd -f -p 8080');
    await c.start();
    await assert.rejects(c.waitForPort(8081, { timeout: 600 }), { code: 'ERR_TIMEOUT' });
    await c.waitForPort(8080, { timeout: 5000 });
    await c.kill();
  });

  test('waitForPort with network host: the container\'s socket on 127.0.0.1 accepts', async () => {
    const port = 20000 + Math.floor(Math.random() * 20000);
    const c = await f.sh(`sleep 0.2; exec httpd -f -p 127.0.0.1:${port}`, { network: 'host' });
    await c.start();
    await c.waitForPort(port, { timeout: 5000 });
    await c.kill();
    const d = await f.sh('exit 1', { network: 'host' });
    await d.start();
    await assert.rejects(d.waitForPort(port, { timeout: 5000 }), ConflictError);
  });

  test('waitForHealthy without a healthcheck is a conflict', async () => {
    const c = await f.sh('sleep 30');
    await c.start();
    await assert.rejects(c.waitForHealthy({ timeout: 100 }), /has no healthcheck/);
    await c.kill();
  });
});
