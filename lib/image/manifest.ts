/**
 * Image manifests, indexes and configs as they come off the wire: the four schema-2 media types
 * (Docker manifest, Docker manifest list, OCI manifest, OCI index), validated field by field
 * because every size and digest in them is hostile until checked; platform selection from an
 * index; schema 1 refused with a message that says what to do.
 * @module
 */
import { ContentTooLargeError, ImageFormatError, PlatformNotFoundError } from './errors.js';
import { isSha256Digest } from './reference.js';

export const MediaType = Object.freeze({
  DockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  DockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  DockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  OciManifest: 'application/vnd.oci.image.manifest.v1+json',
  OciIndex: 'application/vnd.oci.image.index.v1+json',
  DockerConfig: 'application/vnd.docker.container.image.v1+json',
  OciConfig: 'application/vnd.oci.image.config.v1+json',
  DockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  DockerForeignLayerGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  OciLayer: 'application/vnd.oci.image.layer.v1.tar',
  OciLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  OciLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  OciLayerNondistributable: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  OciLayerNondistributableGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  OciLayerNondistributableZstd: 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
});

/** The `Accept` header for manifest requests: every type we can read, preferred first. */
export const MANIFEST_ACCEPT = [MediaType.OciIndex, MediaType.DockerManifestList, MediaType.OciManifest, MediaType.DockerManifest].join(', ');

/** Manifests larger than this are refused before parsing (the distribution spec suggests 4 MiB). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/**
 * Image configs larger than this are refused before downloading or parsing (containerd's cap
 * too): a config is parsed whole in memory, and real ones are a few KiB.
 */
export const MAX_CONFIG_BYTES = 8 * 1024 * 1024;
const MAX_LAYERS = 1000;

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Platform;
}

export interface ImageManifest {
  kind: 'manifest';
  mediaType: typeof MediaType.DockerManifest | typeof MediaType.OciManifest;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

export interface ImageIndex {
  kind: 'index';
  mediaType: typeof MediaType.DockerManifestList | typeof MediaType.OciIndex;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

export type LayerCompression = 'gzip' | 'zstd' | 'none';

/** The runtime part of an image config, in Docker's spelling. */
export interface ContainerConfig {
  User?: string;
  ExposedPorts?: Record<string, object>;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Volumes?: Record<string, object>;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
  Healthcheck?: { Test?: string[]; Interval?: number; Timeout?: number; StartPeriod?: number; Retries?: number };
  [key: string]: unknown;
}

export interface HistoryEntry {
  created?: string;
  created_by?: string;
  author?: string;
  comment?: string;
  empty_layer?: boolean;
}

/** An image config (`application/vnd.oci.image.config.v1+json` or Docker's equivalent). */
export interface ImageConfig {
  architecture: string;
  os: string;
  variant?: string;
  created?: string;
  author?: string;
  config?: ContainerConfig;
  rootfs: { type: 'layers'; diff_ids: string[] };
  history?: HistoryEntry[];
  [key: string]: unknown;
}

function fail(message: string, mediaType?: string): never {
  throw new ImageFormatError('ERR_IMAGE_FORMAT', message, mediaType);
}

function parseJson(bytes: Buffer | string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(typeof bytes === 'string' ? bytes : bytes.toString('utf8'));
  } catch (e) {
    throw new ImageFormatError('ERR_IMAGE_FORMAT', `${what} is not valid JSON: ${(e as Error).message}`, undefined, { cause: e });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(`${what} is not a JSON object`);
  return value as Record<string, unknown>;
}

function isStringRecord(v: unknown): v is Record<string, string> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string');
}

function parseDescriptorPlatform(v: unknown, where: string): Platform {
  if (typeof v !== 'object' || v === null) fail(`${where}: platform is not an object`);
  const p = v as Record<string, unknown>;
  if (typeof p.os !== 'string' || typeof p.architecture !== 'string') fail(`${where}: platform needs string os and architecture`);
  const out: Platform = { os: p.os, architecture: p.architecture };
  if (typeof p.variant === 'string' && p.variant !== '') out.variant = p.variant;
  if (typeof p['os.version'] === 'string') out['os.version'] = p['os.version'];
  if (Array.isArray(p['os.features'])) out['os.features'] = p['os.features'].filter((x): x is string => typeof x === 'string');
  return out;
}

/** Validate one descriptor; sizes and digests are checked because they drive downloads. */
export function parseDescriptor(v: unknown, where: string): Descriptor {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(`${where} is not an object`);
  const d = v as Record<string, unknown>;
  if (typeof d.mediaType !== 'string' || d.mediaType === '') fail(`${where}.mediaType is missing`);
  if (typeof d.digest !== 'string') fail(`${where}.digest is missing`);
  if (!isSha256Digest(d.digest)) {
    if (/^[a-z0-9]+:/.test(d.digest) && !d.digest.startsWith('sha256:')) {
      throw new ImageFormatError('ERR_UNSUPPORTED_MEDIA_TYPE', `${where}.digest ${JSON.stringify(d.digest)} uses an unsupported algorithm (only sha256)`);
    }
    fail(`${where}.digest ${JSON.stringify(d.digest)} is not a sha256 digest`);
  }
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) fail(`${where}.size must be a non-negative integer`);
  const out: Descriptor = { mediaType: d.mediaType, digest: d.digest, size: d.size };
  if (Array.isArray(d.urls)) out.urls = d.urls.filter((x): x is string => typeof x === 'string');
  if (d.annotations !== undefined) {
    if (!isStringRecord(d.annotations)) fail(`${where}.annotations must map strings to strings`);
    out.annotations = d.annotations;
  }
  if (d.platform !== undefined) out.platform = parseDescriptorPlatform(d.platform, where);
  return out;
}

