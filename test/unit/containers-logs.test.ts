/**
 * The json-file log: writer (records, 16 KiB splits, partial lines, rotation, taps) and reader
 * (joins, stream filters, tail, since/until, follow across rotation).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { LogWriter, MAX_RECORD_BYTES, encodeRecord, logTimestamp } from '../../lib/containers/log-writer.js';
import { ContainerLogs, resolveLogOptions, type LogEntry, type LogsOptions } from '../../lib/containers/log-reader.js';

const dir = mkdtempSync(join(tmpdir(), 'berth-logs-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(mkdtempSync(join(dir, `c${n++}-`)), 'container.log');

function records(path: string): Array<{ log: string; stream: string; time: string }> {
  return readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

function reader(path: string, opts: LogsOptions = {}, isDone: () => Promise<boolean> = async () => true): ContainerLogs {
  return new ContainerLogs({ path, isDone }, resolveLogOptions(opts));
}

async function all(logs: AsyncIterable<LogEntry>): Promise<LogEntry[]> {
  const out: LogEntry[] = [];
  for await (const e of logs) out.push(e);
  return out;
}

describe('log writer', () => {
  test('one record per line, streams apart, RFC 3339 nanosecond times in order', () => {
    const path = fresh();
    const w = new LogWriter({ path, maxSize: 1 << 20, maxFiles: 2 });
    w.write('stdout', Buffer.from('a\nb\n'));
    w.write('stderr', Buffer.from('oops\n'));
    w.close();
    const r = records(path);
    assert.deepEqual(r.map((x) => [x.stream, x.log]), [['stdout', 'a\n'], ['stdout', 'b\n'], ['stderr', 'oops\n']]);
    for (const x of r) assert.match(x.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    assert.ok(r[0]!.time < r[1]!.time && r[1]!.time < r[2]!.time);
  });

  test('a partial line waits for its end; the end of the stream flushes it without newline', async () => {
    const path = fresh();
    const w = new LogWriter({ path, maxSize: 1 << 20, maxFiles: 2 });
    const out = new PassThrough();
    w.consume(out, 'stdout');
    out.write('hel');
    out.write('lo\nwor');
    await sleep(10);
    assert.deepEqual(records(path).map((x) => x.log), ['hello\n']);
    out.end('ld');
    await w.drained;
    w.close();
    assert.deepEqual(records(path).map((x) => x.log), ['hello\n', 'world']);
  });

  test('lines over 16 KiB are split; only the last record ends with a newline; UTF-8 is never cut', () => {
    const path = fresh();
    const w = new LogWriter({ path, maxSize: 1 << 22, maxFiles: 2 });
    const line = 'é'.repeat(MAX_RECORD_BYTES) + '\n'; // 2 bytes per character
    w.write('stdout', Buffer.from(line));
    w.close();
    const r = records(path);
    assert.ok(r.length >= 2);
    assert.ok(r.slice(0, -1).every((x) => !x.log.endsWith('\n') && Buffer.byteLength(x.log) <= MAX_RECORD_BYTES));
    assert.ok(r.at(-1)!.log.endsWith('\n'));
    assert.equal(r.map((x) => x.log).join(''), line);
    assert.ok(!r.some((x) => x.log.includes('\ufffd')));
  });

  test('rotation keeps maxFiles files of at most maxSize bytes each', () => {
    const path = fresh();
    const w = new LogWriter({ path, maxSize: 4096, maxFiles: 3 });
    for (let i = 0; i < 400; i++) w.write('stdout', Buffer.from(`line ${i}\n`));
    w.close();
    const files = readdirSync(join(path, '..')).sort();
    assert.deepEqual(files, ['container.log', 'container.log.1', 'container.log.2']);
    for (const f of files) assert.ok(readFileSync(join(path, '..', f)).length <= 4096, f);
    assert.match(readFileSync(path, 'utf8'), /line 399/);
  });

  test('one big chunk of many lines still rotates between records', () => {
    const path = fresh();
    const w = new LogWriter({ path, maxSize: 4096, maxFiles: 2 });
    w.write('stdout', Buffer.from(Array.from({ length: 300 }, (_, i) => `line ${i}\n`).join('')));
    w.close();
    assert.deepEqual(readdirSync(join(path, '..')).sort(), ['container.log', 'container.log.1']);
    for (const f of ['container.log', 'container.log.1']) assert.ok(readFileSync(join(path, '..', f)).length <= 4096, f);
  });

  test('taps see raw chunks, even after close', () => {
    const path = fresh();
    const w = new LogWriter({ path, maxSize: 1 << 20, maxFiles: 1 });
    const got: string[] = [];
    const untap = w.tap((s, c) => got.push(`${s}:${c}`));
    w.write('stdout', Buffer.from('x'));
    w.close();
    w.write('stderr', Buffer.from('y'));
    untap();
    w.write('stderr', Buffer.from('z'));
    assert.deepEqual(got, ['stdout:x', 'stderr:y']);
  });
});

describe('log reader', () => {
  function seeded(): string {
    const path = fresh();
    const t = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString().replace('Z', '000000Z').replace(/\.(\d{3})000000Z$/, '.$1000000Z');
    writeFileSync(
      `${path}.1`,
      encodeRecord('one\n', 'stdout', t(1)) + encodeRecord('err1\n', 'stderr', t(2)),
    );
    writeFileSync(
      path,
      encodeRecord('par', 'stdout', t(3)) + encodeRecord('e2\n', 'stderr', t(4)) + encodeRecord('tial\n', 'stdout', t(5)) + '{"torn": ' + '\n' + encodeRecord('last', 'stdout', t(6)),
    );
    return path;
  }

  test('reads rotated files first, joins split records per stream, skips torn lines', async () => {
    const e = await all(reader(seeded()));
    assert.deepEqual(e.map((x) => [x.stream, x.text]), [['stdout', 'one\n'], ['stderr', 'err1\n'], ['stderr', 'e2\n'], ['stdout', 'partial\n'], ['stdout', 'last']]);
    assert.equal(e[3]!.line, 'partial');
    assert.equal(e[3]!.time, '2026-01-01T00:00:03.000000000Z');
  });

  test('stdout/stderr filters, tail, since, until, timestamps', async () => {
    const path = seeded();
    assert.deepEqual((await all(reader(path, { stderr: false }))).map((x) => x.line), ['one', 'partial', 'last']);
    assert.deepEqual((await all(reader(path, { stdout: false }))).map((x) => x.line), ['err1', 'e2']);
    assert.deepEqual((await all(reader(path, { tail: 2 }))).map((x) => x.line), ['partial', 'last']);
    assert.deepEqual((await all(reader(path, { tail: 0 }))).map((x) => x.line), []);
    assert.deepEqual((await all(reader(path, { since: '2026-01-01T00:00:03Z' }))).map((x) => x.line), ['e2', 'partial', 'last']);
    assert.deepEqual((await all(reader(path, { until: new Date('2026-01-01T00:00:03Z') }))).map((x) => x.line), ['one', 'err1']);
    assert.equal(await reader(path, { tail: 1, timestamps: true }).text(), '2026-01-01T00:00:06.000000000Z last');
    assert.throws(() => resolveLogOptions({ tail: -1 }), /tail/);
  });

  test('follow sees lines written later and across a rotation, and ends when the source is done', async () => {
    const path = fresh();
    const w = new LogWriter({ path, maxSize: 4096, maxFiles: 2 });
    w.write('stdout', Buffer.from('before\n'));
    let done = false;
    const seen: string[] = [];
    const following = (async () => {
      for await (const e of reader(path, { follow: true }, async () => done)) seen.push(e.line);
    })();
    await sleep(50);
    // Batches of ~1.4 KB into 4 KiB files: several rotations, at most one between two reads.
    for (let i = 0; i < 220; i++) {
      w.write('stdout', Buffer.from(`live ${i}\n`));
      if (i % 20 === 19) await sleep(30);
    }
    w.close();
    const deadline = Date.now() + 5000;
    while (seen.length < 221 && Date.now() < deadline) await sleep(20);
    done = true;
    await following;
    assert.equal(seen[0], 'before');
    assert.equal(seen.at(-1), 'live 219');
    // A file rotated away twice between two reads would be lost (as with docker); one rotation
    // between reads loses nothing and repeats nothing.
    assert.equal(new Set(seen).size, seen.length);
    assert.equal(seen.length, 221);
  });

  test('follow stops on abort', async () => {
    const path = fresh();
    writeFileSync(path, encodeRecord('x\n', 'stdout', logTimestamp()));
    const ac = new AbortController();
    const seen: string[] = [];
    const p = (async () => {
      for await (const e of reader(path, { follow: true, signal: ac.signal }, async () => false)) seen.push(e.line);
    })();
    await sleep(30);
    ac.abort();
    await assert.rejects(p, { code: 'ABORT_ERR' });
    assert.deepEqual(seen, ['x']);
  });
});
