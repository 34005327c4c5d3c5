/**
 * Builds a multi-layer OCI image from /bin/busybox with independent tools: two layers by
 * `umoci repack` (so umoci computes the whiteouts for deletions), one crafted tar added with
 * `umoci raw add-layer` (opaque dir, hard link into a lower layer, long names, xattrs,
 * type changes), plus `extraLayers` small layers to reach a realistic layer count.
 */
import { chmodSync, chownSync, closeSync, copyFileSync, linkSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fsOps } from '../../lib/image/fs-ops.js';
import { run } from './registry.js';
import { buildTar } from './tar-builder.js';

function setXattr(path: string, name: string, value: Buffer): void {
  const fs = fsOps();
  const slash = path.lastIndexOf('/');
  const root = fs.fsOpenRoot(path.slice(0, slash));
  try {
    fs.fsSetXattrAt(root, path.slice(slash + 1), name, value);
  } finally {
    closeSync(root);
  }
}

export const FIXTURE_TAG = 'fixture';

/** cap_net_raw+ep as a VFS_CAP_REVISION_2 security.capability value. */
const CAP_NET_RAW = Buffer.from('0100000200200000000000000000000000000000', 'hex');

/**
 * Creates `<work>/layout` (an OCI image layout, tag `fixture`) and returns its path.
 * @param extraLayers additional small layers (each adds and deletes a few files)
 */
