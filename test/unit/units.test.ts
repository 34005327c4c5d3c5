import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseBytes, parseCpus, parseCpuset, parseGoDuration, parseGoDurationNs, parseTimePoint } from '../../lib/units.js';
import { applyConfigChanges } from '../../lib/image/config-changes.js';
import { parseDuration } from '../../lib/containers/duration.js';
import { ValidationError } from '../../lib/errors.js';

const KiB = 1024;
const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

function assertInvalid(fn: () => unknown, option: string, ...includes: string[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ValidationError, `expected ValidationError, got ${String(err)}`);
    assert.equal(err.code, 'ERR_INVALID_OPTION');
    assert.equal(err.option, option);
    assert.ok(err.message.startsWith(`${option}: `), err.message);
    for (const text of includes) assert.ok(err.message.includes(text), `${JSON.stringify(err.message)} lacks ${JSON.stringify(text)}`);
    return true;
  });
}

test("parseBytes: Docker's RAMInBytes table", () => {
  const cases: Array<[string, number]> = [
    ['0', 0],
    ['32', 32],
    ['32b', 32],
    ['32B', 32],
    ['32k', 32 * KiB],
    ['32K', 32 * KiB],
    ['32kb', 32 * KiB],
    ['32Kb', 32 * KiB],
    ['32KiB', 32 * KiB],
    ['32kib', 32 * KiB],
    ['64m', 64 * MiB],
    ['64M', 64 * MiB],
    ['64mb', 64 * MiB],
    ['64MB', 64 * MiB],
    ['64MiB', 64 * MiB],
    ['512k', 512 * KiB],
    ['100b', 100],
    ['1g', GiB],
    ['1G', GiB],
    ['1gb', GiB],
    ['1GiB', GiB],
    ['1.5g', 1.5 * GiB],
    ['0.5k', 512],
    ['.5k', 512],
    ['5.', 5],
    ['32.3', 32],
    ['0.1k', 102],
    ['2t', 2 * 1024 ** 4],
    ['1p', 1024 ** 5],
    ['1 m', MiB],
    ['32 mb', 32 * MiB],
  ];
  for (const [input, expected] of cases) assert.equal(parseBytes(input, 'memory'), expected, input);
});

test('parseBytes: numbers pass through when they are non-negative safe integers', () => {
  assert.equal(parseBytes(0, 'memory'), 0);
  assert.equal(parseBytes(67108864, 'memory'), 64 * MiB);
  assert.equal(parseBytes(Number.MAX_SAFE_INTEGER, 'memory'), Number.MAX_SAFE_INTEGER);
  for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53]) {
    assertInvalid(() => parseBytes(bad, 'memory'), 'memory', String(bad));
  }
});

test('parseBytes: invalid strings name the option and quote the value', () => {
  const bad = [
    '', ' ', 'm', 'b', '-1', '-1m', '+1m', '1x', '1mm', '1mib2', '1bb', '1bi', '1ib', '1mbb', '1mi', ' 1m',
    '1m ', '1  m', '1e3', '0x10', 'Infinity', 'NaN', '1,5g', '1.5.5g', '12 34', '64 kb extra', '1kB\n',
  ];
  for (const value of bad) {
    assertInvalid(() => parseBytes(value, 'mounts[1].tmpfsSize'), 'mounts[1].tmpfsSize', JSON.stringify(value));
  }
  assertInvalid(() => parseBytes('10000000p', 'memory'), 'memory', '"10000000p"', 'larger');
  assertInvalid(() => parseBytes(null as unknown as string, 'memory'), 'memory', 'object');
  assertInvalid(() => parseBytes(64n as unknown as number, 'memory'), 'memory', 'bigint');
});

