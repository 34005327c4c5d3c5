// A first sandbox, offline: the host's own /usr and /bin, read-only, in fresh namespaces.
import { run } from 'berth';

const result = await run({ host: true }, ['sh', '-c', 'echo "hello from $(hostname), pid $$"; id; ls /']);
console.log(result.stdout.trimEnd());
console.log(`exit ${result.exitCode} in ${result.durationMs.toFixed(1)} ms`);
