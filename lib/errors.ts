/**
 * One error family for everything berth throws. See `docs/design/errors.md` for the rule.
 *
 * Every error carries a stable `.code`; kernel failures also carry `.errno`, `.syscall` and
 * `.path`; validation failures carry `.option` (the option path, e.g. `mounts[0].source`).
 * @module
 */

/** Brand used by {@link isBerthError} so the guard works across realms and duplicate copies. */
const BRAND = Symbol.for('berth.error');

/** Extra, structured facts an error may carry. */
export interface BerthErrorDetails {
  /** The option (dotted path) whose value was wrong, for validation errors. */
  option?: string;
  /** The syscall that failed, for kernel errors (e.g. `mount`). */
  syscall?: string;
  /** The path the failing operation was about. */
  path?: string;
  /** The positive errno value of a kernel failure. */
  errno?: number;
  /** The underlying error, if any. */
  cause?: unknown;
}

/** Base class of every error berth throws. */
export class BerthError extends Error {
  /** A stable, machine-readable code: an errno name (`EBUSY`) or a berth code (`ERR_INVALID_OPTION`). */
  readonly code: string;
  readonly option?: string;
  readonly syscall?: string;
  readonly path?: string;
  readonly errno?: number;

  constructor(code: string, message: string, details: BerthErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = new.target.name;
    this.code = code;
    if (details.option !== undefined) this.option = details.option;
    if (details.syscall !== undefined) this.syscall = details.syscall;
    if (details.path !== undefined) this.path = details.path;
    if (details.errno !== undefined) this.errno = details.errno;
    Object.defineProperty(this, BRAND, { value: true });
  }
}

/** An option or argument was invalid; nothing was started. `.option` names it. */
export class ValidationError extends BerthError {
  constructor(option: string, message: string, details: Omit<BerthErrorDetails, 'option'> = {}) {
    super('ERR_INVALID_OPTION', `${option}: ${message}`, { ...details, option });
  }
}

/** A named thing (image, container, volume, network, user, binary) does not exist. */
export class NotFoundError extends BerthError {
  constructor(message: string, details: BerthErrorDetails = {}) {
    super('ERR_NOT_FOUND', message, details);
  }
}

/** The operation conflicts with the current state (start twice, remove while running, ...). */
export class ConflictError extends BerthError {
  constructor(message: string, details: BerthErrorDetails = {}) {
    super('ERR_CONFLICT', message, details);
  }
}

/** A syscall failed. `.code` is the errno name, `.syscall` and `.path` say where. */
export class SystemError extends BerthError {
  constructor(code: string, message: string, details: BerthErrorDetails = {}) {
    super(code, message, details);
  }
}

/** The host lacks a kernel feature or a permission berth needs. The message says the fix. */
export class UnsupportedError extends BerthError {
  constructor(message: string, details: BerthErrorDetails = {}) {
    super('ERR_UNSUPPORTED', message, details);
  }
}

/** The operation was cancelled through an `AbortSignal`. */
export class AbortError extends BerthError {
  constructor(message = 'The operation was aborted', details: BerthErrorDetails = {}) {
    super('ABORT_ERR', message, details);
  }
}

/** True for any error thrown by berth, even one made by another copy of the package. */
export function isBerthError(value: unknown): value is BerthError {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
}

/**
 * True for a failed syscall: a {@link SystemError} (the native core builds them itself) with
 * its `.errno` and `.syscall`, from any copy of the package.
 */
export function isSystemError(value: unknown): value is SystemError & { errno: number; syscall: string } {
  return isBerthError(value) && typeof value.errno === 'number' && typeof value.syscall === 'string';
}
