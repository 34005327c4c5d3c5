/**
 * `ready: { healthcheck }` of a prewarmed pool: the main process is ready once a healthcheck
 * probe succeeds. The probe is the containers' (`healthcheck` option: Docker's `test`,
 * `interval`, `timeout`, `startPeriod`, `startInterval`, `retries`), run the way a container's
 * probe is: an exec beside the main process, joining the sandbox's namespaces and cgroup with
 * the sandbox's user, capabilities and seccomp (`ParkedSandbox.besideSpec`). It runs only
 * while the sandbox is prepared; a sandbox handed out has no probe running in it.
 * @module
 */
import { SystemError } from '../errors.js';
import type { ParkedSandbox, ParkedWorkload } from '../launch/parked.js';
import { probeArgv, type HealthcheckConfig } from '../containers/healthcheck.js';
import { runBeside } from './run-beside.js';

/** Bytes of a probe's output kept for an error message. */
const PROBE_OUTPUT = 4096;
/** How long after a probe's exit its output may still take to arrive (ms). */
const OUTPUT_GRACE_MS = 200;

/** Runs one probe beside the main process: its exit code (-1 when it ran past `timeoutMs`), and its output. */
async function probeOnce(parked: ParkedSandbox, cfg: HealthcheckConfig): Promise<{ exitCode: number; output: string }> {
  const ran = await runBeside(parked, probeArgv(cfg), cfg.timeoutMs, PROBE_OUTPUT);
  if ('failure' in ran) return { exitCode: ran.failure.exitCode, output: ran.failure.message };
  // A process the probe left in the background holds its pipes open: the output is what
  // arrived by shortly after the exit, not what arrives by that process's end.
  const text = await Promise.race([ran.output, new Promise<string>((resolve) => setTimeout(resolve, OUTPUT_GRACE_MS, ''))]);
  return { exitCode: ran.timedOut ? -1 : ran.status.exitCode, output: text.slice(0, PROBE_OUTPUT) };
}

/**
 * Probes until one probe exits 0 (Docker's rules for the rest: failures during `startPeriod`
 * do not count and probes then come every `startInterval`; `retries` failures in a row make it
 * unhealthy). Probes run one at a time.
 * @throws SystemError: `EIO` when it became unhealthy (with the last probe's output), `ECHILD`
 *   when the main process exited first, `ETIMEDOUT` past `timeoutMs`.
 */
export async function waitHealthy(parked: ParkedSandbox, main: ParkedWorkload, cfg: HealthcheckConfig, timeoutMs: number): Promise<void> {
  const start = performance.now();
  const deadline = start + timeoutMs;
  let exited: { exitCode: number } | undefined;
  void main.exited.then((status) => (exited = status));
  let failures = 0;
  for (;;) {
    const inStart = performance.now() - start < cfg.startPeriodMs;
    if (exited) throw new SystemError('ECHILD', `the pool's main process exited (code ${exited.exitCode}) before its healthcheck passed`);
    if (performance.now() >= deadline) throw new SystemError('ETIMEDOUT', `the pool's main process was not healthy within ${timeoutMs} ms`);
    let result: { exitCode: number; output: string };
    try {
      result = await probeOnce(parked, cfg);
    } catch (error) {
      // The main (the sandbox's PID 1) died under the probe: its namespaces went with it.
      if (exited || !parked.alive) throw new SystemError('ECHILD', `the pool's main process exited before its healthcheck passed`, { cause: error });
      throw error;
    }
    if (result.exitCode === 0) return;
    if (!inStart) failures++;
    if (failures >= cfg.retries) {
      throw new SystemError('EIO', `the pool's main process is unhealthy: ${failures} healthcheck probes failed in a row (last exit ${result.exitCode}: ${JSON.stringify(result.output.trim().slice(0, 200))})`);
    }
    const pause = inStart ? cfg.startIntervalMs : cfg.intervalMs;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, Math.min(pause, deadline - performance.now()))));
  }
}