test('parseCpus: nano-CPUs from numbers and decimal strings', () => {
  const cases: Array<[number | string, number]> = [
    [1, 1e9],
    [1.5, 1.5e9],
    [0.3, 300_000_000],
    [0.01, 10_000_000],
    [2, 2e9],
    [64, 64e9],
    ['1', 1e9],
    ['1.5', 1.5e9],
    ['0.25', 250_000_000],
    ['.5', 500_000_000],
    ['2.', 2e9],
    ['0.010', 10_000_000],
    ['0.123456789', 123_456_789],
    ['1.100000000000', 1_100_000_000],
    ['5e-1', 500_000_000],
    [1e-2, 10_000_000],
  ];
  for (const [input, expected] of cases) assert.equal(parseCpus(input, 'cpus'), expected, String(input));
});

test('parseCpus: rejects non-positive, tiny, imprecise, non-finite and malformed values', () => {
  assertInvalid(() => parseCpus(0, 'cpus'), 'cpus', '0', 'minimum is 0.01');
  assertInvalid(() => parseCpus('0.009', 'cpus'), 'cpus', '"0.009"', 'minimum');
  assertInvalid(() => parseCpus(-1, 'cpus'), 'cpus', '-1');
  assertInvalid(() => parseCpus('-1', 'cpus'), 'cpus', '"-1"');
  assertInvalid(() => parseCpus(Number.NaN, 'cpus'), 'cpus', 'NaN');
  assertInvalid(() => parseCpus(Number.POSITIVE_INFINITY, 'cpus'), 'cpus', 'Infinity');
  assertInvalid(() => parseCpus('1.0000000001', 'cpus'), 'cpus', '"1.0000000001"', 'precise');
  assertInvalid(() => parseCpus(1e-10, 'cpus'), 'cpus', 'precise');
  for (const bad of ['', '.', 'one', '1.5 ', ' 1', '1,5', '1/2', '0x1', '1.2.3', 'e3']) {
    assertInvalid(() => parseCpus(bad, 'cpus'), 'cpus', JSON.stringify(bad));
  }
  assertInvalid(() => parseCpus(1e300, 'cpus'), 'cpus', 'too large');
  assertInvalid(() => parseCpus(true as unknown as number, 'cpus'), 'cpus');
});

test('parseCpus: hostCpus caps the value like the Docker daemon', () => {
  assert.equal(parseCpus(4, 'cpus', 4), 4e9);
  assert.equal(parseCpus('3.999', 'cpus', 4), 3_999_000_000);
  assertInvalid(() => parseCpus('4.5', 'cpus', 4), 'cpus', '"4.5"', 'from 0.01 to 4.00', 'only 4 CPUs');
});

test('parseCpuset: normalized list and ids', () => {
  const cases: Array<[string, string, number[]]> = [
    ['0', '0', [0]],
    ['0-2,4', '0-2,4', [0, 1, 2, 4]],
    ['4,0-2', '0-2,4', [0, 1, 2, 4]],
    ['1,2,3', '1-3', [1, 2, 3]],
    ['0-1,1-3', '0-3', [0, 1, 2, 3]],
    ['3-3', '3', [3]],
    ['7,5,6,0', '0,5-7', [0, 5, 6, 7]],
    ['0,2,4', '0,2,4', [0, 2, 4]],
    ['00,01', '0-1', [0, 1]],
    ['8191', '8191', [8191]],
  ];
  for (const [input, normalized, cpus] of cases) {
    assert.deepEqual(parseCpuset(input, 'cpusetCpus'), { normalized, cpus }, input);
  }
  assert.equal(parseCpuset('0-8191', 'cpusetCpus').cpus.length, 8192);
});

test('parseCpuset: invalid lists name the option and quote the value', () => {
  for (const bad of ['', ',', '0,', ',0', '0,,1', 'a', '-1', '1-', '-', '0-2-4', '1 ,2', ' 1', '1\n', '0x1', '1.5', '0:2']) {
    assertInvalid(() => parseCpuset(bad, 'cpusetCpus'), 'cpusetCpus', JSON.stringify(bad));
  }
  assertInvalid(() => parseCpuset('3-1', 'cpusetMems'), 'cpusetMems', '"3-1"', 'ends before it starts');
  assertInvalid(() => parseCpuset('0-4000000000', 'cpusetCpus'), 'cpusetCpus', '"0-4000000000"', '8191');
  assertInvalid(() => parseCpuset('8192', 'cpusetCpus'), 'cpusetCpus', '8191');
  assertInvalid(() => parseCpuset(3 as unknown as string, 'cpusetCpus'), 'cpusetCpus', 'number');
});

