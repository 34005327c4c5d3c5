/**
 * berth: run Linux containers straight from a Node process — no daemon, no CLI.
 *
 * ```ts
 * import { run } from 'berth';
 * const r = await run({ host: true }, ['sh', '-c', 'echo hello from $(hostname)']);
 * ```
 * @packageDocumentation
 */
export { run, type OutputOf, type RunResult } from './run.js';
export { Runtime, DEFAULT_ROOT, type RuntimeOptions } from './runtime.js';
export type {
  BindMount,
  IdMapping,
  MountSpec,
  RunOptions,
  RunSource,
  TmpfsMount,
  Ulimit,
} from './container/run-options.js';
export type {
  SeccompAction,
  SeccompArg,
  SeccompOperator,
  SeccompProfile,
  SeccompRule,
} from './security/seccomp/types.js';
export {
  AbortError,
  BerthError,
  ConflictError,
  NotFoundError,
  SystemError,
  UnsupportedError,
  ValidationError,
  isBerthError,
  type BerthErrorDetails,
} from './errors.js';
