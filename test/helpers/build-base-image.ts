/**
 * A plain one-layer busybox image for build tests (umoci-made): what Docker's legacy builder,
 * buildah and berth can all start FROM. Users `user` (1000) and `app` (1001), a few system
 * directories, PATH and CMD set. The multi-layer `fixture-image.ts` exercises unpackers with
 * entries dockerd's own unpacker refuses, so it cannot be a shared base.
 */
import { chmodSync, copyFileSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from './registry.js';

export const BASE_TAG = 'base';

/** Creates `<work>/base-layout` (OCI layout, tag `base`) and returns its path. */
export async function buildBaseImage(work: string): Promise<string> {
  const layout = join(work, 'base-layout');
  const image = `${layout}:${BASE_TAG}`;
  const bundle = join(work, 'base-bundle');
  await run('umoci', ['init', '--layout', layout]);
  await run('umoci', ['new', '--image', image]);
  await run('umoci', ['unpack', '--image', image, bundle]);
  const p = (...parts: string[]) => join(bundle, 'rootfs', ...parts);
  for (const d of ['bin', 'etc', 'home/user', 'opt/old', 'var/cache/apt', 'tmp', 'root', 'usr/bin']) mkdirSync(p(d), { recursive: true });
  chmodSync(p('tmp'), 0o1777);
  copyFileSync('/bin/busybox', p('bin/busybox'));
  chmodSync(p('bin/busybox'), 0o755);
  for (const applet of ['sh', 'ls', 'cat', 'echo', 'id', 'ln', 'rm', 'mkdir', 'touch', 'chown', 'chmod', 'true', 'false', 'sleep', 'cp', 'tar', 'sha256sum', 'head', 'seq', 'xargs', 'stat']) symlinkSync('busybox', p('bin', applet));
  writeFileSync(p('etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\napp:x:1001:1002::/nonexistent:/bin/false\n');
  writeFileSync(p('etc/group'), 'root:x:0:\nuser:x:1000:\nappgrp:x:1002:\n');
  writeFileSync(p('opt/old/file'), 'old\n');
  writeFileSync(p('var/cache/apt/pkg'), 'cached\n');
  await run('umoci', ['repack', '--image', image, bundle]);
  await run('umoci', ['config', '--image', image, '--config.cmd', 'sh', '--config.env', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);
  return layout;
}
