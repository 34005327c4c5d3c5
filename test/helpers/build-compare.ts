/**
 * Comparing built images entry by entry: the entries of each layer tar (type, mode, owner,
 * size, content hash, link target, xattrs; not mtimes) and the config fields a Dockerfile sets.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { TarReader, type TarHeader } from '../../lib/image/tar-reader.js';
import type { ImageConfig } from '../../lib/image/manifest.js';

export interface LayerEntry {
  type: string;
  mode: string;
  owner: string;
  size: number;
  sha256?: string;
  link?: string;
  xattrs?: string;
}

/** The entries of an uncompressed layer tar, by cleaned name. */
export function layerEntries(tarPath: string): Map<string, LayerEntry> {
  const out = new Map<string, LayerEntry>();
  let current: { name: string; header: TarHeader; hash: ReturnType<typeof createHash> } | undefined;
  const reader = new TarReader({
    entry(header) {
      current = { name: header.name.replace(/^\.?\//, '').replace(/\/$/, ''), header, hash: createHash('sha256') };
    },
    data(chunk) {
      current?.hash.update(chunk);
    },
    entryEnd() {
      const h = current!.header;
      const e: LayerEntry = { type: h.type, mode: (h.mode & 0o7777).toString(8), owner: `${h.uid}:${h.gid}`, size: h.size };
      if (h.type === 'file') e.sha256 = current!.hash.digest('hex');
      if (h.type === 'symlink' || h.type === 'link') e.link = h.linkname.replace(/^\.?\//, '');
      if (h.xattrs.length > 0) e.xattrs = h.xattrs.map(([k, v]) => `${k}=${v.toString('hex')}`).sort().join(',');
      if (current!.name !== '') out.set(current!.name, e);
      current = undefined;
    },
  });
  reader.write(readFileSync(tarPath));
  reader.end();
  return out;
}

/** Lines naming every difference between two entry maps. */
export function diffEntries(a: Map<string, LayerEntry>, b: Map<string, LayerEntry>, labels: [string, string]): string[] {
  const out: string[] = [];
  for (const [k, v] of a) {
    const w = b.get(k);
    if (!w) out.push(`${k}: only in ${labels[0]} ${JSON.stringify(v)}`);
    else if (JSON.stringify(v) !== JSON.stringify(w)) out.push(`${k}: ${labels[0]} ${JSON.stringify(v)} != ${labels[1]} ${JSON.stringify(w)}`);
  }
  for (const [k, w] of b) if (!a.has(k)) out.push(`${k}: only in ${labels[1]} ${JSON.stringify(w)}`);
  return out;
}

/** The config fields a Dockerfile decides, normalised (absent, null and empty alike). */
export function dockerfileConfig(c: ImageConfig): Record<string, unknown> {
  const cfg = c.config ?? {};
  const pick = (v: unknown) => (v === null || v === undefined || (typeof v === 'object' && Object.keys(v as object).length === 0) ? undefined : v);
  return {
    Env: pick(cfg.Env), Cmd: pick(cfg.Cmd), Entrypoint: pick(cfg.Entrypoint), WorkingDir: pick(cfg.WorkingDir), User: pick(cfg.User),
    ExposedPorts: pick(cfg.ExposedPorts), Volumes: pick(cfg.Volumes), Labels: pick(cfg.Labels), StopSignal: pick(cfg.StopSignal),
    Healthcheck: pick(cfg.Healthcheck), OnBuild: pick(cfg.OnBuild), Shell: pick(cfg.Shell), author: pick(c.author),
  };
}

/** History as `created_by` + empty flag, COPY/ADD content hashes (each builder's own) masked. */
export function historyShape(c: ImageConfig): string[] {
  return (c.history ?? []).map((h) => `${(h.created_by ?? '').replace(/(file|dir|multi):[0-9a-f]{64}/g, '$1:<hash>')}${h.empty_layer ? ' (empty)' : ''}`);
}
