/**
 * The Dockerfile grammar of BuildKit, up to the instruction: parser directives (`# syntax=`,
 * `# escape=`, `# check=`) at the top, comments, line continuations with the escape character,
 * empty continuation lines, and here-documents (`<<EOF`, `<<-EOF`, `<<"EOF"`) after RUN, COPY
 * and ADD. The result is a list of {@link RawInstruction}s whose text is still unexpanded;
 * `instructions.ts` gives each its typed shape.
 *
 * Every piece of text keeps a map back to the file, so an error deep in an argument names the
 * line and column where that argument was written, even on a continuation line.
 * @module
 */
import { DockerfileSyntaxError, type SourceLocation } from './build-errors.js';

/** A here-document attached to an instruction. */
export interface Heredoc {
  /** The delimiter word (`EOF`). */
  name: string;
  /** The body, each line ending in `\n` (leading tabs removed for `<<-`). */
  content: string;
  /** The delimiter was quoted (`<<"EOF"`): the body is not expanded. */
  quoted: boolean;
  /** Leading tabs were stripped (`<<-EOF`). */
  chomp: boolean;
}

/** One instruction as written, continuation lines joined, not yet interpreted. */
export interface RawInstruction {
  /** The keyword in upper case (`RUN`). */
  keyword: string;
  /** Everything after the keyword, continuations joined (escape + newline removed), trimmed. */
  rest: string;
  /** The keyword and the rest as one line, as BuildKit records it in history. */
  original: string;
  /** Where the keyword starts. */
  loc: SourceLocation;
  /** The last line of the instruction (heredoc bodies included). */
  endLine: number;
  /** Here-documents, in the order they were opened. */
  heredocs: Heredoc[];
  /** Maps an offset in {@link rest} back to the file. */
  locate(offset: number): SourceLocation;
}

/** A parsed Dockerfile: its directives and instructions. */
export interface ParsedDockerfile {
  file: string;
  /** The escape character in force (`\` unless `# escape=`` ` ``). */
  escape: string;
  /** `# syntax=` (recorded, never fetched), when present. */
  syntax?: string;
  /** All directives seen, lower-case names. */
  directives: Record<string, string>;
  instructions: RawInstruction[];
}

const DIRECTIVE = /^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$/;
const KNOWN_DIRECTIVES = new Set(['syntax', 'escape', 'check']);
const HEREDOC_INSTRUCTIONS = new Set(['RUN', 'COPY', 'ADD']);
// `<<EOF`, `<<-EOF`, `<<"EOF"`, `<<'EOF'` (a heredoc word of letters, digits, _ . -).
const HEREDOC = /<<(-?)(["']?)([A-Za-z_][A-Za-z0-9_.-]*)\2/g;

interface Segment {
  /** Offset in the joined text where this physical line's part starts. */
  offset: number;
  line: number;
  /** 1-based column of the part's first character in its line. */
  column: number;
}

/**
 * Parses Dockerfile text.
 * @param file the name errors use (`Dockerfile`)
 * @throws DockerfileSyntaxError naming file, line and column
 */
export function parseDockerfile(text: string, file = 'Dockerfile'): ParsedDockerfile {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  const directives: Record<string, string> = {};
  let i = 0;
  // Directives: only in leading comment lines; the first blank line, other comment or
  // instruction ends them. A directive seen twice is an error, as in BuildKit.
  for (; i < lines.length; i++) {
    const m = DIRECTIVE.exec(lines[i]!.trim());
    if (!m || !lines[i]!.trim().startsWith('#')) break;
    const name = m[1]!.toLowerCase();
    if (!KNOWN_DIRECTIVES.has(name)) break;
    if (directives[name] !== undefined) throw new DockerfileSyntaxError({ file, line: i + 1, column: 1 }, `only one ${name} parser directive can be used`);
    directives[name] = m[2]!;
  }
  const escape = directives.escape ?? '\\';
  if (escape !== '\\' && escape !== '`') throw new DockerfileSyntaxError({ file, line: 1, column: 1 }, `invalid escape token '${escape}' does not match ` + '[\\\\`]');
  const out: ParsedDockerfile = { file, escape, directives, instructions: [] };
  if (directives.syntax !== undefined) out.syntax = directives.syntax;

  const continuation = new RegExp(`${escape === '\\' ? '\\\\' : '`'}[ \\t]*$`);
  while (i < lines.length) {
    const first = lines[i]!;
    const trimmed = first.trim();
    if (trimmed === '' || trimmed.startsWith('#')) {
      i++;
      continue;
    }
    const segments: Segment[] = [];
    let joined = '';
    let line = first;
    let lineNo = i;
    for (;;) {
      const lead = segments.length === 0 ? line.length - line.trimStart().length : 0;
      let part = line.slice(lead);
      const cont = continuation.exec(part);
      if (cont) part = part.slice(0, cont.index);
      segments.push({ offset: joined.length, line: lineNo + 1, column: lead + 1 });
      joined += part;
      i = lineNo + 1;
      if (!cont) break;
      // Comment and empty lines inside a continued instruction are skipped (BuildKit).
      let next = i;
      while (next < lines.length && (lines[next]!.trim() === '' || lines[next]!.trim().startsWith('#'))) next++;
      if (next >= lines.length) {
        i = next;
        break;
      }
      lineNo = next;
      line = lines[next]!;
    }
    const locate = (offset: number): SourceLocation => {
      let seg = segments[0]!;
      for (const s of segments) if (s.offset <= offset) seg = s;
      return { file, line: seg.line, column: seg.column + (offset - seg.offset) };
    };
    const kw = /^(\S+)/.exec(joined)!;
    const keyword = kw[1]!.toUpperCase();
    if (!/^[A-Z]+$/.test(keyword)) throw new DockerfileSyntaxError(locate(0), `unknown instruction: ${kw[1]}`);
    const restStart = joined.length - joined.slice(kw[0].length).trimStart().length;
    const rest = joined.slice(restStart).trimEnd();
    const heredocs: Heredoc[] = [];
    let endLine = i;
    if (HEREDOC_INSTRUCTIONS.has(keyword) && !rest.trimStart().startsWith('[')) {
      for (const m of rest.matchAll(HEREDOC)) {
        const chomp = m[1] === '-';
        const name = m[3]!;
        let content = '';
        let closed = false;
        while (i < lines.length) {
          const body = lines[i++]!;
          const cmp = chomp ? body.replace(/^\t+/, '') : body;
          if (cmp === name) {
            closed = true;
            break;
          }
          content += `${cmp}\n`;
        }
        if (!closed) throw new DockerfileSyntaxError(locate(restStart + m.index!), `unterminated heredoc ${name}: no line "${name}" follows`);
        heredocs.push({ name, content, quoted: m[2] !== '', chomp });
        endLine = i;
      }
    }
    out.instructions.push({
      keyword,
      rest,
      original: `${keyword} ${rest}`.trimEnd(),
      loc: locate(0),
      endLine,
      heredocs,
      locate: (offset: number) => locate(restStart + offset),
    });
  }
  return out;
}
