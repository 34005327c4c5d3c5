/**
 * Start-latency distributions per tool as a standalone SVG (no dependencies): one row per tool,
 * every sample as a faint dot (deterministic jitter), a box from p25 to p75, whiskers to p1 and
 * p99, and the median marked and printed. Log-scale x axis, since the tools span 1 ms to
 * hundreds of ms.
 *
 * Also runnable on a saved result: `node --import tsx bench/svg.ts results.json out.svg`.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { MachineFacts } from './machine.js';
import type { BenchReport, WorkloadResult } from './report.js';
import { percentile } from './stats.js';

const W = 960;
const LEFT = 170;
const RIGHT = 110;
const TOP = 58;
const ROW = 40;
const BOTTOM = 72;

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function niceTicks(lo: number, hi: number): number[] {
  const ticks: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v >= lo && v <= hi) ticks.push(v);
    }
  }
  return ticks;
}

/** A tiny LCG so the jitter, and so the file, is the same for the same samples. */
function jitter(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 2 ** 32;
  };
}

export function startLatencySvg(w: WorkloadResult, machine?: MachineFacts): string {
  const rows = w.rows.filter((r) => !r.skipped && r.samples.length > 0);
  const all = rows.flatMap((r) => r.samples);
  const lo = Math.max(0.1, Math.min(...all) * 0.8);
  const hi = Math.max(...all) * 1.25;
  const H = TOP + ROW * Math.max(1, rows.length) + BOTTOM;
  const x = (v: number): number => LEFT + ((Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * (W - LEFT - RIGHT);
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif" font-size="13">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${LEFT}" y="22" font-size="15" font-weight="600">${esc('Start latency of /bin/true, start to exit (ms, log scale)')}</text>`,
  );
  if (machine) {
    out.push(
      `<text x="${LEFT}" y="40" font-size="11" fill="#555">${esc(`${machine.kernel} · ${machine.cpus} CPUs · cgroup ${machine.cgroupMode.split(' (')[0]} · ${machine.date.slice(0, 10)}`)}</text>`,
    );
  }
  if (rows.length === 0) {
    out.push(`<text x="${LEFT}" y="${TOP + 20}">no samples</text></svg>`);
    return out.join('\n');
  }
  const plotBottom = TOP + ROW * rows.length;
  for (const t of niceTicks(lo, hi)) {
    const tx = x(t).toFixed(1);
    out.push(
      `<line x1="${tx}" y1="${TOP - 6}" x2="${tx}" y2="${plotBottom}" stroke="#e3e3e3"/>`,
      `<text x="${tx}" y="${plotBottom + 18}" text-anchor="middle" fill="#444">${t}</text>`,
    );
  }
  out.push(`<text x="${(LEFT + W - RIGHT) / 2}" y="${plotBottom + 36}" text-anchor="middle" fill="#444">milliseconds</text>`);
  const palette = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
  rows.forEach((r, i) => {
    const cy = TOP + ROW * i + ROW / 2;
    const color = r.tool.startsWith('berth') ? '#0b6e4f' : palette[i % palette.length]!;
    const s = [...r.samples].sort((a, b) => a - b);
    const q = (p: number): number => percentile(s, p);
    if (i % 2 === 1) out.push(`<rect x="0" y="${TOP + ROW * i}" width="${W}" height="${ROW}" fill="#f7f7f7"/>`);
    out.push(`<text x="${LEFT - 10}" y="${cy + 4}" text-anchor="end" font-weight="${r.tool.startsWith('berth') ? 700 : 400}">${esc(r.tool)}</text>`);
    const rnd = jitter(i * 7919 + s.length);
    for (const v of r.samples) {
      out.push(`<circle cx="${x(v).toFixed(1)}" cy="${(cy + (rnd() - 0.5) * ROW * 0.6).toFixed(1)}" r="1.6" fill="${color}" fill-opacity="0.28"/>`);
    }
    const [p1, p25, p50, p75, p99] = [q(1), q(25), q(50), q(75), q(99)];
    out.push(
      `<line x1="${x(p1).toFixed(1)}" y1="${cy}" x2="${x(p99).toFixed(1)}" y2="${cy}" stroke="${color}" stroke-width="1.2"/>`,
      `<line x1="${x(p1).toFixed(1)}" y1="${cy - 6}" x2="${x(p1).toFixed(1)}" y2="${cy + 6}" stroke="${color}"/>`,
      `<line x1="${x(p99).toFixed(1)}" y1="${cy - 6}" x2="${x(p99).toFixed(1)}" y2="${cy + 6}" stroke="${color}"/>`,
      `<rect x="${x(p25).toFixed(1)}" y="${cy - 9}" width="${Math.max(1, x(p75) - x(p25)).toFixed(1)}" height="18" fill="${color}" fill-opacity="0.18" stroke="${color}"/>`,
      `<line x1="${x(p50).toFixed(1)}" y1="${cy - 11}" x2="${x(p50).toFixed(1)}" y2="${cy + 11}" stroke="${color}" stroke-width="2.5"/>`,
      `<text x="${W - RIGHT + 10}" y="${cy + 4}" fill="#222">${esc(`${p50 < 10 ? p50.toFixed(2) : p50.toFixed(1)} ms`)}</text>`,
    );
  });
  out.push(
    `<text x="${W - RIGHT + 10}" y="${TOP - 8}" fill="#555" font-size="11">median</text>`,
    `<text x="${LEFT}" y="${H - 8}" font-size="11" fill="#555">${esc('box: p25–p75 · thick line: median · whiskers: p1–p99 · dots: every run')}</text>`,
    '</svg>',
    '',
  );
  return out.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [input, output] = process.argv.slice(2);
  if (!input || !output) {
    process.stderr.write('usage: node --import tsx bench/svg.ts results.json out.svg\n');
    process.exitCode = 2;
  } else {
    const report = JSON.parse(readFileSync(input, 'utf8')) as BenchReport;
    const start = report.workloads.find((w) => w.id === 'start');
    if (!start) throw new Error(`${input} has no start-latency workload`);
    writeFileSync(output, startLatencySvg(start, report.machine));
  }
}