function rejectSchema1(mediaType: string): never {
  throw new ImageFormatError(
    'ERR_SCHEMA1',
    `image manifest schema 1 (${mediaType}) is deprecated and not supported; push the image again with a current Docker, or convert it (e.g. skopeo copy --format v2s2)`,
    mediaType,
  );
}

/**
 * Parse a manifest or index.
 * @param bytes the body exactly as received (its digest is computed by the caller)
 * @param contentType the `Content-Type` the registry sent, used when the body omits `mediaType`
 */
export function parseManifest(bytes: Buffer | string, contentType?: string): ImageManifest | ImageIndex {
  const size = typeof bytes === 'string' ? Buffer.byteLength(bytes) : bytes.length;
  if (size > MAX_MANIFEST_BYTES) throw new ContentTooLargeError('manifest', `(${contentType ?? 'unknown type'})`, size, MAX_MANIFEST_BYTES);
  const header = contentType?.split(';')[0]?.trim();
  if (header === MediaType.DockerSchema1 || header === MediaType.DockerSchema1Signed) rejectSchema1(header);
  const m = parseJson(bytes, 'manifest');
  if (m.schemaVersion === 1) rejectSchema1(typeof m.mediaType === 'string' ? m.mediaType : MediaType.DockerSchema1);
  if (m.schemaVersion !== 2) fail(`manifest schemaVersion ${JSON.stringify(m.schemaVersion)} is not 2`);
  let mediaType = typeof m.mediaType === 'string' ? m.mediaType : undefined;
  if (mediaType === undefined) {
    // OCI allows omitting mediaType; fall back to the header, then to the shape.
    if (header && header !== 'application/json' && header !== 'application/octet-stream') mediaType = header;
    else mediaType = Array.isArray(m.manifests) ? MediaType.OciIndex : MediaType.OciManifest;
  }
  switch (mediaType) {
    case MediaType.DockerManifest:
    case MediaType.OciManifest: {
      if (m.manifests !== undefined) fail(`a ${mediaType} must not have "manifests"`, mediaType);
      const config = parseDescriptor(m.config, 'manifest.config');
      if (!Array.isArray(m.layers)) fail('manifest.layers is not an array', mediaType);
      if (m.layers.length > MAX_LAYERS) fail(`manifest has ${m.layers.length} layers, more than ${MAX_LAYERS}`, mediaType);
      const layers = m.layers.map((l, i) => parseDescriptor(l, `manifest.layers[${i}]`));
      const out: ImageManifest = { kind: 'manifest', mediaType, config, layers };
      if (isStringRecord(m.annotations)) out.annotations = m.annotations;
      return out;
    }
    case MediaType.DockerManifestList:
    case MediaType.OciIndex: {
      if (!Array.isArray(m.manifests)) fail('index.manifests is not an array', mediaType);
      const manifests = m.manifests.map((d, i) => parseDescriptor(d, `index.manifests[${i}]`));
      const out: ImageIndex = { kind: 'index', mediaType, manifests };
      if (isStringRecord(m.annotations)) out.annotations = m.annotations;
      return out;
    }
    case MediaType.DockerSchema1:
    case MediaType.DockerSchema1Signed:
      return rejectSchema1(mediaType);
    default:
      throw new ImageFormatError('ERR_UNSUPPORTED_MEDIA_TYPE', `manifest media type ${JSON.stringify(mediaType)} is not supported`, mediaType);
  }
}

