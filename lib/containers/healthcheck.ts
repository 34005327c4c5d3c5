/**
 * Healthchecks: Docker's configuration (from the image's `Healthcheck` or the `healthcheck`
 * option, field by field) and the monitor that probes on its interval and keeps the health
 * state, following moby's rules:
 *
 * - status is `starting` until the first probe succeeds (`healthy`) or `retries` probes in a
 *   row fail (`unhealthy`); a success resets the failing streak;
 * - failures during `startPeriod` do not count unless the container was healthy already;
 *   probes then run every `startInterval` instead of `interval`;
 * - a probe that exceeds `timeout` is a failure with exit code -1;
 * - the last 5 results are kept, each output cut to 4 KiB.
 *
 * The probe itself (an exec in the container) is injected, so the rules are unit-tested
 * without a kernel.
 * @module
 */
import { ValidationError } from '../errors.js';
import type { ContainerConfig } from '../image/manifest.js';
import { parseDuration } from './duration.js';

/** The `healthcheck` option. Durations: milliseconds or Go strings (`'30s'`). */
export interface HealthcheckOptions {
  /**
   * `['CMD', 'curl', '-f', 'http://localhost/']`, `['CMD-SHELL', 'curl -f http://localhost/']`,
   * a shell string (same as CMD-SHELL), or `['NONE']` to disable the image's healthcheck.
   */
  test?: string[] | string;
  /** Time between probes. Default 30 s. */
  interval?: number | string;
  /** A probe running longer fails. Default 30 s. */
  timeout?: number | string;
  /** Grace period after start during which failures do not count. Default 0. */
  startPeriod?: number | string;
  /** Time between probes during the start period. Default 5 s. */
  startInterval?: number | string;
  /** Consecutive failures that make the container unhealthy. Default 3. */
  retries?: number;
}

/** A resolved healthcheck, stored in config.json. */
export interface HealthcheckConfig {
  /** `['CMD', ...argv]` or `['CMD-SHELL', script]`. */
  test: string[];
  intervalMs: number;
  timeoutMs: number;
  startPeriodMs: number;
  startIntervalMs: number;
  retries: number;
}

export type HealthStatus = 'starting' | 'healthy' | 'unhealthy';

export interface HealthLogEntry {
  /** RFC 3339. */
  start: string;
  end: string;
  exitCode: number;
  output: string;
}

/** Docker's `State.Health`. */
export interface HealthState {
  status: HealthStatus;
  failingStreak: number;
  log: HealthLogEntry[];
}

export const HEALTH_DEFAULTS = Object.freeze({ intervalMs: 30_000, timeoutMs: 30_000, startPeriodMs: 0, startIntervalMs: 5_000, retries: 3 });
const MAX_LOG_ENTRIES = 5;
const MAX_OUTPUT = 4096;

function normalizeTest(test: unknown, option: string): string[] {
  if (typeof test === 'string') {
    if (test.trim() === '') throw new ValidationError(option, 'must not be empty');
    return ['CMD-SHELL', test];
  }
  if (!Array.isArray(test) || test.length === 0 || test.some((t) => typeof t !== 'string')) {
    throw new ValidationError(option, 'must be ["CMD", ...argv], ["CMD-SHELL", script], ["NONE"] or a shell string');
  }
  const [kind, ...rest] = test as string[];
  if (kind === 'NONE') return ['NONE'];
  if (kind === 'CMD' && rest.length > 0) return test as string[];
  if (kind === 'CMD-SHELL' && rest.length === 1) return test as string[];
  throw new ValidationError(option, `must start with "CMD" (then the argv), "CMD-SHELL" (then one script) or be ["NONE"], got ${JSON.stringify(test)}`);
}

/**
 * Merges the option over the image's healthcheck field by field (Docker's rule); `null` when
 * there is none or it is disabled with `['NONE']` / `'none'`. Image durations are nanoseconds.
 */
export function resolveHealthcheck(
  options: HealthcheckOptions | 'none' | undefined,
  image?: ContainerConfig['Healthcheck'],
): HealthcheckConfig | null {
  if (options === 'none') return null;
  if (options !== undefined && (typeof options !== 'object' || options === null)) {
    throw new ValidationError('healthcheck', 'must be an object such as { test: ["CMD", "true"], interval: "5s" } or "none"');
  }
  const fromImage = (ns: number | undefined): number | undefined => (typeof ns === 'number' && ns > 0 ? ns / 1e6 : undefined);
  const test = options?.test !== undefined ? normalizeTest(options.test, 'healthcheck.test') : image?.Test ? normalizeTest(image.Test, 'image Healthcheck.Test') : undefined;
  if (test === undefined || test[0] === 'NONE') return null;
  const pick = (key: 'interval' | 'timeout' | 'startPeriod' | 'startInterval', imageNs: number | undefined, dflt: number): number => {
    const v = options?.[key];
    if (v !== undefined) return parseDuration(v, `healthcheck.${key}`);
    return fromImage(imageNs) ?? dflt;
  };
  const cfg: HealthcheckConfig = {
    test,
    intervalMs: pick('interval', image?.Interval, HEALTH_DEFAULTS.intervalMs),
    timeoutMs: pick('timeout', image?.Timeout, HEALTH_DEFAULTS.timeoutMs),
    startPeriodMs: pick('startPeriod', image?.StartPeriod, HEALTH_DEFAULTS.startPeriodMs),
    startIntervalMs: pick('startInterval', (image as { StartInterval?: number } | undefined)?.StartInterval, HEALTH_DEFAULTS.startIntervalMs),
    retries: options?.retries ?? (image?.Retries && image.Retries > 0 ? image.Retries : HEALTH_DEFAULTS.retries),
  };
  if (cfg.intervalMs < 1) throw new ValidationError('healthcheck.interval', 'must be at least 1 ms');
  if (cfg.timeoutMs < 1) throw new ValidationError('healthcheck.timeout', 'must be at least 1 ms');
  if (cfg.startIntervalMs < 1) throw new ValidationError('healthcheck.startInterval', 'must be at least 1 ms');
  if (!Number.isInteger(cfg.retries) || cfg.retries < 1) throw new ValidationError('healthcheck.retries', 'must be a positive integer');
  return cfg;
}

