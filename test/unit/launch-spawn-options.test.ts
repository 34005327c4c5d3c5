/**
 * spawn()'s options and run()'s translation into them: every bad input is a ValidationError
 * naming the option, and run()'s stdin keeps its meaning (data, or /dev/null when absent).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { ValidationError } from '../../lib/errors.js';
import { checkSpawnOptions, spawnOptionsOfRun, type SpawnOptions } from '../../lib/launch/spawn-options.js';
import { DEFAULT_MAX_BUFFER } from '../../lib/launch/bounded-output.js';

const rejects = (options: unknown, option: string, pattern?: RegExp) =>
  assert.throws(
    () => checkSpawnOptions(options as SpawnOptions),
    (e: unknown) => e instanceof ValidationError && e.option === option && (!pattern || pattern.test(e.message)),
    `expected a ValidationError for ${option}`,
  );

describe('checkSpawnOptions', () => {
  test("defaults: stdin is a pipe, no tty, no timeout", () => {
    const c = checkSpawnOptions(undefined);
    assert.equal(c.stdinPipe, true);
    assert.deepEqual(c.sandbox, { stdin: 'pipe', tty: false });
  });

  test("'ignore' means no pipe; data and Readables are piped", () => {
    assert.equal(checkSpawnOptions({ stdin: 'ignore' }).stdinPipe, false);
    assert.equal(checkSpawnOptions({ stdin: Buffer.from('x') }).stdinPipe, true);
    assert.equal(checkSpawnOptions({ stdin: Readable.from([]) }).stdinPipe, true);
  });

  test('stdin is not passed on to the launch; timeout, signal and tty go to the sandbox', () => {
    const ac = new AbortController();
    const c = checkSpawnOptions({ stdin: 'ignore', timeout: 50, signal: ac.signal, tty: true, memory: '64m' });
    assert.equal('stdin' in c.launch, false);
    assert.equal(c.launch.memory, '64m');
    assert.equal(c.sandbox.timeout, 50);
    assert.equal(c.sandbox.signal, ac.signal);
    assert.equal(c.sandbox.tty, true);
  });

  test('result-only options say why they do not apply', () => {
    rejects({ maxBuffer: 1024 }, 'maxBuffer', /does not apply to spawn\(\)/);
    rejects({ encoding: 'utf8' }, 'encoding', /setEncoding/);
  });

  test('a string stdin is refused with the way to send text', () => {
    rejects({ stdin: 'hello' }, 'stdin', /Buffer\.from\(text\)/);
    rejects({ stdin: 42 }, 'stdin');
  });

  test("run()'s own checks apply: unknown names, units, timeout", () => {
    rejects({ Memory: '1g' }, 'Memory', /did you mean "memory"/);
    rejects({ memory: 'lots' }, 'memory');
    rejects({ timeout: -1 }, 'timeout');
    rejects('nope', 'options');
  });
});

describe('spawnOptionsOfRun', () => {
  test('no stdin is /dev/null; a string becomes bytes; Buffers and Readables pass', () => {
    assert.equal(spawnOptionsOfRun({}).spawn.stdin, 'ignore');
    assert.deepEqual(spawnOptionsOfRun({ stdin: 'pipe' }).spawn.stdin, Buffer.from('pipe'), "the text 'pipe', not the keyword");
    const r = Readable.from([]);
    assert.equal(spawnOptionsOfRun({ stdin: r }).spawn.stdin, r);
  });

  test('encoding and maxBuffer become the result form, with their defaults', () => {
    assert.deepEqual(spawnOptionsOfRun(undefined).result, { encoding: 'utf8', maxBuffer: DEFAULT_MAX_BUFFER });
    const { spawn, result } = spawnOptionsOfRun({ encoding: 'buffer', maxBuffer: 10, memory: '1g' });
    assert.deepEqual(result, { encoding: 'buffer', maxBuffer: 10 });
    assert.equal('encoding' in spawn || 'maxBuffer' in spawn, false);
    assert.equal(spawn.memory, '1g');
  });

  test('a bad run() option is refused before anything else', () => {
    assert.throws(() => spawnOptionsOfRun({ maxBuffer: -1 }), (e: unknown) => e instanceof ValidationError && e.option === 'maxBuffer');
  });
});
