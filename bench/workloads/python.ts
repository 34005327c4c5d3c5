/**
 * Prewarmed interpreters (issue 18 §2): Python with heavy standard-library imports, started
 * cold by `run()` for each request, against a pool whose sandboxes start the interpreter and
 * do the imports ahead (`main` + `ready: { log }`) and answer one request each.
 */
import { existsSync } from 'node:fs';
import { loadBerth, loadRuntime, NotAvailable } from '../berth.js';
import type { BenchContext } from '../context.js';
import { alternate } from '../measure.js';
import type { WorkloadResult } from '../report.js';
import type { Subject } from '../subject.js';

const PYTHON = '/usr/bin/python3';
const IMPORTS = 'import json, decimal, asyncio, email, email.parser, http.client, sqlite3';
/** One request: a JSON object in, its sum as a Decimal string out. */
const ANSWER = 'print(str(sum(decimal.Decimal(str(v)) for v in json.loads(line)["values"])), flush=True)';
const COLD = `${IMPORTS}\nline = '{"values": [1.5, 2.25, 3]}'\n${ANSWER}`;
const RUNNER = `${IMPORTS}\nimport sys\nprint("ready", flush=True)\nline = sys.stdin.readline()\n${ANSWER}`;
const REQUEST = '{"values": [1.5, 2.25, 3]}\n';
const EXPECTED = '6.75';
const POOL_SIZE = 4;

interface Sandbox {
  stdin: NodeJS.WritableStream | null;
  stdout: AsyncIterable<Buffer> | null;
  release(): Promise<void>;
}
interface Pool {
  acquire(): Promise<Sandbox>;
  close(): Promise<void>;
}
interface PoolRuntime {
  pool?(options: object): Promise<Pool>;
  close(): Promise<void>;
}

async function firstLine(stream: AsyncIterable<Buffer> | null): Promise<string> {
  let text = '';
  for await (const chunk of stream ?? []) {
    text += chunk.toString('utf8');
    const nl = text.indexOf('\n');
    if (nl >= 0) return text.slice(0, nl);
  }
  return text;
}

function cold(): Subject {
  return {
    name: 'berth run() cold',
    describe: `\`run({ host: true }, ['python3', '-c', '${IMPORTS}; …answer one request'])\`: call to settled promise`,
    prepare: async () => {
      if (!existsSync(PYTHON)) throw new NotAvailable(`${PYTHON} is missing`);
      await loadBerth();
    },
    once: async () => {
      const api = await loadBerth();
      const t0 = process.hrtime.bigint();
      const r = await api.run({ host: true }, [PYTHON, '-c', COLD]);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (r.exitCode !== 0 || r.stdout?.trim() !== EXPECTED) throw new Error(`exit ${r.exitCode}: ${(r.stderr ?? r.stdout ?? '').trim()}`);
      return ms;
    },
  };
}

function prewarmed(): Subject {
  let rt: PoolRuntime | undefined;
  let pool: Pool | undefined;
  return {
    name: 'berth pool prewarmed',
    describe: `\`pool.acquire()\`, one request line to the running interpreter (imports done, \`ready: { log: /^ready$/ }\`), its answer line read, \`release()\`, on \`rt.pool({ source: { host: true }, size: ${POOL_SIZE}, main: ['python3', '-u', '-c', runner] })\``,
    prepare: async () => {
      if (!existsSync(PYTHON)) throw new NotAvailable(`${PYTHON} is missing`);
      const Runtime = await loadRuntime();
      rt = (await Runtime.open()) as PoolRuntime;
      if (typeof rt.pool !== 'function') throw new NotAvailable('berth has no rt.pool() yet');
      pool = await rt.pool({ source: { host: true }, size: POOL_SIZE, main: [PYTHON, '-u', '-c', RUNNER], ready: { log: /^ready$/ } });
    },
    once: async () => {
      const t0 = process.hrtime.bigint();
      const sb = await pool!.acquire();
      sb.stdin!.write(REQUEST);
      const answer = await firstLine(sb.stdout);
      await sb.release();
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (answer.trim() !== EXPECTED) throw new Error(`answered ${JSON.stringify(answer)}`);
      return ms;
    },
    dispose: async () => {
      await pool?.close();
      await rt?.close();
    },
  };
}

export async function pythonPrewarm(ctx: BenchContext): Promise<WorkloadResult> {
  const { runs, warmup } = ctx.settings;
  ctx.log(`python: ${warmup} warm-up + ${runs} runs per tool, alternating`);
  const rows = await alternate(ctx.pick([cold(), prewarmed()]), { runs, warmup, log: ctx.log });
  return {
    id: 'python',
    title: `Python with heavy imports (\`${IMPORTS.replace('import ', '')}\`): one request, cold vs prewarmed`,
    unit: 'ms',
    better: 'lower',
    rows,
    baseline: 'berth run() cold',
    notes: [
      `The host's ${PYTHON} (\`{ host: true }\`) in both rows, the same imports and the same answer (a Decimal sum of a JSON request).`,
      `The pool keeps ${POOL_SIZE} interpreters started, imports done, and refills in the background, also while the cold row runs; release() is inside the timed call.`,
    ],
  };
}
