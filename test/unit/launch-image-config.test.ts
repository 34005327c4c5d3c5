import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { execFileSync } from 'node:child_process';
import { commandFor, readLayeredFile } from '../../lib/launch/image-config.js';
import { ValidationError } from '../../lib/errors.js';

describe('commandFor (Docker Entrypoint/Cmd rules)', () => {
  const config = { Entrypoint: ['/entry'], Cmd: ['--default'] };
  it('runs Entrypoint + Cmd by default', () => assert.deepEqual(commandFor(config), ['/entry', '--default']));
  it('a cmd replaces Cmd and keeps Entrypoint', () => assert.deepEqual(commandFor(config, ['x']), ['/entry', 'x']));
  it('an entrypoint replaces Entrypoint and drops the image Cmd', () => assert.deepEqual(commandFor(config, undefined, ['/other']), ['/other']));
  it('entrypoint and cmd together', () => assert.deepEqual(commandFor(config, ['a'], ['/other']), ['/other', 'a']));
  it('Cmd alone', () => assert.deepEqual(commandFor({ Cmd: ['sh'] }), ['sh']));
  it('nothing to run is a ValidationError', () => assert.throws(() => commandFor({}), (e: ValidationError) => e.option === 'cmd'));
});

describe('readLayeredFile', () => {
  const base = mkdtempSync(join(tmpdir(), 'berth-layers-'));
  const [top, mid, bottom] = ['top', 'mid', 'bottom'].map((n) => {
    const d = join(base, n);
    mkdirSync(join(d, 'etc'), { recursive: true });
    return d;
  }) as [string, string, string];
  writeFileSync(join(bottom, 'etc/passwd'), 'bottom');
  writeFileSync(join(mid, 'etc/passwd'), 'mid');
  writeFileSync(join(bottom, 'etc/group'), 'g');
  execFileSync('mknod', [join(top, 'etc/group'), 'c', '0', '0']);
  symlinkSync('/etc/hostname', join(top, 'etc/hostname'));

  it('takes the topmost layer that has the file', () => assert.equal(readLayeredFile([top, mid, bottom], 'etc/passwd'), 'mid'));
  it('honours a whiteout in an upper layer', () => assert.equal(readLayeredFile([top, mid, bottom], 'etc/group'), undefined));
  it('never follows a symlink out of the layer', () => assert.equal(readLayeredFile([top, mid, bottom], 'etc/hostname'), undefined));
  it('reports a missing file', () => assert.equal(readLayeredFile([top, mid, bottom], 'etc/shadow'), undefined));
});
