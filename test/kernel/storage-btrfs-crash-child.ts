/**
 * A berth process that dies (SIGKILL, by its own hand) half-way through every btrfs step that
 * leaves a subvolume behind when it is cut short, for storage-btrfs.test.ts's sweep test:
 * a layer link being built (`layers/.btrfs-new-*`), a container being created
 * (`containers/.new-<id>-<pid>/upper`, made read-only as a hostile container could), a run's
 * throw-away snapshot (`tmp/run-layer-*`), the driver's trial (`.btrfs-probe-*`), and a layer
 * subvolume whose layer the same crash removed (`layers/<chainid>.btrfs` without its layer).
 *
 * usage: storage-btrfs-crash-child <state root> <a published layer subvolume>
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createSubvolume, snapshotSubvolume } from '../../lib/host/btrfs-subvolumes.js';
import { selfIdentity } from '../../lib/state/process-identity.js';

const [root, link] = process.argv.slice(2) as [string, string];
const me = selfIdentity();
await snapshotSubvolume(link, join(root, 'layers', `.btrfs-new-${me.pid}-${me.startTime}-crash`));
await snapshotSubvolume(link, join(root, 'layers', `${'f'.repeat(64)}.btrfs`), { readonly: true });
const staging = join(root, 'containers', `.new-${'e'.repeat(64)}-${me.pid}`);
mkdirSync(staging, { recursive: true });
await snapshotSubvolume(link, join(staging, 'upper'), { readonly: true });
const run = join(root, 'tmp', `run-layer-${me.pid}-${me.startTime}-crash`);
mkdirSync(run, { recursive: true });
await snapshotSubvolume(link, join(run, 'root'));
await createSubvolume(join(root, `.btrfs-probe-${me.pid}-${me.startTime}-crash`));
process.stdout.write('ready\n');
process.kill(process.pid, 'SIGKILL');