/** How a layer blob is compressed, from its media type. */
export function layerCompression(mediaType: string): LayerCompression {
  switch (mediaType) {
    case MediaType.DockerLayerGzip:
    case MediaType.DockerForeignLayerGzip:
    case MediaType.OciLayerGzip:
    case MediaType.OciLayerNondistributableGzip:
      return 'gzip';
    case MediaType.OciLayerZstd:
    case MediaType.OciLayerNondistributableZstd:
      return 'zstd';
    case MediaType.OciLayer:
    case MediaType.OciLayerNondistributable:
    case 'application/vnd.docker.image.rootfs.diff.tar':
      return 'none';
    default:
      throw new ImageFormatError('ERR_UNSUPPORTED_MEDIA_TYPE', `layer media type ${JSON.stringify(mediaType)} is not supported`, mediaType);
  }
}

/** Check the config descriptor's media type and parse the config JSON. */
export function parseImageConfig(bytes: Buffer | string, mediaType: string, layerCount: number): ImageConfig {
  if (mediaType !== MediaType.DockerConfig && mediaType !== MediaType.OciConfig) {
    throw new ImageFormatError('ERR_UNSUPPORTED_MEDIA_TYPE', `config media type ${JSON.stringify(mediaType)} is not an image config (is this an artifact, not an image?)`, mediaType);
  }
  const size = typeof bytes === 'string' ? Buffer.byteLength(bytes) : bytes.length;
  if (size > MAX_CONFIG_BYTES) throw new ContentTooLargeError('config', `(${mediaType})`, size, MAX_CONFIG_BYTES);
  const c = parseJson(bytes, 'image config');
  if (typeof c.os !== 'string' || typeof c.architecture !== 'string') fail('image config needs string "os" and "architecture"', mediaType);
  const rootfs = c.rootfs as Record<string, unknown> | undefined;
  if (typeof rootfs !== 'object' || rootfs === null || rootfs.type !== 'layers' || !Array.isArray(rootfs.diff_ids)) {
    fail('image config rootfs must be {"type":"layers","diff_ids":[…]}', mediaType);
  }
  rootfs.diff_ids.forEach((d, i) => {
    if (!isSha256Digest(d)) fail(`image config rootfs.diff_ids[${i}] is not a sha256 digest`, mediaType);
  });
  if (rootfs.diff_ids.length !== layerCount) {
    fail(`image config lists ${rootfs.diff_ids.length} diff ids for ${layerCount} manifest layers`, mediaType);
  }
  if (c.config !== undefined && c.config !== null && (typeof c.config !== 'object' || Array.isArray(c.config))) fail('image config "config" is not an object', mediaType);
  for (const key of ['Env', 'Cmd', 'Entrypoint'] as const) {
    const v = (c.config as Record<string, unknown> | undefined)?.[key];
    if (v !== undefined && v !== null && (!Array.isArray(v) || v.some((x) => typeof x !== 'string'))) fail(`image config config.${key} must be an array of strings`, mediaType);
  }
  if (c.history !== undefined && !Array.isArray(c.history)) fail('image config history is not an array', mediaType);
  return c as ImageConfig;
}