/** The argv a probe runs. */
export function probeArgv(cfg: HealthcheckConfig): string[] {
  return cfg.test[0] === 'CMD-SHELL' ? ['/bin/sh', '-c', cfg.test[1]!] : cfg.test.slice(1);
}

export interface ProbeResult {
  exitCode: number;
  output: string;
}

/**
 * Runs the probe command; the monitor enforces the timeout through `signal`. `null` skips
 * this round without a result (e.g. while the container is paused).
 */
export type Probe = (argv: string[], signal: AbortSignal) => Promise<ProbeResult | null>;

export interface HealthMonitorOptions {
  probe: Probe;
  /** Called after every probe; `changed` when the status differs from before. */
  onResult: (state: HealthState, changed: boolean) => void | Promise<void>;
  /** For tests. */
  now?: () => number;
}

/** Probes a running container on its interval. One per run: `start()` after the container started, `stop()` at its exit. */
export class HealthMonitor {
  readonly config: HealthcheckConfig;
  #state: HealthState = { status: 'starting', failingStreak: 0, log: [] };
  #opts: HealthMonitorOptions;
  #startedAt = 0;
  #timer: NodeJS.Timeout | undefined;
  #running: AbortController | undefined;
  #stopped = true;

  constructor(config: HealthcheckConfig, options: HealthMonitorOptions) {
    this.config = config;
    this.#opts = options;
  }

  get state(): HealthState {
    return { ...this.#state, log: [...this.#state.log] };
  }

  #now(): number {
    return this.#opts.now?.() ?? Date.now();
  }

  #inStartPeriod(): boolean {
    return this.#now() - this.#startedAt < this.config.startPeriodMs;
  }

  start(): void {
    this.#stopped = false;
    this.#startedAt = this.#now();
    this.#state = { status: 'starting', failingStreak: 0, log: [] };
    this.#schedule();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#running?.abort(new Error('container stopped'));
  }

  #schedule(): void {
    if (this.#stopped) return;
    const delay = this.#inStartPeriod() && this.#state.status !== 'healthy' ? this.config.startIntervalMs : this.config.intervalMs;
    this.#timer = setTimeout(() => void this.probeOnce(), delay);
    // The container's own exit watch keeps the process alive while it runs.
    this.#timer.unref();
  }

  /** Runs one probe now and applies its result (the timer calls this; tests may too). */
  async probeOnce(): Promise<HealthState> {
    const start = new Date(this.#now()).toISOString();
    const ac = new AbortController();
    this.#running = ac;
    const timeout = setTimeout(() => ac.abort(new Error('timeout')), this.config.timeoutMs);
    let result: ProbeResult | null;
    try {
      result = await Promise.race([
        this.#opts.probe(probeArgv(this.config), ac.signal),
        new Promise<never>((_, reject) => ac.signal.addEventListener('abort', () => reject(ac.signal.reason), { once: true })),
      ]);
    } catch (error) {
      result = ac.signal.aborted && (ac.signal.reason as Error)?.message === 'timeout'
        ? { exitCode: -1, output: `Health check exceeded timeout (${this.config.timeoutMs}ms)` }
        : { exitCode: -1, output: `Health check failed: ${(error as Error)?.message ?? String(error)}` };
    } finally {
      clearTimeout(timeout);
      this.#running = undefined;
    }
    if (this.#stopped && ac.signal.aborted) return this.state;
    if (result === null) {
      this.#schedule();
      return this.state;
    }
    const changed = this.#apply(result, start);
    try {
      await this.#opts.onResult(this.state, changed);
    } finally {
      this.#schedule();
    }
    return this.state;
  }

  #apply(result: ProbeResult, start: string): boolean {
    const before = this.#state.status;
    const entry: HealthLogEntry = { start, end: new Date(this.#now()).toISOString(), exitCode: result.exitCode, output: result.output.slice(0, MAX_OUTPUT) };
    this.#state.log = [...this.#state.log, entry].slice(-MAX_LOG_ENTRIES);
    if (result.exitCode === 0) {
      this.#state.failingStreak = 0;
      this.#state.status = 'healthy';
    } else if (!(this.#inStartPeriod() && before !== 'healthy')) {
      this.#state.failingStreak++;
      if (this.#state.failingStreak >= this.config.retries) this.#state.status = 'unhealthy';
    }
    return this.#state.status !== before;
  }
}
