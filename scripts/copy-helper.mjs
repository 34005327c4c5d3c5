// prebuildify copies only the .node file; berth also ships its static helper executable,
// which must sit beside the addon (lib/native.ts looks for it there) with its run bit.
import { chmodSync, copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'build', 'Release', 'berth-helper');
const targetDir = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
if (!existsSync(source)) {
  console.error(`copy-helper: ${source} is missing; run \`npm run build:native\` first`);
  process.exit(1);
}
mkdirSync(targetDir, { recursive: true });
const target = join(targetDir, 'berth-helper');
copyFileSync(source, target);
chmodSync(target, 0o755);
console.log(`copy-helper: ${target}`);