test('Go durations: one parser, in nanoseconds or milliseconds', () => {
  assert.equal(parseGoDurationNs('1h2m3.5s'), 3723.5e9);
  assert.equal(parseGoDurationNs('1ns'), 1);
  assert.equal(parseGoDurationNs('2us'), 2000);
  assert.equal(parseGoDurationNs('2µs'), 2000);
  assert.equal(parseGoDurationNs('0'), 0);
  assert.equal(parseGoDuration('1m30s'), 90_000);
  assert.equal(parseGoDuration('250ms'), 250);
  for (const bad of ['', '5', '-1s', '1d', 's', '1.s', '1 s', ' 1s']) assert.equal(parseGoDurationNs(bad), undefined, bad);
});

test('healthcheck flags, duration options and time filters agree on what a duration is', () => {
  const now = 1_700_000_000_000;
  for (const text of ['90s', '1m30s', '1.5m', '90000ms', '1h', '0']) {
    const ms = parseGoDuration(text)!;
    assert.equal(parseDuration(text, 'stopTimeout'), ms, text);
    assert.equal(parseTimePoint(text === '0' ? '0s' : text, 'until', now), now - ms, text);
    assert.equal(applyConfigChanges({}, [`HEALTHCHECK --interval=${text} CMD true`]).Healthcheck?.Interval, ms * 1e6, text);
  }
  for (const bad of ['5', '1d', 'soon']) {
    assert.throws(() => parseDuration(bad, 'stopTimeout'), ValidationError, bad);
    assert.throws(() => applyConfigChanges({}, [`HEALTHCHECK --interval=${bad} CMD true`]), /not a duration/, bad);
  }
});

test('time points: unix seconds, dates, Go durations (image filters\' until)', () => {
  const now = Date.parse('2024-06-01T12:00:00Z');
  assert.equal(parseTimePoint('1700000000', 'u', now), 1700000000_000);
  assert.equal(parseTimePoint('1700000000.5', 'u', now), 1700000000_500);
  assert.equal(parseTimePoint(1700000000, 'u', now), 1700000000_000);
  assert.equal(parseTimePoint('2024-01-31', 'u', now), Date.parse('2024-01-31T00:00:00Z'));
  assert.equal(parseTimePoint('2024-01-31T10:00:00Z', 'u', now), Date.parse('2024-01-31T10:00:00Z'));
  assert.equal(parseTimePoint('2024-01-31T10:00:00+02:00', 'u', now), Date.parse('2024-01-31T08:00:00Z'));
  assert.equal(parseTimePoint('24h', 'u', now), now - 86_400_000);
  assert.equal(parseTimePoint('1h30m', 'u', now), now - 5_400_000);
  assert.equal(parseTimePoint('1.5s', 'u', now), now - 1500);
  const d = new Date(now);
  assert.equal(parseTimePoint(d, 'u', now), now);
  for (const bad of ['yesterday', '10 minutes', '2024-13-45', '', 'h']) assert.throws(() => parseTimePoint(bad, 'filters.until', now), (e: unknown) => e instanceof ValidationError && e.option === 'filters.until', bad);
});

test('time points: Date, RFC 3339, Unix seconds, duration before now (logs\' since/until)', () => {
  const now = Date.parse('2026-01-01T00:10:00Z');
  assert.equal(parseTimePoint(new Date(now), 'since', now), now);
  assert.equal(parseTimePoint('2026-01-01T00:00:00Z', 'since', now), Date.parse('2026-01-01T00:00:00Z'));
  assert.equal(parseTimePoint(1_700_000_000, 'since', now), 1_700_000_000_000);
  assert.equal(parseTimePoint('1700000000.5', 'since', now), 1_700_000_000_500);
  assert.equal(parseTimePoint('10m', 'since', now), now - 600_000);
  assert.throws(() => parseTimePoint('yesterday', 'since', now), /since: must be/);
});
