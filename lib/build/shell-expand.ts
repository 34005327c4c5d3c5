/**
 * Variable expansion in Dockerfile words, with the rules of BuildKit's shell lexer: `$VAR`,
 * `${VAR}`, `${VAR:-word}`, `${VAR-word}`, `${VAR:+word}`, `${VAR+word}`, `${VAR:?msg}`,
 * `${VAR?msg}`; single quotes are literal, double quotes expand; the escape character (`\` or
 * the `# escape=` one) makes the next character literal. Quotes and escapes are removed from
 * the result, as a shell would. Applied only where Docker expands (see `docs/design/build.md`):
 * never inside a shell-form RUN/CMD/ENTRYPOINT, which the container's shell expands itself.
 * @module
 */

/** Looks a variable up: its value, or undefined when it is not set. */
export type VariableLookup = (name: string) => string | undefined;

/** An expansion failed: an unterminated quote or brace, `${VAR?msg}` of an unset variable. */
export class ExpansionError extends Error {
  /** 0-based offset in the word where the problem was found. */
  readonly offset: number;
  constructor(message: string, offset: number) {
    super(message);
    this.offset = offset;
  }
}

export interface ExpandOptions {
  /** The escape character: `\` (default) or `` ` ``. */
  escape?: string;
  /**
   * Heredoc content: only `$` expands; quotes and escapes stay as written (BuildKit expands an
   * unquoted heredoc's body this way, as a shell expands a here-document).
   */
  raw?: boolean;
}

const NAME_CHAR = /[A-Za-z0-9_]/;

class Lexer {
  private pos = 0;
  constructor(
    private readonly src: string,
    private readonly lookup: VariableLookup,
    private readonly escape: string,
    private readonly raw: boolean,
  ) {}

  run(): string {
    return this.until(undefined);
  }

  private until(stop: string | undefined): string {
    let out = '';
    while (this.pos < this.src.length) {
      const ch = this.src[this.pos]!;
      if (stop !== undefined && ch === stop) {
        this.pos++;
        return out;
      }
      if (ch === '$') out += this.dollar();
      else if (!this.raw && ch === "'") out += this.single();
      else if (!this.raw && ch === '"') out += this.double();
      else if (ch === this.escape) {
        this.pos++;
        if (this.raw) {
          // A here-document keeps its escapes, except that `\$` stops an expansion.
          const next = this.src[this.pos];
          if (next === '$') {
            out += '$';
            this.pos++;
          } else out += ch;
          continue;
        }
        if (this.pos >= this.src.length) break; // a trailing escape vanishes, as in BuildKit
        out += this.src[this.pos++];
      } else {
        out += ch;
        this.pos++;
      }
    }
    if (stop !== undefined) throw new ExpansionError(`missing '${stop}'`, this.pos);
    return out;
  }

  private single(): string {
    const start = this.pos++;
    const end = this.src.indexOf("'", this.pos);
    if (end < 0) throw new ExpansionError('unexpected end of statement while looking for matching single-quote', start);
    const text = this.src.slice(this.pos, end);
    this.pos = end + 1;
    return text;
  }

  private double(): string {
    const start = this.pos++;
    let out = '';
    while (this.pos < this.src.length) {
      const ch = this.src[this.pos]!;
      if (ch === '"') {
        this.pos++;
        return out;
      }
      if (ch === '$') {
        out += this.dollar();
        continue;
      }
      if (ch === this.escape) {
        const next = this.src[this.pos + 1];
        // Inside double quotes the escape only protects a quote, a dollar or itself.
        if (next === '"' || next === '$' || next === this.escape) {
          out += next;
          this.pos += 2;
          continue;
        }
      }
      out += ch;
      this.pos++;
    }
    throw new ExpansionError('unexpected end of statement while looking for matching double-quote', start);
  }

  private name(): string {
    let name = '';
    while (this.pos < this.src.length && NAME_CHAR.test(this.src[this.pos]!)) name += this.src[this.pos++];
    return name;
  }

  private dollar(): string {
    const start = this.pos++;
    if (this.src[this.pos] !== '{') {
      const name = this.name();
      return name === '' ? '$' : this.lookup(name) ?? '';
    }
    this.pos++;
    const name = this.name();
    if (name === '') throw new ExpansionError('bad substitution: a name must follow "${"', start);
    const op = this.src[this.pos];
    if (op === undefined) throw new ExpansionError("missing '}'", start);
    if (op === '}') {
      this.pos++;
      return this.lookup(name) ?? '';
    }
    let colon = false;
    let kind = op;
    if (op === ':') {
      colon = true;
      kind = this.src[this.pos + 1];
      this.pos++;
    }
    if (kind !== '-' && kind !== '+' && kind !== '?') {
      throw new ExpansionError(`unsupported modifier (${colon ? ':' : ''}${kind ?? 'end of word'}) in substitution of ${name}`, this.pos);
    }
    this.pos++;
    const word = this.until('}');
    const value = this.lookup(name);
    // With a colon, an empty value counts as unset (POSIX).
    const set = colon ? value !== undefined && value !== '' : value !== undefined;
    if (kind === '-') return set ? value! : word;
    if (kind === '+') return set ? word : '';
    if (!set) throw new ExpansionError(`${name}: ${word === '' ? 'is not allowed to be unset' : word}`, start);
    return value!;
  }
}

/**
 * Expands one word (an ENV value, a COPY path, a WORKDIR…): variables replaced, quotes and
 * escapes removed.
 * @throws ExpansionError (the caller turns it into a located `DockerfileSyntaxError`)
 */
export function expandWord(word: string, lookup: VariableLookup, options: ExpandOptions = {}): string {
  return new Lexer(word, lookup, options.escape ?? '\\', options.raw ?? false).run();
}

/**
 * Splits `text` on unquoted whitespace, keeping quotes and escapes in the words (they are
 * removed later by {@link expandWord}): BuildKit's `parseWords`, used for ENV, LABEL, ARG and
 * the whitespace-separated forms of COPY, EXPOSE and VOLUME.
 */
export function splitWords(text: string, escape = '\\'): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quote === undefined && /\s/.test(ch)) {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
      continue;
    }
    inWord = true;
    if (ch === escape && i + 1 < text.length && quote !== "'") {
      cur += ch + text[++i];
      continue;
    }
    if (quote === undefined && (ch === '"' || ch === "'")) quote = ch;
    else if (ch === quote) quote = undefined;
    cur += ch;
  }
  if (inWord) words.push(cur);
  return words;
}
