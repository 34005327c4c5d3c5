/**
 * A Dockerfile as stages: the global ARGs before the first FROM, then each `FROM … [AS name]`
 * with its instructions. {@link stagesFor} answers which stages a target needs and in which
 * order: a stage depends on the stage its FROM names and on every stage a `COPY --from` or a
 * `RUN --mount=from=` names; stages nothing needs are never built.
 * @module
 */
import { BuildSourceNotFoundError, DockerfileSyntaxError, type SourceLocation } from './build-errors.js';
import type { ParsedDockerfile } from './dockerfile-parser.js';
import { toInstruction, type Instruction } from './instructions.js';
import { GlobalArgs } from './stage-state.js';

export interface Stage {
  index: number;
  /** `AS name`, lower-cased. */
  name?: string;
  from: Extract<Instruction, { kind: 'FROM' }>;
  instructions: Instruction[];
}

export interface StagedDockerfile {
  file: string;
  escape: string;
  syntax?: string;
  globalArgs: Array<Extract<Instruction, { kind: 'ARG' }>>;
  stages: Stage[];
}

/**
 * Types every instruction and groups them into stages.
 * @throws DockerfileSyntaxError for an instruction other than ARG before the first FROM, a
 *   Dockerfile without FROM, or a stage name used twice
 */
export function toStages(parsed: ParsedDockerfile): StagedDockerfile {
  const out: StagedDockerfile = { file: parsed.file, escape: parsed.escape, globalArgs: [], stages: [], ...(parsed.syntax ? { syntax: parsed.syntax } : {}) };
  for (const raw of parsed.instructions) {
    const instr = toInstruction(raw, parsed.escape);
    if (instr.kind === 'FROM') {
      if (instr.name !== undefined && out.stages.some((s) => s.name === instr.name)) throw new DockerfileSyntaxError(instr.loc, `duplicate stage name ${JSON.stringify(instr.name)}`);
      out.stages.push({ index: out.stages.length, ...(instr.name ? { name: instr.name } : {}), from: instr, instructions: [] });
      continue;
    }
    const stage = out.stages[out.stages.length - 1];
    if (stage === undefined) {
      if (instr.kind !== 'ARG') throw new DockerfileSyntaxError(instr.loc, `${instr.kind} before the first FROM: only ARG may come before FROM`);
      out.globalArgs.push(instr);
      continue;
    }
    stage.instructions.push(instr);
  }
  if (out.stages.length === 0) throw new DockerfileSyntaxError({ file: parsed.file, line: 1, column: 1 }, 'the Dockerfile has no FROM instruction');
  return out;
}

/** The stage a name (stage name or index) refers to among the stages before `before`. */
export function stageNamed(df: StagedDockerfile, name: string, before: number): Stage | undefined {
  const lower = name.toLowerCase();
  const byName = df.stages.find((s) => s.index < before && s.name === lower);
  if (byName) return byName;
  if (/^[0-9]+$/.test(name)) {
    const i = Number(name);
    if (i < before) return df.stages[i];
  }
  return undefined;
}

/** Values of `--mount` options (`from=…`), as written. */
function mountFrom(spec: string): string | undefined {
  for (const part of spec.split(',')) {
    const [k, v] = part.split('=', 2);
    if (k === 'from' && v !== undefined) return v;
  }
  return undefined;
}

/**
 * The stages the target needs, dependencies first. `--from` and FROM values are expanded with
 * the global args (a stage's own ARGs cannot name a stage, as in BuildKit).
 * @param target a stage name; default the last stage
 * @throws BuildSourceNotFoundError when `target` names no stage
 */
export function stagesFor(df: StagedDockerfile, globals: GlobalArgs, target?: string): Stage[] {
  let goal: Stage | undefined;
  if (target === undefined) goal = df.stages[df.stages.length - 1];
  else goal = df.stages.find((s) => s.name === target.toLowerCase());
  if (!goal) {
    const loc: SourceLocation = { file: df.file, line: 1, column: 1 };
    throw new BuildSourceNotFoundError(loc, `target stage ${JSON.stringify(target)} could not be found (stages: ${df.stages.map((s) => s.name ?? String(s.index)).join(', ')})`);
  }
  const order: Stage[] = [];
  const seen = new Set<number>();
  const visit = (s: Stage) => {
    if (seen.has(s.index)) return;
    seen.add(s.index);
    const deps: Array<[string, SourceLocation]> = [[s.from.image, s.from.loc]];
    for (const i of s.instructions) {
      if ((i.kind === 'COPY') && i.from?.value !== undefined) deps.push([i.from.value, i.from.loc]);
      if (i.kind === 'RUN') for (const m of i.mounts) {
        const from = m.value !== undefined ? mountFrom(m.value) : undefined;
        if (from !== undefined) deps.push([from, m.loc]);
      }
    }
    for (const [word, loc] of deps) {
      const dep = stageNamed(df, globals.expand(word, loc), s.index);
      if (dep) visit(dep);
    }
    order.push(s);
  };
  visit(goal);
  return order;
}
