/**
 * The CLI's Docker-shaped output (lib/cli/output.ts, lib/cli/pull-progress.ts): sizes and
 * times as go-units prints them, the table's padding, and pull progress as lines or as a
 * block redrawn on a terminal.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { commandColumn, humanSize, shortId, timeAgo, writeTable } from '../../lib/cli/output.js';
import { layerLine, plainProgress, progressBar, terminalProgress } from '../../lib/cli/pull-progress.js';
import { portsColumn } from '../../lib/cli/container-verbs.js';
import { splitReference } from '../../lib/cli/image-verbs.js';
import type { LayerProgress } from '../../lib/index.js';

function sink(): { out: PassThrough; text: () => string } {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  return { out, text: () => Buffer.concat(chunks).toString() };
}

const layer = (index: number, state: LayerProgress['state'], bytesDone = 0, bytesTotal = 1000): LayerProgress => ({
  layer: `sha256:${String(index).repeat(64)}`,
  index,
  state,
  bytesDone,
  bytesTotal,
});

describe('CLI output', () => {
  it("sizes, times, ids and commands as Docker's CLI prints them", () => {
    assert.deepEqual([0, 999, 1000, 7_050_000, 1_234_567_890].map(humanSize), ['0B', '999B', '1kB', '7.05MB', '1.23GB']);
    const now = 1_000_000_000_000;
    assert.deepEqual([now, now - 5000, now - 60_000, now - 7_200_000, now - 3 * 86_400_000].map((t) => timeAgo(t, now)), [
      'Less than a second ago',
      '5 seconds ago',
      'About a minute ago',
      '2 hours ago',
      '3 days ago',
    ]);
    assert.equal(shortId('sha256:0123456789abcdef'), '0123456789ab');
    assert.equal(commandColumn('sleep 1'), '"sleep 1"');
    assert.equal(commandColumn('sh -c "echo hello world"'), '"sh -c "echo hello w…"');
  });

  it('a table pads every column to its widest cell, three spaces apart', () => {
    const s = sink();
    writeTable(s.out, ['A', 'LONGER'], [['x', ''], ['wide cell', 'y']]);
    assert.equal(s.text(), 'A           LONGER\nx\nwide cell   y\n');
  });

  it('PORTS and REPOSITORY/TAG columns', () => {
    assert.equal(portsColumn({ '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '8080' }], '53/udp': null }), '127.0.0.1:8080->80/tcp, 53/udp');
    assert.deepEqual(splitReference('127.0.0.1:5000/a/b:1'), ['127.0.0.1:5000/a/b', '1']);
    assert.deepEqual(splitReference('127.0.0.1:5000/a/b'), ['127.0.0.1:5000/a/b', 'latest']);
    assert.deepEqual(splitReference('r/a@sha256:00'), ['r/a', '<none>']);
  });
});

describe('pull progress', () => {
  it('a bar with its head where the download is', () => {
    assert.equal(progressBar(0, 100), `[${' '.repeat(50)}]`);
    assert.equal(progressBar(50, 100), `[${'='.repeat(24)}>${' '.repeat(25)}]`);
    assert.equal(progressBar(100, 100), `[${'='.repeat(50)}]`);
    assert.equal(layerLine(layer(1, 'downloading', 500_000, 1_000_000), true), `111111111111: Downloading ${progressBar(1, 2)}  500kB/1MB`);
  });

  it('plain: one line per state change, none for more bytes', () => {
    const s = sink();
    const view = plainProgress(s.out);
    for (const p of [layer(0, 'waiting'), layer(0, 'downloading', 10), layer(0, 'downloading', 20), layer(1, 'cached'), layer(0, 'done', 1000)]) view.update(p);
    assert.equal(s.text(), '000000000000: Waiting\n000000000000: Downloading\n111111111111: Already exists\n000000000000: Pull complete\n');
  });

  it('terminal: the block of layer lines is redrawn in place', () => {
    const s = sink();
    const view = terminalProgress(s.out);
    view.update(layer(0, 'downloading', 10));
    view.update(layer(1, 'waiting'));
    view.update(layer(0, 'done', 1000));
    const frames = s.text().split(/(?=\x1b\[\d+A)/);
    assert.equal(frames.length, 3);
    assert.ok(frames[1]!.startsWith('\x1b[1A'), 'up one line (the first frame had one)');
    assert.ok(frames[2]!.startsWith('\x1b[2A'), 'up two lines');
    assert.match(frames[2]!, /\r\x1b\[2K000000000000: Pull complete\n\r\x1b\[2K111111111111: Waiting\n$/);
  });
});
