import { test } from 'node:test';
import assert from 'node:assert/strict';
import { goDuration, goHealthcheck, goList, goQuoteList, nopCreatedBy, runCreatedBy, fileCreatedBy } from '../../lib/build/history.js';

test('Go formatting the builder\'s history strings use', () => {
  const durations: Array<[number, string]> = [[0, '0s'], [1.5e9, '1.5s'], [90e9, '1m30s'], [3.6e12, '1h0m0s'], [500e6, '500ms'], [1500, '1.5µs'], [999, '999ns'], [3723e9, '1h2m3s']];
  for (const [ns, want] of durations) assert.equal(goDuration(ns), want, String(ns));
  assert.equal(goQuoteList(['/bin/sh', '-c', 'echo "hi"']), '["/bin/sh" "-c" "echo \\"hi\\""]');
  assert.equal(goList(['/data', '/x y']), '[/data /x y]');
  assert.equal(goHealthcheck({ Test: ['CMD', 'true'], Interval: 30e9, Retries: 2 }), '&{["CMD" "true"] "30s" "0s" "0s" \'\\x02\'}');
  assert.equal(goHealthcheck({ Test: ['NONE'], Retries: 65 }), '&{["NONE"] "0s" "0s" "0s" \'A\'}');
});

test('created_by shapes: metadata (two spaces), files (one space), RUN with and without args', () => {
  assert.equal(nopCreatedBy(['/bin/sh', '-c'], 'ENV A=1'), '/bin/sh -c #(nop)  ENV A=1');
  assert.equal(fileCreatedBy(['/bin/bash', '-c'], 'WORKDIR /app'), '/bin/bash -c #(nop) WORKDIR /app');
  assert.equal(runCreatedBy(['/bin/sh', '-c', 'make'], []), '/bin/sh -c make');
  assert.equal(runCreatedBy(['/bin/sh', '-c', 'make'], [['A', '1'], ['B', 'x y']]), '|2 A=1 B=x y /bin/sh -c make');
});
