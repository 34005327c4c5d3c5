/**
 * The embedded resolver's DNS parser and answer builder (src-native/dns-message.cc), through
 * the addon: well-formed queries, each malformation it must refuse, and random bytes (every
 * input gets a verdict, the process survives, and what parses re-encodes to the same question).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { native } from '../../lib/native.js';

const OK = 0, SHORT = 1, NOT_QUERY = 2, NOT_IMPLEMENTED = 3, MALFORMED = 4;

function name(...labels: Array<string | Buffer>): Buffer {
  return Buffer.concat([...labels.map((l) => (typeof l === 'string' ? Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'latin1')]) : l)), Buffer.from([0])]);
}

function query(qname: Buffer, { id = 0x1234, flags = 0x0100, qd = 1, an = 0, ar = 0, qtype = 1 } = {}): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(id, 0);
  h.writeUInt16BE(flags, 2);
  h.writeUInt16BE(qd, 4);
  h.writeUInt16BE(an, 6);
  h.writeUInt16BE(ar, 10);
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(qtype, 0);
  tail.writeUInt16BE(1, 2);
  return Buffer.concat([h, qname, tail]);
}

test('a query is parsed: id, flags, lower-cased name, type, class', () => {
  const q = native().dnsParseQuery(query(name('Web', 'MyNet'), { qtype: 28 }));
  assert.deepEqual(q, { result: OK, id: 0x1234, flags: 0x0100, name: 'web.mynet', qtype: 28, qclass: 1 });
  assert.equal(native().dnsParseQuery(query(name())).name, '', 'the root name');
  assert.equal(native().dnsParseQuery(query(name('a'), { ar: 1 })).result, OK, 'an EDNS OPT record is allowed');
});

test('what is not a query is refused with the right verdict', () => {
  const p = (b: Buffer) => native().dnsParseQuery(b).result;
  assert.equal(p(Buffer.alloc(11)), SHORT);
  assert.equal(p(query(name('a'), { flags: 0x8000 })), NOT_QUERY, 'a response (QR): never answered, no reflection');
  assert.equal(p(query(name('a'), { flags: 2 << 11 })), NOT_IMPLEMENTED, 'opcode STATUS');
  assert.equal(p(query(name('a'), { qd: 2 })), MALFORMED, 'two questions');
  assert.equal(p(query(name('a'), { qd: 0 })), MALFORMED, 'no question');
  assert.equal(p(query(name('a'), { an: 1 })), MALFORMED, 'answers in a query');
  assert.equal(p(query(name('x'.repeat(64)))), MALFORMED, 'a 64-byte label');
  assert.equal(p(query(name(...Array.from({ length: 5 }, () => 'y'.repeat(63))))), MALFORMED, 'a name beyond 255 bytes');
  assert.equal(p(query(name('a.b'))), MALFORMED, 'a dot inside a label');
  assert.equal(p(query(Buffer.from([1, 0x61, 0xc0, 12]))), MALFORMED, 'a compression pointer (here: to itself)');
  assert.equal(p(query(Buffer.from([0x40, 0]))), MALFORMED, 'an extended label type');
  assert.equal(p(query(name('a')).subarray(0, 16)), MALFORMED, 'cut inside the question');
  assert.equal(p(query(Buffer.from([5, 0x61]))), MALFORMED, 'a label running past the end');
});

test('answers: A records under the question, NXDOMAIN, PTR, and TC beyond 512 bytes', () => {
  const q = { id: 7, flags: 0x0100, name: 'web.net', qtype: 1, qclass: 1 };
  const a = native().dnsBuildAnswer(q, 0, [0x0a000002], '');
  assert.equal(a.readUInt16BE(0), 7);
  assert.equal(a.readUInt16BE(2) & 0x8000, 0x8000, 'QR');
  assert.equal(a.readUInt16BE(2) & 0x0100, 0x0100, 'RD echoed');
  assert.equal(a.readUInt16BE(6), 1, 'one answer');
  assert.deepEqual([...a.subarray(a.length - 4)], [10, 0, 0, 2]);
  assert.equal(native().dnsBuildAnswer(q, 3, [], '').readUInt16BE(2) & 0xf, 3, 'NXDOMAIN');
  const ptr = native().dnsBuildAnswer({ ...q, name: '2.0.0.10.in-addr.arpa', qtype: 12 }, 0, [], 'web.net');
  assert.ok(ptr.includes(Buffer.from('\x03web\x03net\x00', 'latin1')), 'the PTR target');
  const many = native().dnsBuildAnswer(q, 0, Array.from({ length: 100 }, (_, i) => 0x0a000000 + i), '');
  assert.ok(many.length <= 512);
  assert.equal(many.readUInt16BE(2) & 0x0200, 0x0200, 'TC');
  assert.ok(many.readUInt16BE(6) < 100);
});

test('random bytes: every input gets a verdict, and what parses re-encodes to its question', () => {
  let parsed = 0;
  for (let i = 0; i < 20_000; i++) {
    // Half start from a valid query with bytes flipped: deeper into the parser than pure noise.
    let b: Buffer;
    if (i % 2 === 0) {
      b = randomBytes(1 + (i % 300));
    } else {
      b = query(name('svc', 'net'));
      for (let k = 0; k < 1 + (i % 4); k++) b[12 + ((i * 7 + k * 13) % (b.length - 12))] = randomBytes(1)[0]!;
    }
    const q = native().dnsParseQuery(b);
    assert.ok([OK, SHORT, NOT_QUERY, NOT_IMPLEMENTED, MALFORMED].includes(q.result));
    if (q.result !== OK) continue;
    parsed++;
    assert.ok(q.name.length <= 253, 'a parsed name fits in 255 wire bytes');
    const answer = native().dnsBuildAnswer(q, 3, [], '');
    assert.ok(answer.length >= 12 && answer.length <= 512);
    assert.equal(answer.readUInt16BE(0), q.id);
  }
  assert.ok(parsed > 100, `some mutated queries still parse (${parsed})`);
});
