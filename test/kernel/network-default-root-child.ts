/**
 * Child of network-roots.test.ts, run in a mount and network namespace of its own (/var/lib an
 * empty tmpfs, loopback up): the top-level `run()` uses the default runtime (/var/lib/berth)
 * only when asked — by a network name, or by `ports`, which mean the default `bridge`.
 * Prints one JSON line of facts.
 * Usage: network-default-root-child.ts <rootfs>
 */
import { existsSync } from 'node:fs';
import { run } from '../../lib/index.js';
import { defaultRuntime } from '../../lib/runtime.js';

const [rootfs] = process.argv.slice(2) as [string];
const image = { rootfs };
const facts: Record<string, unknown> = {};
const eth0 = "ip -4 -o addr show eth0 2>/dev/null | awk '{print $4}'";

facts.plain = (await run(image, ['sh', '-c', `${eth0}; echo done`])).stdout;
facts.defaultRootAfterPlain = existsSync('/var/lib/berth');
const published = await run(image, ['sh', '-c', eth0], { ports: ['80'] });
facts.published = { exitCode: published.exitCode, eth0: published.stdout.trim(), stderr: published.stderr };
facts.defaultRootAfterPorts = existsSync('/var/lib/berth');
const rt = await defaultRuntime();
facts.defaultNetworks = (await rt.networks.list()).map((n) => n.name);
for (const n of await rt.networks.list()) await n.remove();
await rt.close();
process.stdout.write(`${JSON.stringify(facts)}\n`);
