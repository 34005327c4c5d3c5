/**
 * `berth info` as its own process against the real runtime: `docker info`'s label lines,
 * the same facts as `--json` (parsed back), warnings with their fixes on stderr, exit 0 —
 * on a healthy state directory and on one that sits on a real overlay mount.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { RuntimeInfo } from '../../lib/index.js';
import { kernelSkipReason } from '../helpers/busybox-rootfs.js';
import { berth } from '../helpers/cli.js';

const skip = kernelSkipReason();
const root = mkdtempSync(join(tmpdir(), 'berth-cli-info-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** The value printed after `label: ` at `indent` spaces, as docker info lays it out. */
function valueOf(text: string, label: string, indent = 0): string | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${' '.repeat(indent)}${label}: `) && l[indent] !== ' ');
  return line?.slice(indent + label.length + 2);
}

describe('berth info', { skip }, () => {
  it('prints the facts --json returns, as docker info labels them', async () => {
    const json = await berth(root, ['--json', 'info']);
    assert.equal(json.code, 0, json.stderr);
    const doc = JSON.parse(json.stdout) as RuntimeInfo;
    assert.equal(doc.RootDir, root);
    assert.equal(typeof doc.Images, 'number');

    const text = await berth(root, ['info']);
    assert.equal(text.code, 0, text.stderr);
    assert.equal(valueOf(text.stdout, 'Containers'), String(doc.Containers));
    assert.equal(valueOf(text.stdout, 'Running', 1), String(doc.ContainersRunning));
    assert.equal(valueOf(text.stdout, 'Images'), String(doc.Images));
    assert.equal(valueOf(text.stdout, 'Server Version'), `${doc.ServerVersion} (berth)`);
    assert.equal(valueOf(text.stdout, 'Storage Driver'), doc.Driver);
    assert.equal(valueOf(text.stdout, 'Backing Filesystem', 1), doc.Storage.backingFilesystem);
    assert.equal(valueOf(text.stdout, 'Cgroup Driver'), doc.CgroupDriver);
    assert.equal(valueOf(text.stdout, 'Cgroup Version'), `${doc.CgroupVersion} (${doc.Cgroups.mode})`);
    assert.equal(valueOf(text.stdout, 'Id Mapping'), `${doc.IdMapping.mode} (${doc.IdMapping.reason})`);
    assert.match(valueOf(text.stdout, 'overlay', 1)!, doc.KernelFeatures.overlay.available ? /^yes \(tried: / : /^no \(tried: /);
    assert.equal(valueOf(text.stdout, 'Kernel Version'), doc.KernelVersion);
    assert.equal(valueOf(text.stdout, 'Berth Root Dir'), root);
    assert.match(text.stdout, /^Total Memory: [\d.]+[KMGT]?i?B$/m);
    if (doc.SecurityOptions.includes('name=seccomp,profile=builtin')) assert.match(text.stdout, /^Security Options:\n seccomp\n  Profile: builtin\n/m);
    assert.equal(text.stderr, doc.Warnings.map((w) => `${w}\n`).join(''));
  });

  it('warns on stderr, with the fix, when the state directory is on overlayfs', async () => {
    const base = mkdtempSync(join(tmpdir(), 'berth-cli-info-ovl-'));
    for (const d of ['l', 'u', 'w', 'm']) mkdirSync(join(base, d));
    const m = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${base}/l,upperdir=${base}/u,workdir=${base}/w`, `${base}/m`], { encoding: 'utf8' });
    assert.equal(m.status, 0, m.stderr);
    try {
      const state = join(base, 'm', 'state');
      const doc = JSON.parse((await berth(state, ['--json', 'info'])).stdout) as RuntimeInfo;
      const text = await berth(state, ['info']);
      assert.equal(text.code, 0);
      assert.equal(valueOf(text.stdout, 'Backing Filesystem', 1), 'overlayfs');
      assert.equal(valueOf(text.stdout, 'Supports overlay', 1), String(doc.KernelFeatures.overlay.available));
      // Refused overlay: berth runs on the fallback (fuse-overlayfs with a working FUSE device and
      // program, else vfs), and says how to get overlay back.
      const fuse = existsSync('/dev/fuse') && existsSync('/usr/bin/fuse-overlayfs');
      if (!doc.KernelFeatures.overlay.available) assert.equal(doc.Driver, fuse ? 'fuse-overlayfs' : 'vfs');
      if (!doc.KernelFeatures.overlay.available) assert.match(text.stderr, /^WARNING: the state directory .* is on overlayfs.*\. Fix: Runtime\.open/m);
    } finally {
      spawnSync('umount', [`${base}/m`]);
      rmSync(base, { recursive: true, force: true });
    }
  });
});
