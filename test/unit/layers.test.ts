/**
 * The layer rule of docs/design/layers.md, checked over the import graph of lib/: every import
 * points down the layers (or stays in its folder), and no import cycle runs through files of
 * different folders. Static imports, `export … from`, type-only imports and `import()` all count:
 * a type-only loop is still a loop for the reader.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const LIB = resolve(dirname(fileURLToPath(import.meta.url)), '../../lib');

/**
 * Bottom to top; a file may import its own folder and the layers below its own. A top-level
 * folder of lib/ or a file directly in lib/ is one entry. Keep in step with docs/design/layers.md.
 */
const LAYERS: readonly (readonly string[])[] = [
  ['errors.ts', 'units.ts'],
  ['native.ts', 'native'],
  ['host'],
  ['state'],
  ['security'],
  ['cgroup'],
  ['image'],
  ['rootless'],
  ['storage'],
  ['network'],
  ['rootfs'],
  ['launch'],
  ['volumes'],
  ['containers'],
  ['pool'],
  ['build'],
  ['run.ts', 'runtime.ts', 'runtime-info.ts', 'runtime-advice.ts', 'index.ts', 'compose'],
  ['cli'],
];

/**
 * Folders above the public API that may reach below it only through the package entry, as a
 * user's code does: the CLI (and compose, pools later) must not lean on a service's internals.
 */
const ENTRY_ONLY: readonly string[] = ['cli'];

/**
 * Imports allowed to break the rule for a while, each with `why` naming who removes it. Remove
 * an entry with its import; a stale entry fails the test. (Empty since issue 11 landed.)
 */
const KNOWN_EXCEPTIONS: ReadonlyArray<{ from: string; to: string; why: string }> = [];

interface Edge {
  from: string;
  to: string;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...sourceFiles(p));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

function resolveImport(from: string, spec: string): string | undefined {
  if (!spec.startsWith('.')) return undefined;
  const base = resolve(dirname(from), spec);
  for (const candidate of [base.replace(/\.js$/, '.ts'), `${base}.ts`, join(base, 'index.ts')]) {
    if (existsSync(candidate)) return candidate;
  }
  throw new Error(`${relative(LIB, from)}: cannot resolve import '${spec}'`);
}

/** Every relative import of lib/, as paths relative to lib/. */
function importGraph(): Edge[] {
  const edges: Edge[] = [];
  for (const file of sourceFiles(LIB)) {
    const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    for (const ref of info.importedFiles) {
      const target = resolveImport(file, ref.fileName);
      if (target) edges.push({ from: relative(LIB, file), to: relative(LIB, target) });
    }
  }
  return edges;
}

/** The layer entry of a path relative to lib/: its top-level folder, or itself for a file in lib/. */
function entryOf(path: string): string {
  return path.split('/')[0]!;
}

function rankOf(path: string): number {
  const entry = entryOf(path);
  const rank = LAYERS.findIndex((layer) => layer.includes(entry));
  if (rank < 0) throw new Error(`lib/${path}: lib/${entry} is in no layer: add it to LAYERS and docs/design/layers.md`);
  return rank;
}

/** Strongly connected components with more than one file (Tarjan). */
function cycles(edges: readonly Edge[]): string[][] {
  const next = new Map<string, string[]>();
  for (const e of edges) {
    if (!next.has(e.from)) next.set(e.from, []);
    if (!next.has(e.to)) next.set(e.to, []);
    next.get(e.from)!.push(e.to);
  }
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  let counter = 0;
  const visit = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v)!) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) found.push(component.sort());
    }
  };
  for (const v of next.keys()) if (!index.has(v)) visit(v);
  return found;
}

const isException = (e: Edge) => KNOWN_EXCEPTIONS.some((x) => x.from === e.from && x.to === e.to);

describe('layers of lib/ (docs/design/layers.md)', () => {
  const edges = importGraph();

  it('every import points down the layers or stays in its folder', () => {
    const upward = edges.filter((e) => entryOf(e.from) !== entryOf(e.to) && rankOf(e.to) > rankOf(e.from) && !isException(e));
    assert.deepEqual(upward.map((e) => `lib/${e.from} -> lib/${e.to}`), []);
  });

  it('no import cycle runs through files of different folders', () => {
    const kept = edges.filter((e) => !isException(e));
    const crossing = cycles(kept).filter((c) => new Set(c.map((f) => dirname(f))).size > 1);
    assert.deepEqual(crossing.map((c) => c.map((f) => `lib/${f}`).join(' <-> ')), []);
  });

  it('the CLI imports nothing of the library but its package entry (lib/index.ts)', () => {
    const inward = edges.filter((e) => ENTRY_ONLY.includes(entryOf(e.from)) && entryOf(e.to) !== entryOf(e.from) && e.to !== 'index.ts');
    assert.deepEqual(inward.map((e) => `lib/${e.from} -> lib/${e.to}`), []);
  });

  it('compose/ reaches the rest of lib/ only through modules of the public API (those index.ts exports from)', () => {
    const publicModules = new Set(edges.filter((e) => e.from === 'index.ts').map((e) => e.to));
    const inner = edges.filter((e) => entryOf(e.from) === 'compose' && entryOf(e.to) !== 'compose' && !publicModules.has(e.to));
    assert.deepEqual(inner.map((e) => `lib/${e.from} -> lib/${e.to}`), []);
  });

  it('every known exception still exists (remove it with its import)', () => {
    const stale = KNOWN_EXCEPTIONS.filter((x) => !edges.some((e) => e.from === x.from && e.to === x.to));
    assert.deepEqual(stale, []);
  });
});
