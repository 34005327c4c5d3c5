/**
 * Build-specific members of the berth error family (see `lib/errors.ts`). Every error about a
 * Dockerfile names the file, the line and the column, as a compiler would, so an editor or a
 * CI log points at the offending text.
 * @module
 */
import { BerthError, NotFoundError, UnsupportedError, type BerthErrorDetails } from '../errors.js';

/** Where in a Dockerfile something was: 1-based line and column. */
export interface SourceLocation {
  /** The Dockerfile's name as the user gave it (`Dockerfile`, `docker/app.Dockerfile`, `<inline>`). */
  file: string;
  line: number;
  column: number;
}

function at(loc: SourceLocation): string {
  return `${loc.file}:${loc.line}:${loc.column}`;
}

/**
 * Copies `loc` onto the error as its `file`, `line` and `column` fields. The four classes extend
 * different members of the family (a build's missing source is a NotFoundError, an unsupported
 * instruction an UnsupportedError), so they share this rather than a base class.
 */
function locate(error: SourceLocation, loc: SourceLocation): void {
  Object.assign(error, { file: loc.file, line: loc.line, column: loc.column });
}

/** The Dockerfile (or `.dockerignore`) cannot be parsed: bad syntax, an unknown instruction or flag. */
export class DockerfileSyntaxError extends BerthError {
  declare readonly file: string;
  declare readonly line: number;
  declare readonly column: number;
  constructor(loc: SourceLocation, message: string, details: BerthErrorDetails = {}) {
    super('ERR_DOCKERFILE_SYNTAX', `${at(loc)}: ${message}`, { path: loc.file, ...details });
    locate(this, loc);
  }
}

/** A COPY/ADD source, a `--from` stage or a base image named by the Dockerfile does not exist. */
export class BuildSourceNotFoundError extends NotFoundError {
  declare readonly file: string;
  declare readonly line: number;
  declare readonly column: number;
  constructor(loc: SourceLocation, message: string, details: BerthErrorDetails = {}) {
    super(`${at(loc)}: ${message}`, details);
    locate(this, loc);
  }
}

/** The Dockerfile asks for something berth does not do (ADD of a URL, `--security=insecure`). */
export class BuildUnsupportedError extends UnsupportedError {
  declare readonly file: string;
  declare readonly line: number;
  declare readonly column: number;
  constructor(loc: SourceLocation, message: string, details: BerthErrorDetails = {}) {
    super(`${at(loc)}: ${message}`, details);
    locate(this, loc);
  }
}

/** A RUN step exited non-zero (or was killed). `.output` holds the last lines it printed. */
export class BuildStepFailedError extends BerthError {
  declare readonly file: string;
  declare readonly line: number;
  declare readonly column: number;
  /** The step's exit code (128 + n when killed by signal n). */
  declare readonly exitCode: number;
  /** The last lines of the step's stdout and stderr, interleaved as they arrived. */
  declare readonly output: string[];
  constructor(loc: SourceLocation, instruction: string, exitCode: number, output: string[], details: BerthErrorDetails = {}) {
    const tail = output.length > 0 ? `\n${output.map((l) => `  ${l}`).join('\n')}` : '';
    super('ERR_BUILD_STEP_FAILED', `${at(loc)}: ${instruction} exited with code ${exitCode}${tail}`, details);
    locate(this, loc);
    this.exitCode = exitCode;
    this.output = output;
  }
}
