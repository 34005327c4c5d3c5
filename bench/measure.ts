import { firstLine } from './berth.js';
import type { Row, Subject } from './subject.js';

export type Log = (line: string) => void;

/** Prepare every subject; the ones that fail become skipped rows and leave the rotation. */
export async function prepareAll(subjects: Subject[], log: Log): Promise<{ ready: Subject[]; rows: Map<Subject, Row> }> {
  const rows = new Map<Subject, Row>();
  const ready: Subject[] = [];
  for (const s of subjects) {
    const row: Row = { tool: s.name, describe: s.describe, samples: [], failures: 0 };
    rows.set(s, row);
    try {
      await s.prepare?.();
      ready.push(s);
    } catch (e) {
      row.skipped = firstLine(e);
      log(`  ${s.name}: skipped: ${row.skipped}`);
    }
  }
  return { ready, rows };
}

export async function disposeAll(subjects: Subject[], log: Log): Promise<void> {
  for (const s of subjects) {
    try {
      await s.dispose?.();
    } catch (e) {
      log(`  ${s.name}: cleanup failed: ${firstLine(e)}`);
    }
  }
}

export interface AlternateOptions {
  warmup: number;
  runs: number;
  log: Log;
}

/**
 * Warm-up runs, then `runs` measured rounds; each round runs every subject once, in an order
 * rotated by one per round (A B C, B C A, C A B, ...), so slow drift of the machine (page cache,
 * thermal, a neighbour) lands on every tool alike and no tool always runs right after the same
 * other one. A subject that fails during warm-up is dropped; one that fails more than 2% of its
 * measured runs is dropped with the error it gave.
 */
export async function alternate(subjects: Subject[], opts: AlternateOptions): Promise<Row[]> {
  const { ready, rows } = await prepareAll(subjects, opts.log);
  try {
    let active = [...ready];
    for (let i = 0; i < opts.warmup && active.length; i++) {
      for (const s of [...active]) {
        try {
          await s.once();
        } catch (e) {
          const row = rows.get(s)!;
          row.skipped = `failed in warm-up: ${firstLine(e)}`;
          opts.log(`  ${s.name}: ${row.skipped}`);
          active = active.filter((x) => x !== s);
        }
      }
    }
    const maxFailures = Math.max(1, Math.floor(opts.runs * 0.02));
    for (let r = 0; r < opts.runs && active.length; r++) {
      const k = r % active.length;
      const order = [...active.slice(k), ...active.slice(0, k)];
      for (const s of order) {
        const row = rows.get(s)!;
        try {
          row.samples.push(await s.once());
        } catch (e) {
          row.failures++;
          row.firstError ??= firstLine(e);
          if (row.failures > maxFailures) {
            row.skipped = `${row.failures} failures: ${row.firstError}`;
            opts.log(`  ${s.name}: dropped: ${row.skipped}`);
            active = active.filter((x) => x !== s);
          }
        }
      }
      if ((r + 1) % 50 === 0) opts.log(`  round ${r + 1}/${opts.runs}`);
    }
  } finally {
    await disposeAll(ready, opts.log);
  }
  return subjects.map((s) => rows.get(s)!);
}

export interface ThroughputOptions {
  concurrency: number;
  /** Each measurement lasts this long (bounded: also stops at maxRuns). */
  durationMs: number;
  maxRuns: number;
  /** Measurements per subject, alternated between subjects. */
  rounds: number;
  log: Log;
}

/**
 * Runs per second: `concurrency` workers each call once() back to back until the time or the
 * count bound is reached; the rate is completed runs over elapsed wall time. One sample per
 * round; rounds alternate between subjects.
 */
export async function throughput(subjects: Subject[], opts: ThroughputOptions): Promise<Row[]> {
  const { ready, rows } = await prepareAll(subjects, opts.log);
  try {
    let active = [...ready];
    for (let r = 0; r < opts.rounds && active.length; r++) {
      const k = r % active.length;
      for (const s of [...active.slice(k), ...active.slice(0, k)]) {
        const row = rows.get(s)!;
        try {
          row.samples.push(await rate(s, opts));
        } catch (e) {
          row.failures++;
          row.skipped = `failed: ${firstLine(e)}`;
          opts.log(`  ${s.name}: ${row.skipped}`);
          active = active.filter((x) => x !== s);
        }
      }
    }
  } finally {
    await disposeAll(ready, opts.log);
  }
  return subjects.map((s) => rows.get(s)!);
}

async function rate(s: Subject, opts: ThroughputOptions): Promise<number> {
  let started = 0;
  let done = 0;
  const t0 = process.hrtime.bigint();
  const deadline = t0 + BigInt(opts.durationMs) * 1_000_000n;
  const worker = async (): Promise<void> => {
    while (started < opts.maxRuns && process.hrtime.bigint() < deadline) {
      started++;
      await s.once();
      done++;
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  return done / secs;
}
