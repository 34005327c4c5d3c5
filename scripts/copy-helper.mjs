// prebuildify copies only the .node file; berth also ships its static helper executables
// (berth-helper: init and the detached monitor; berth-exec: every exec into a container),
// which must sit beside the addon (lib/native.ts looks for them there) with their run bit.
import { chmodSync, copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const targetDir = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
for (const name of ['berth-helper', 'berth-exec']) {
  const source = join(root, 'build', 'Release', name);
  if (!existsSync(source)) {
    console.error(`copy-helper: ${source} is missing; run \`npm run build:native\` first`);
    process.exit(1);
  }
  mkdirSync(targetDir, { recursive: true });
  const target = join(targetDir, name);
  copyFileSync(source, target);
  chmodSync(target, 0o755);
  console.log(`copy-helper: ${target}`);
}
