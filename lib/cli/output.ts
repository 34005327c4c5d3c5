/**
 * How the CLI prints: Docker's table shape (upper-case headers, columns padded to the widest
 * cell and three spaces apart), Docker's human sizes and times, and JSON for `--json`.
 * @module
 */
import type { Writable } from 'node:stream';

/** Writes rows under `headers` as `docker ps` does: every column as wide as its widest cell, three spaces between. */
export function writeTable(out: Writable, headers: readonly string[], rows: readonly (readonly string[])[]): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('   ')
      .trimEnd();
  out.write(`${line(headers)}\n`);
  for (const r of rows) out.write(`${line(r)}\n`);
}

/** `--json` output: one JSON document, indented as `docker inspect` prints it. */
export function writeJson(out: Writable, value: unknown): void {
  out.write(`${JSON.stringify(value, null, 4)}\n`);
}

/** Docker's decimal sizes: `7.05MB`, `512B`, `1.2GB` (three significant digits, as go-units' HumanSize). */
export function humanSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${Number(value.toPrecision(3))}${units[unit]}`;
}

/** Docker's relative times: `Less than a second ago`, `5 seconds ago`, `2 minutes ago`, `3 days ago`. */
export function timeAgo(when: Date | number, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - (typeof when === 'number' ? when : when.getTime())) / 1000));
  if (s < 1) return 'Less than a second ago';
  if (s < 60) return `${s} second${s === 1 ? '' : 's'} ago`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m === 1 ? 'About a' : m} minute${m === 1 ? '' : 's'} ago`;
  const h = Math.round(m / 60);
  if (h < 48) return `${h === 1 ? 'About an' : h} hour${h === 1 ? '' : 's'} ago`;
  const d = Math.round(h / 24);
  if (d < 14) return `${d} days ago`;
  return `${Math.round(d / 7)} weeks ago`;
}

/** The first 12 hex digits of an id, without its `sha256:` prefix. */
export function shortId(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12);
}

/** `docker ps`'s COMMAND column: quoted, cut to 20 characters with an ellipsis. */
export function commandColumn(command: string): string {
  const cut = command.length > 20 ? `${command.slice(0, 19)}…` : command;
  return `"${cut}"`;
}

/** Every item of an async iterable (Node 20 has no `Array.fromAsync`). */
export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}
