/**
 * History `created_by` strings as Docker's builder (the one in dockerd, which `docker build`
 * without BuildKit and `buildah bud` both follow) writes them: a RUN records its command line,
 * prefixed with `|<n> NAME=value …` when build args were visible to it; a metadata-only step
 * records `<shell> #(nop)  <INSTRUCTION …>`, formatted with Go's `%q`/`%v` where Docker uses
 * them; COPY and ADD record `#(nop) COPY <kind>:<hash> in <dest> `. The hash is berth's
 * content hash of the source set (Docker's is its own tarsum, which nothing else reads).
 * @module
 */
import type { ContainerConfig } from '../image/manifest.js';

/** Go's `%q` of a string slice: `["a" "b c"]`. */
export function goQuoteList(values: readonly string[]): string {
  return `[${values.map((v) => JSON.stringify(v)).join(' ')}]`;
}

/** Go's `%v` of a string slice: `[a b c]`. */
export function goList(values: readonly string[]): string {
  return `[${values.join(' ')}]`;
}

/** Go's `time.Duration.String()` of nanoseconds (`1m30s`, `500ms`, `0s`). */
export function goDuration(ns: number): string {
  if (ns === 0) return '0s';
  const neg = ns < 0;
  let n = Math.abs(ns);
  let out: string;
  if (n < 1e3) out = `${n}ns`;
  else if (n < 1e6) out = `${trim(n / 1e3)}µs`;
  else if (n < 1e9) out = `${trim(n / 1e6)}ms`;
  else {
    const h = Math.floor(n / 3.6e12);
    n -= h * 3.6e12;
    const m = Math.floor(n / 6e10);
    n -= m * 6e10;
    out = `${h > 0 ? `${h}h` : ''}${h > 0 || m > 0 ? `${m}m` : ''}${trim(n / 1e9)}s`;
  }
  return neg ? `-${out}` : out;
}

function trim(x: number): string {
  return String(Number(x.toFixed(9)));
}

/** Go's `%q` of a `HealthConfig` pointer, as the builder records HEALTHCHECK. */
export function goHealthcheck(hc: NonNullable<ContainerConfig['Healthcheck']>): string {
  const retries = hc.Retries ?? 0;
  const rune = retries < 0x20 || retries === 0x7f ? `'\\x${retries.toString(16).padStart(2, '0')}'` : `'${String.fromCharCode(retries)}'`;
  return `&{${goQuoteList(hc.Test ?? [])} "${goDuration(hc.Interval ?? 0)}" "${goDuration(hc.Timeout ?? 0)}" "${goDuration(hc.StartPeriod ?? 0)}" ${rune}}`;
}

/** A metadata step's `created_by`: `/bin/sh -c #(nop)  ENV A=1`. */
export function nopCreatedBy(shell: readonly string[], text: string): string {
  return [...shell, `#(nop)  ${text}`].join(' ');
}

/** A step that changed files without running anything (COPY, ADD, WORKDIR): one space. */
export function fileCreatedBy(shell: readonly string[], text: string): string {
  return [...shell, `#(nop) ${text}`].join(' ');
}

/** A RUN's `created_by`: `|2 A=1 B=2 /bin/sh -c make`, or the bare command without args. */
export function runCreatedBy(argv: readonly string[], args: ReadonlyArray<readonly [string, string]>): string {
  const prefix = args.length > 0 ? `|${args.length} ${args.map(([k, v]) => `${k}=${v}`).join(' ')} ` : '';
  return `${prefix}${argv.join(' ')}`;
}
