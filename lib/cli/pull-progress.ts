/**
 * `pull`'s progress, Docker's way: on a terminal one line per layer, redrawn in place with a
 * bar (`a1b2c3d4e5f6: Downloading [=====>      ]  1.2MB/3.4MB`); elsewhere a plain line each
 * time a layer changes state, so a log file reads as a history, not a stream of redraws.
 * @module
 */
import type { Writable } from 'node:stream';
import type { LayerProgress, LayerState } from '../index.js';
import { humanSize, shortId } from './output.js';

const STATE_TEXT: Record<LayerState, string> = {
  waiting: 'Waiting',
  downloading: 'Downloading',
  verifying: 'Verifying Checksum',
  extracting: 'Extracting',
  done: 'Pull complete',
  cached: 'Already exists',
};

const BAR_WIDTH = 50;

/** Docker's bar: `[====>     ]` with the head at the fraction done. */
export function progressBar(done: number, total: number): string {
  if (total <= 0) return '';
  const filled = Math.min(BAR_WIDTH, Math.floor((done / total) * BAR_WIDTH));
  const body = filled >= BAR_WIDTH ? '='.repeat(BAR_WIDTH) : `${'='.repeat(Math.max(0, filled - 1))}${filled > 0 ? '>' : ''}${' '.repeat(BAR_WIDTH - filled)}`;
  return `[${body}]`;
}

/** One layer's line. */
export function layerLine(p: LayerProgress, withBar: boolean): string {
  const head = `${shortId(p.layer)}: ${STATE_TEXT[p.state]}`;
  if (!withBar || p.state !== 'downloading') return head;
  return `${head} ${progressBar(p.bytesDone, p.bytesTotal)}  ${humanSize(p.bytesDone)}/${humanSize(p.bytesTotal)}`;
}

/** A sink for a pull's `progress` events. */
export interface ProgressView {
  update(p: LayerProgress): void;
}

/** Plain lines: one per state change of a layer. */
export function plainProgress(out: Writable): ProgressView {
  const last = new Map<number, LayerState>();
  return {
    update(p) {
      if (last.get(p.index) === p.state) return;
      last.set(p.index, p.state);
      out.write(`${layerLine(p, false)}\n`);
    },
  };
}

/** Terminal: a block of one line per layer, redrawn with cursor movements as layers progress. */
export function terminalProgress(out: Writable): ProgressView {
  const lines: string[] = [];
  let drawn = 0;
  return {
    update(p) {
      while (lines.length <= p.index) lines.push('');
      lines[p.index] = layerLine(p, true);
      // Up to the first line of the block, then every line cleared and rewritten.
      let text = drawn > 0 ? `\x1b[${drawn}A` : '';
      for (const l of lines) text += `\r\x1b[2K${l}\n`;
      drawn = lines.length;
      out.write(text);
    },
  };
}
