/**
 * Seccomp profiles in the JSON shape Docker accepts (`docker run --security-opt seccomp=file.json`),
 * so a profile written for Docker or Podman loads unchanged. See `docs/design/seccomp.md`.
 * @module
 */

/** What the kernel does when a rule (or the default) matches a syscall. */
export type SeccompAction =
  | 'SCMP_ACT_ALLOW'
  /** Fail the syscall with `errnoRet` (EPERM when absent) without running it. */
  | 'SCMP_ACT_ERRNO'
  /** Same as `SCMP_ACT_KILL_THREAD` (libseccomp's historical name). */
  | 'SCMP_ACT_KILL'
  | 'SCMP_ACT_KILL_PROCESS'
  | 'SCMP_ACT_KILL_THREAD'
  /** Deliver SIGSYS to the calling thread. */
  | 'SCMP_ACT_TRAP'
  /** Allow, and log the syscall to the audit log. */
  | 'SCMP_ACT_LOG'
  /** Notify a ptrace tracer (`errnoRet` is the message); ENOSYS when nothing traces the process. */
  | 'SCMP_ACT_TRACE';

/** Comparison applied to one syscall argument. All comparisons are unsigned and 64 bits wide. */
export type SeccompOperator =
  | 'SCMP_CMP_NE'
  | 'SCMP_CMP_LT'
  | 'SCMP_CMP_LE'
  | 'SCMP_CMP_EQ'
  | 'SCMP_CMP_GE'
  | 'SCMP_CMP_GT'
  /** `(arg & value) == valueTwo`. */
  | 'SCMP_CMP_MASKED_EQ';

/**
 * A condition on one argument. Numbers must be safe non-negative integers; use a `bigint` for
 * values above 2^53.
 */
export interface SeccompArg {
  /** Argument position, 0 to 5. */
  index: number;
  /** The operand; for `SCMP_CMP_MASKED_EQ`, the mask. */
  value: number | bigint;
  /** For `SCMP_CMP_MASKED_EQ`, the expected masked value; ignored otherwise. Default 0. */
  valueTwo?: number | bigint;
  op: SeccompOperator;
}

/** Conditions on the container (not on the syscall) that decide whether a rule applies at all. */
export interface SeccompFilter {
  /** Capability names such as `CAP_SYS_ADMIN`. */
  caps?: string[];
  /** Architecture names in Go's spelling (`amd64`, `arm64`, `x32`, ...). */
  arches?: string[];
  /** Kernel version (`"4.8"`) the host must be at least. Only meaningful in `includes`. */
  minKernel?: string;
}

/** One rule: the named syscalls get `action` when every condition in `args` holds. */
export interface SeccompRule {
  names: string[];
  /** @deprecated Docker's older single-name form; use `names`. */
  name?: string;
  action: SeccompAction;
  /** The errno for `SCMP_ACT_ERRNO` (default EPERM) or the message for `SCMP_ACT_TRACE`. */
  errnoRet?: number;
  /** Conditions, all of which must hold (AND). Express OR as several rules. */
  args?: SeccompArg[];
  /** The rule applies only if the container has all these caps, runs on one of these arches, ... */
  includes?: SeccompFilter;
  /** The rule is skipped if the container has any of these caps or runs on one of these arches. */
  excludes?: Omit<SeccompFilter, 'minKernel'>;
  /** Free text, ignored. */
  comment?: string;
}

/** An architecture and the compat ABIs Docker lets in alongside it. Accepted and ignored by berth. */
export interface SeccompArchMap {
  architecture: string;
  subArchitectures: string[] | null;
}

/**
 * A seccomp profile. Rules are tried in order and the first whose conditions hold decides;
 * syscalls no applicable rule matches get `defaultAction`.
 */
export interface SeccompProfile {
  defaultAction: SeccompAction;
  /** The errno when `defaultAction` is `SCMP_ACT_ERRNO`. Default 1 (EPERM). */
  defaultErrnoRet?: number;
  /** Accepted for compatibility and ignored: berth only runs native x86_64 syscalls. */
  architectures?: string[];
  /** Accepted for compatibility and ignored, like `architectures`. */
  archMap?: SeccompArchMap[];
  syscalls: SeccompRule[];
}
