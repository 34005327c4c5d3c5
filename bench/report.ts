import type { MachineFacts } from './machine.js';
import { summarize, type Summary } from './stats.js';
import type { Row } from './subject.js';

export interface WorkloadResult {
  id: string;
  title: string;
  unit: string;
  better: 'lower' | 'higher';
  rows: Row[];
  notes: string[];
  /** The row ratios are taken against; crun unless crun has no meaningful value here. */
  baseline?: string;
}

export interface BenchReport {
  machine: MachineFacts;
  settings: Record<string, unknown>;
  hostNotes: Record<string, string>;
  workloads: WorkloadResult[];
}

/** The row every ratio is taken against: crun, measured in the same run. */
export const BASELINE = 'crun';

function fmt(v: number, unit: string): string {
  if (!Number.isFinite(v)) return '–';
  if (unit === 'ms') return v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0);
  if (unit === 'runs/s') return v.toFixed(0);
  return v < 10 ? v.toFixed(2) : v.toFixed(1);
}

export function rowSummary(row: Row): Summary | undefined {
  return row.skipped ? undefined : summarize(row.samples);
}

/** median(tool) / median(crun). For "higher is better" units the ratio still reads tool/crun. */
export function ratio(w: WorkloadResult, row: Row): string {
  const base = w.rows.find((r) => r.tool === (w.baseline ?? BASELINE));
  const b = base && rowSummary(base);
  const s = rowSummary(row);
  if (!b || !s || b.median === 0) return '–';
  return `${(s.median / b.median).toFixed(2)}×`;
}

export function workloadMarkdown(w: WorkloadResult): string {
  const base = w.baseline ?? BASELINE;
  const lines = [`### ${w.title}`, '', `Unit: ${w.unit} (${w.better} is better). Ratio: median ÷ median of ${base} in the same run.`, ''];
  lines.push(`| tool | median | p99 | min–max | n | vs ${base} |`, '| --- | ---: | ---: | ---: | ---: | ---: |');
  for (const row of w.rows) {
    const s = rowSummary(row);
    if (!s) {
      lines.push(`| ${row.tool} | skipped: ${(row.skipped ?? 'no samples').replace(/\|/g, '\\|')} | | | | |`);
      continue;
    }
    const fails = row.failures ? ` (${row.failures} failed)` : '';
    lines.push(
      `| ${row.tool} | ${fmt(s.median, w.unit)} | ${fmt(s.p99, w.unit)} | ${fmt(s.min, w.unit)}–${fmt(s.max, w.unit)} | ${s.n}${fails} | ${ratio(w, row)} |`,
    );
  }
  if (w.notes.length) lines.push('', ...w.notes.map((n) => `- ${n}`));
  const described = w.rows.filter((r) => r.describe);
  if (described.length) lines.push('', 'What each row runs:', '', ...described.map((r) => `- **${r.tool}**: ${r.describe}`));
  return lines.join('\n');
}

export function machineMarkdown(m: MachineFacts): string {
  const lines = [
    '| fact | value |',
    '| --- | --- |',
    `| date | ${m.date} |`,
    `| kernel | ${m.kernel} |`,
    `| distribution | ${m.distro} |`,
    `| cgroup mode | ${m.cgroupMode} |`,
    `| CPUs | ${m.cpus} × ${m.cpuModel} |`,
    `| memory | ${m.memoryGiB} GiB |`,
    `| node | ${m.node} |`,
    `| load average | ${m.loadAvg} |`,
  ];
  for (const [k, v] of Object.entries(m.tools)) lines.push(`| ${k} | ${v.replace(/\|/g, '\\|')} |`);
  return lines.join('\n');
}

export function reportMarkdown(r: BenchReport): string {
  const parts = ['## Machine', '', machineMarkdown(r.machine), ''];
  const notes = Object.entries(r.hostNotes);
  if (notes.length) parts.push('## Host quirks applied in this run', '', ...notes.map(([k, v]) => `- **${k}**: ${v}`), '');
  parts.push('## Results', '');
  for (const w of r.workloads) parts.push(workloadMarkdown(w), '');
  return parts.join('\n');
}