const ARCH_FROM_NODE: Record<string, string> = {
  x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64', loong64: 'loong64', mips64el: 'mips64le',
};

/** The platform of the running host, in OCI spelling (`linux/amd64`). */
export function hostPlatform(): Platform {
  const architecture = ARCH_FROM_NODE[process.arch] ?? process.arch;
  const p: Platform = { os: process.platform, architecture };
  if (architecture === 'arm') {
    const v = (process.config.variables as Record<string, unknown>).arm_version;
    p.variant = `v${typeof v === 'string' || typeof v === 'number' ? v : 7}`;
  }
  return p;
}

/** Parse `os/arch[/variant]`, e.g. `linux/arm64/v8`. */
export function parsePlatform(spec: string | Platform, option = 'platform'): Platform {
  if (typeof spec === 'object') return spec;
  const parts = spec.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => p === '' || !/^[a-zA-Z0-9_.-]+$/.test(p))) {
    throw new ImageFormatError('ERR_IMAGE_FORMAT', `${option}: ${JSON.stringify(spec)} is not of the form os/architecture[/variant]`);
  }
  const p: Platform = { os: parts[0]!.toLowerCase(), architecture: normaliseArch(parts[1]!.toLowerCase()) };
  if (parts[2] !== undefined) p.variant = parts[2].toLowerCase();
  return p;
}

function normaliseArch(a: string): string {
  switch (a) {
    case 'x86_64': case 'x86-64': return 'amd64';
    case 'aarch64': return 'arm64';
    case 'i386': return '386';
    default: return a;
  }
}

/** The variant an architecture implies when none is written (`arm64` means `v8`). */
function effectiveVariant(arch: string, variant: string | undefined): string {
  if (variant) return variant;
  if (arch === 'arm64') return 'v8';
  if (arch === 'arm') return 'v7';
  if (arch === 'amd64') return 'v1';
  return '';
}

export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

/**
 * Pick the manifest for `want` from an index: exact os/architecture; the variant must match
 * when the caller named one (with arm64 meaning v8), and an exact variant wins over an implied
 * one. Attestation manifests (`unknown/unknown`) are never chosen.
 */
export function selectPlatform(index: ImageIndex, want: Platform = hostPlatform()): Descriptor {
  const arch = normaliseArch(want.architecture);
  const candidates = index.manifests.filter((d) => {
    if (d.mediaType !== MediaType.DockerManifest && d.mediaType !== MediaType.OciManifest) return false;
    if (d.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest') return false;
    const p = d.platform;
    if (!p) return false;
    if (p.os !== want.os || normaliseArch(p.architecture) !== arch) return false;
    if (want.variant !== undefined && effectiveVariant(arch, p.variant) !== effectiveVariant(arch, want.variant)) return false;
    return true;
  });
  if (candidates.length === 0) {
    const available = index.manifests.filter((d) => d.platform && d.platform.os !== 'unknown').map((d) => formatPlatform(d.platform!));
    throw new PlatformNotFoundError(`no manifest for platform ${formatPlatform(want)} in the index (available: ${available.join(', ') || 'none'})`);
  }
  const wantVariant = effectiveVariant(arch, want.variant);
  return candidates.find((d) => effectiveVariant(arch, d.platform!.variant) === wantVariant) ?? candidates[0]!;
}

/** Whether a platform (e.g. an image config's) is compatible with the requested one. */
export function platformMatches(have: Platform, want: Platform): boolean {
  const arch = normaliseArch(want.architecture);
  if (have.os !== want.os || normaliseArch(have.architecture) !== arch) return false;
  return want.variant === undefined || effectiveVariant(arch, have.variant) === effectiveVariant(arch, want.variant);
}