export async function buildFixtureImage(work: string, { extraLayers = 0 }: { extraLayers?: number } = {}): Promise<string> {
  const layout = join(work, 'layout');
  const image = `${layout}:${FIXTURE_TAG}`;
  const bundle = join(work, 'bundle');
  await run('umoci', ['init', '--layout', layout]);
  await run('umoci', ['new', '--image', image]);
  await run('umoci', ['unpack', '--image', image, bundle]);
  const r = join(bundle, 'rootfs');
  const p = (...parts: string[]) => join(r, ...parts);

  // Layer 1: a busybox system with every kind of entry.
  for (const d of ['bin', 'etc', 'usr/bin', 'usr/lib', 'usr/share/doc/busybox', 'var/cache/apt', 'opt/dir', 'home/user', 'dev', 'run', 'tmp', 'root']) mkdirSync(p(d), { recursive: true });
  copyFileSync('/bin/busybox', p('bin/busybox'));
  chmodSync(p('bin/busybox'), 0o755);
  for (const applet of ['sh', 'ls', 'cat', 'echo', 'id', 'stat']) symlinkSync('busybox', p('bin', applet));
  writeFileSync(p('etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n');
  writeFileSync(p('etc/group'), 'root:x:0:\nuser:x:1000:\n');
  writeFileSync(p('etc/motd'), 'welcome\n');
  writeFileSync(p('usr/share/doc/busybox/README'), 'docs\n');
  writeFileSync(p('var/cache/apt/pkgcache.bin'), Buffer.alloc(5000, 7));
  writeFileSync(p('var/cache/old'), 'old\n');
  writeFileSync(p('usr/bin/passwd'), '#!/bin/sh\n');
  chmodSync(p('usr/bin/passwd'), 0o4755);
  writeFileSync(p('usr/bin/wall'), '#!/bin/sh\n');
  chownSync(p('usr/bin/wall'), 0, 5); // before chmod: chown clears setgid
  chmodSync(p('usr/bin/wall'), 0o2755);
  writeFileSync(p('usr/bin/ping'), 'ping\n');
  setXattr(p('usr/bin/ping'), 'security.capability', CAP_NET_RAW);
  writeFileSync(p('etc/xattr-file'), 'x\n');
  setXattr(p('etc/xattr-file'), 'user.berth', Buffer.from('hello'));
  writeFileSync(p('usr/lib/a'), 'shared inode\n');
  linkSync(p('usr/lib/a'), p('usr/lib/b'));
  writeFileSync(p('home/user/secret'), 'shh\n');
  chmodSync(p('home/user/secret'), 0o600);
  chownSync(p('home/user/secret'), 1000, 1000);
  chownSync(p('home/user'), 1000, 1000);
  chmodSync(p('tmp'), 0o1777);
  symlinkSync('/usr/share/zoneinfo/UTC', p('etc/localtime'));
  symlinkSync('../lib/a', p('usr/bin/rel-link'));
  writeFileSync(p('opt/thing'), 'file that becomes a dir\n');
  writeFileSync(p('opt/dir/inside'), 'dir that becomes a file\n');
  await run('mknod', ['-m', '0666', p('dev/null'), 'c', '1', '3']);
  await run('mknod', ['-m', '0660', p('dev/loop7'), 'b', '7', '7']);
  await run('mkfifo', ['-m', '0620', p('run/fifo')]);
  await run('umoci', ['repack', '--image', image, bundle]);
  // repack diffs against the bundle's unpack-time state: start layer 2 from a fresh unpack.
  rmSync(bundle, { recursive: true, force: true });
  await run('umoci', ['unpack', '--image', image, bundle]);

  // Layer 2: deletions (umoci writes the whiteouts), additions, metadata and type changes.
  rmSync(p('etc/motd'));
  rmSync(p('usr/share/doc'), { recursive: true });
  writeFileSync(p('etc/hostname'), 'berth\n');
  chmodSync(p('home/user'), 0o700);
  rmSync(p('opt/thing'));
  mkdirSync(p('opt/thing'));
  writeFileSync(p('opt/thing/now-a-dir'), 'yes\n');
  rmSync(p('opt/dir'), { recursive: true });
  writeFileSync(p('opt/dir'), 'now a file\n');
  await run('umoci', ['repack', '--image', image, bundle]);

  // Layer 3: crafted by hand, for what umoci would never write itself.
  const tar = buildTar([
    { name: 'var/', type: 'dir', mode: 0o755, mtime: 1700000000 },
    { name: 'var/cache/', type: 'dir', mode: 0o755, mtime: 1700000000 },
    { name: 'var/cache/.wh..wh..opq', content: '' },
    { name: 'var/cache/fresh', content: 'fresh\n', mtime: 1700000000 },
    { name: 'usr/', type: 'dir', mode: 0o755, mtime: 1700000000 },
    { name: 'usr/lib/', type: 'dir', mode: 0o755, mtime: 1700000000 },
    { name: 'usr/lib/c', type: 'link', linkname: 'usr/lib/a' },
    { name: 'etc/', type: 'dir', mode: 0o755, mtime: 1700000000 },
    { name: 'etc/.wh.hostname', content: '' },
    { name: `etc/${'long-name-'.repeat(15)}pax`, content: 'pax long name\n', mtime: 1700000000 },
    { name: `etc/${'gnu-name-'.repeat(15)}gnu`, content: 'gnu long name\n', gnuLongName: true, mtime: 1700000000 },
    { name: 'etc/layer3-xattr', content: 'x', mtime: 1700000000, pax: { 'SCHILY.xattr.user.layer': 'three' } },
    { name: 'srv/', type: 'dir', mode: 0o3775, uid: 33, gid: 33, mtime: 1700000000 },
    { name: 'srv/owned', content: 'www', uid: 33, gid: 33, mode: 0o640, mtime: 1700000000 },
  ]);
  const tarPath = join(work, 'layer3.tar');
  writeFileSync(tarPath, tar);
  await run('umoci', ['raw', 'add-layer', '--image', image, tarPath]);

  for (let i = 0; i < extraLayers; i++) {
    const entries = [
      { name: `data/`, type: 'dir' as const, mode: 0o755, mtime: 1700000000 },
      { name: `data/layer-${i}`, content: Buffer.alloc(20_000 + i * 1000, i), mtime: 1700000000 },
      ...(i > 0 ? [{ name: `data/.wh.layer-${i - 1}`, content: '' }] : []),
    ];
    const path = join(work, `extra-${i}.tar`);
    writeFileSync(path, buildTar(entries));
    await run('umoci', ['raw', 'add-layer', '--image', image, path]);
  }
  await run('umoci', ['config', '--image', image, '--config.cmd', 'sh', '--config.env', 'PATH=/bin:/usr/bin', '--config.workingdir', '/root', '--config.label', 'org.berth.test=1']);
  rmSync(bundle, { recursive: true, force: true });
  return layout;
}
