/**
 * berth's side of every workload, imported lazily so that the harness runs (and measures the
 * peers) while berth's API is still being written. Each function either returns a ready subject
 * or throws a NotAvailable that the harness prints as one "skipped" line.
 *
 * The specifier is computed so that `tsc` does not resolve it: the benchmark must type-check
 * before lib/index.ts exists and must not depend on berth's types beyond what it calls.
 */

/** The slice of berth's public API the benchmark uses, described structurally. */
export interface BerthRunResult {
  exitCode: number;
  stdout?: string;
  stderr?: string;
}
export interface BerthApi {
  run(source: unknown, cmd?: string[], options?: Record<string, unknown>): Promise<BerthRunResult>;
  Runtime?: { open(options?: Record<string, unknown>): Promise<unknown> };
}

export class NotAvailable extends Error {}

let loaded: Promise<BerthApi> | undefined;

export function loadBerth(): Promise<BerthApi> {
  loaded ??= (async () => {
    const spec = new URL('../lib/index.js', import.meta.url).href;
    let mod: Partial<BerthApi>;
    try {
      mod = (await import(spec)) as Partial<BerthApi>;
    } catch (e) {
      throw new NotAvailable(`cannot import ../lib/index.js (${firstLine(e)})`);
    }
    if (typeof mod.run !== 'function') throw new NotAvailable('lib/index.js has no run() export yet');
    return mod as BerthApi;
  })();
  return loaded;
}

export function firstLine(e: unknown): string {
  const msg = e instanceof Error ? `${(e as { code?: string }).code ? `${(e as { code?: string }).code}: ` : ''}${e.message}` : String(e);
  return msg.split('\n')[0]!;
}

/** One berth run() whose time is measured from the call to the settled promise. */
export async function berthRunOnce(api: BerthApi, source: unknown, cmd: string[]): Promise<number> {
  const t0 = process.hrtime.bigint();
  const r = await api.run(source, cmd);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.exitCode !== 0) throw new Error(`exit ${r.exitCode}: ${(r.stderr ?? '').trim().split('\n').pop() ?? ''}`);
  return ms;
}

/**
 * Parts of berth the later workloads need (exec, pull, detached containers, networks). They are
 * probed here, in one place, so that the lead can see what each workload expects; until the
 * Runtime API exists they report "not yet available".
 */
export async function loadRuntime(): Promise<NonNullable<BerthApi['Runtime']>> {
  const api = await loadBerth();
  if (!api.Runtime || typeof api.Runtime.open !== 'function') throw new NotAvailable('berth has no Runtime.open() yet');
  return api.Runtime;
}
