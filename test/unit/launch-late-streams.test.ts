/**
 * The sandbox's streams without a kernel: in-memory streams stand in for the pipe ends, so the
 * rules are observable directly — the output side reads its source only when asked, the input
 * side buffers no more than its high-water mark, hang-ups travel to the pipe, and nothing
 * emits an 'error' a caller would have to listen for.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough, Readable, Writable } from 'node:stream';
import { setImmediate as tick } from 'node:timers/promises';
import { LateReadable, LateWritable } from '../../lib/launch/late-streams.js';

/** A source that counts how often it was asked for data and can always give more. */
function endlessSource(chunk = Buffer.alloc(16 * 1024)): { source: Readable; pulls: () => number } {
  let pulls = 0;
  const source = new Readable({
    read() {
      pulls++;
      this.push(chunk);
    },
  });
  return { source, pulls: () => pulls };
}

describe('LateReadable', () => {
  test('an unread stream stops pulling from its source at the high-water mark', async () => {
    const { source, pulls } = endlessSource();
    const out = new LateReadable();
    out.attach(source);
    for (let i = 0; i < 20; i++) await tick();
    const settled = pulls();
    for (let i = 0; i < 20; i++) await tick();
    assert.equal(pulls(), settled, 'the source is no longer pulled');
    assert.ok(out.readableLength <= out.readableHighWaterMark, `holds ${out.readableLength} bytes`);
    assert.ok(source.readableLength <= source.readableHighWaterMark + 16 * 1024, `source holds ${source.readableLength} bytes`);
  });

  test('reading pulls again, chunk for chunk', async () => {
    const { source, pulls } = endlessSource();
    const out = new LateReadable();
    out.attach(source);
    for (let i = 0; i < 5; i++) await tick();
    const before = pulls();
    let got = 0;
    for await (const chunk of out) {
      got += (chunk as Buffer).length;
      if (got >= 1024 * 1024) break;
    }
    assert.ok(pulls() > before);
  });

  test('data before attach() is not lost: a reader waiting early gets it all, then the end', async () => {
    const out = new LateReadable();
    const collected = (async () => {
      const parts: Buffer[] = [];
      for await (const c of out) parts.push(c as Buffer);
      return Buffer.concat(parts).toString();
    })();
    await tick();
    const source = new PassThrough();
    out.attach(source);
    source.end('hello');
    assert.equal(await collected, 'hello');
  });

  test('destroying it destroys the source (the pipe closes: the writer gets EPIPE)', () => {
    const source = new PassThrough();
    const out = new LateReadable();
    out.attach(source);
    out.destroy();
    assert.equal(source.destroyed, true);
  });

  test('a source attached after destroy() is destroyed at once', () => {
    const out = new LateReadable();
    out.destroy();
    const source = new PassThrough();
    out.attach(source);
    assert.equal(source.destroyed, true);
  });

  test('attach(null, tail) ends with the tail; a later attach is ignored', async () => {
    const out = new LateReadable();
    out.attach(null, Buffer.from('not found\n'));
    const late = new PassThrough();
    out.attach(late);
    let text = '';
    for await (const c of out) text += String(c);
    assert.equal(text, 'not found\n');
    assert.equal(late.destroyed, false, 'not ours: left alone');
  });

  test("a source error (a terminal's EIO) is an end, never an 'error' event", async () => {
    const source = new PassThrough();
    const out = new LateReadable();
    let errors = 0;
    out.on('error', () => errors++);
    out.attach(source);
    const text = (async () => {
      let t = '';
      for await (const c of out) t += String(c);
      return t;
    })();
    source.write('partial');
    await tick();
    source.destroy(Object.assign(new Error('read EIO'), { code: 'EIO' }));
    assert.equal(await text, 'partial');
    assert.equal(errors, 0);
  });
});

/** A sink that accepts writes only when `drain()` is called, like a full pipe. */
function stuckSink(): { sink: Writable; received: Buffer[]; release: () => void } {
  const received: Buffer[] = [];
  const waiting: Array<() => void> = [];
  const sink = new Writable({
    highWaterMark: 1,
    write(chunk: Buffer, _enc, cb) {
      received.push(chunk);
      waiting.push(cb);
    },
  });
  return { sink, received, release: () => waiting.splice(0).forEach((cb) => cb()) };
}

describe('LateWritable', () => {
  test('writes before attach() are held (one at a time) and delivered in order after it', async () => {
    const w = new LateWritable();
    w.write('a');
    w.write('b');
    w.end('c');
    const sink = new PassThrough();
    const text = (async () => {
      let t = '';
      for await (const c of sink) t += String(c);
      return t;
    })();
    w.attach(sink);
    assert.equal(await text, 'abc');
  });

  test('a sink that takes nothing makes write() return false within the high-water mark', async () => {
    const { sink, received } = stuckSink();
    const w = new LateWritable();
    w.attach(sink);
    const block = Buffer.alloc(4096);
    let accepted = 0;
    while (w.write(block)) {
      accepted += block.length;
      assert.ok(accepted < 1024 * 1024, 'kept accepting');
    }
    await tick();
    assert.equal(received.length, 1, 'one chunk in flight at the sink, the rest waits in ours');
    assert.ok(w.writableLength <= w.writableHighWaterMark + block.length);
  });

  test('a sink that fails (EPIPE) closes it quietly: no error event, later writes fail through their callback', async () => {
    const sink = new PassThrough();
    const w = new LateWritable();
    let errors = 0;
    w.on('error', () => errors++);
    w.attach(sink);
    sink.destroy(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
    await tick();
    assert.equal(w.destroyed, true);
    const err = await new Promise<Error | null | undefined>((resolve) => w.write('late', resolve));
    assert.ok(err instanceof Error);
    assert.equal(errors, 0);
  });

  test("ownsSink: false (a terminal shared with stdout): end() and close() leave the sink open", async () => {
    const sink = new PassThrough();
    const w = new LateWritable();
    w.attach(sink, { ownsSink: false });
    await new Promise<void>((resolve) => w.end('x', () => resolve()));
    assert.equal(sink.writableEnded, false);
    w.close();
    assert.equal(sink.destroyed, false);
  });

  test('attach(null): there is no stdin, the stream closes', () => {
    const w = new LateWritable();
    w.attach(null);
    assert.equal(w.destroyed, true);
  });
});
