import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ValidationError } from '../../lib/errors.js';
import { JOURNAL_MAX_BYTES, JournalTail, appendRecord, parseChunk, parseEventTime, parseRecord, readJournal, type JournalRecord } from '../../lib/containers/event-journal.js';
import { EventHub, type RuntimeEvent } from '../../lib/containers/events.js';

const ID = 'c'.repeat(64);
const rec = (action: RuntimeEvent['action'], time: string, src = 'monitor-1'): JournalRecord => ({ type: 'container', action, id: ID, name: 'app', time, attributes: { name: 'app' }, src });
const line = (r: JournalRecord): string => `${JSON.stringify(r)}\n`;

function tempJournal(): { dir: string; path: string } {
  const dir = mkdtempSync(join(tmpdir(), 'berth-journal-'));
  return { dir, path: join(dir, 'events.jsonl') };
}

async function drain(s: AsyncIterable<RuntimeEvent>): Promise<string[]> {
  const out: string[] = [];
  for await (const e of s) out.push(`${e.action}@${e.time}`);
  return out;
}

describe('events journal', () => {
  test('a record parses back to the public shape; nanosecond times become milliseconds; junk and foreign records are skipped', () => {
    const r = parseRecord('{"type":"container","action":"exit","id":"x","name":"n","time":"2026-12-02T11:00:00.123456789Z","attributes":{"exitCode":"3","bad":7},"src":"monitor-9"}');
    assert.deepEqual(r, { type: 'container', action: 'exit', id: 'x', name: 'n', time: '2026-12-02T11:00:00.123Z', attributes: { exitCode: '3' }, src: 'monitor-9' });
    for (const bad of ['', '{', '[]', 'null', '{"type":"volume","action":"create","id":"x","name":"n","time":"2026-12-02T11:00:00Z"}', '{"type":"container","action":"explode","id":"x","name":"n","time":"2026-12-02T11:00:00Z"}', '{"type":"container","action":"start","id":"x","name":"n","time":"yesterday"}']) {
      assert.equal(parseRecord(bad), undefined, bad);
    }
  });

  test('a torn last line waits for its newline; a torn line in the middle (a crashed writer) is skipped', () => {
    const a = line(rec('start', '2026-12-02T11:00:00.000Z'));
    const b = line(rec('exit', '2026-12-02T11:00:01.000Z'));
    const { records, rest } = parseChunk(`${a}{"type":"contain\n${b}${b.slice(0, 20)}`);
    assert.deepEqual(records.map((r) => r.action), ['start', 'exit']);
    assert.equal(rest, b.slice(0, 20));
  });

  test('appends are whole lines; past the size limit the journal rotates to .1 and is read oldest first', () => {
    const { dir, path } = tempJournal();
    try {
      // A journal just under the limit: the next record rotates it.
      writeFileSync(path, line(rec('create', '2026-12-02T10:00:00.000Z')).padEnd(JOURNAL_MAX_BYTES, ' ').replace(/ +$/, (m) => `${'\n'.repeat(m.length)}`));
      assert.ok(statSync(path).size >= JOURNAL_MAX_BYTES);
      appendRecord(path, rec('start', '2026-12-02T10:00:01.000Z', 'node-1'));
      appendRecord(path, rec('exit', '2026-12-02T10:00:02.000Z', 'node-1'));
      assert.ok(statSync(`${path}.1`).size >= JOURNAL_MAX_BYTES, 'the full file was renamed aside');
      assert.equal(readFileSync(path, 'utf8').split('\n').filter(Boolean).length, 2);
      assert.deepEqual(readJournal(path).records.map((r) => r.action), ['create', 'start', 'exit']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a tail delivers what is appended after its position, across a rotation, and a line only once complete', () => {
    const { dir, path } = tempJournal();
    try {
      appendFileSync(path, line(rec('create', '2026-12-02T10:00:00.000Z')));
      const seen: string[] = [];
      const tail = new JournalTail(path, readJournal(path).position, (r) => seen.push(r.action));
      tail.poll();
      assert.deepEqual(seen, [], 'what was there before the tail is not repeated');
      const start = line(rec('start', '2026-12-02T10:00:01.000Z'));
      appendFileSync(path, start.slice(0, 30));
      tail.poll();
      assert.deepEqual(seen, []);
      appendFileSync(path, start.slice(30));
      appendFileSync(path, line(rec('exit', '2026-12-02T10:00:02.000Z')));
      renameSync(path, `${path}.1`);
      appendFileSync(path, line(rec('destroy', '2026-12-02T10:00:03.000Z')));
      tail.poll();
      assert.deepEqual(seen, ['start', 'exit', 'destroy']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('since and until take a Date, RFC 3339 or unix seconds; anything else is a ValidationError naming the option', () => {
    assert.equal(parseEventTime(new Date('2026-12-02T11:00:00Z'), 'since'), Date.parse('2026-12-02T11:00:00Z'));
    assert.equal(parseEventTime('2026-12-02T11:00:00.5Z', 'since'), Date.parse('2026-12-02T11:00:00.5Z'));
    assert.equal(parseEventTime('2026-12-02T12:00:00+01:00', 'until'), Date.parse('2026-12-02T11:00:00Z'));
    assert.equal(parseEventTime(1764673200, 'since'), 1764673200_000);
    assert.equal(parseEventTime('1764673200.25', 'since'), 1764673200_250);
    for (const bad of ['yesterday', '', '10m', -1, Number.NaN, new Date('x'), {}, null]) {
      assert.throws(() => parseEventTime(bad, 'until'), (e: unknown) => e instanceof ValidationError && /until/.test(e.message), String(bad));
    }
  });

  test('a hub replays the journal from since (other writers included), then delivers live events once each', async () => {
    const { dir, path } = tempJournal();
    try {
      appendFileSync(path, line(rec('create', '2026-12-02T10:00:00.000Z', 'node-other')));
      appendFileSync(path, line(rec('start', '2026-12-02T10:00:01.000Z', 'monitor-5')));
      appendFileSync(path, line(rec('exit', '2026-12-02T10:00:02.000Z', 'monitor-5')));
      const hub = new EventHub(path);
      const replayed = hub.subscribe({ since: '2026-12-02T10:00:01Z', until: '2026-12-02T10:00:01.5Z' });
      assert.deepEqual(await drain(replayed), ['start@2026-12-02T10:00:01.000Z'], 'since and until bound the replay; a past until ends the subscription');
      const live = hub.subscribe({ since: new Date('2026-12-02T10:00:02Z') });
      const now = new Date().toISOString();
      hub.publish({ type: 'container', action: 'pause', id: ID, name: 'app', time: now, attributes: {} });
      // Another writer (a monitor) appends: the tail brings it.
      appendFileSync(path, line(rec('health_status', now, 'monitor-5')));
      const got: string[] = [];
      for await (const e of live) {
        got.push(e.action);
        if (got.length === 3) live.close();
      }
      assert.deepEqual(got, ['exit', 'pause', 'health_status']);
      const own = readJournal(path).records.filter((r) => r.action === 'pause');
      assert.equal(own.length, 1, 'the hub records its own events in the journal');
      const again = hub.subscribe({ since: now, until: new Date(Date.now() + 1000) });
      const later = await drain(again);
      assert.deepEqual(later.map((s) => s.split('@')[0]), ['pause', 'health_status'], 'an own event is replayed from the journal, not from memory twice');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('bad options are refused before anything is subscribed', () => {
    const hub = new EventHub();
    assert.throws(() => hub.subscribe({ since: 'soon' }), /since/);
    assert.throws(() => hub.subscribe({ since: 20, until: 10 }), /until must not be before since|until/);
  });
});
