/**
 * Image references parsed and normalised exactly as Docker does (`busybox` means
 * `docker.io/library/busybox:latest`), so that a Docker user's strings mean the same here.
 * @module
 */
import { InvalidReferenceError } from './errors.js';

/** The registry Docker Hub references are normalised to. */
export const DOCKER_HUB_DOMAIN = 'docker.io';
/** Where Docker Hub's registry API actually lives. */
export const DOCKER_HUB_REGISTRY = 'registry-1.docker.io';
/** The tag implied when a reference names neither a tag nor a digest. */
export const DEFAULT_TAG = 'latest';

const NAME_TOTAL_MAX = 255;

// The grammar of distribution/reference, written out part by part so an error can say which
// part is wrong.
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_NAME_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const IPV6_HOST = /^\[[a-fA-F0-9:]+\]$/;
const PORT = /^[0-9]+$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;
const SHA256_HEX = /^[a-f0-9]{64}$/;
const ANCHORED_ID = /^[a-f0-9]{64}$/;

/** A parsed, normalised image reference. Immutable. */
export interface ImageReference {
  /** Registry host (with port), normalised: `docker.io`, `127.0.0.1:5000`. */
  readonly domain: string;
  /** Repository path inside the registry: `library/busybox`. */
  readonly path: string;
  /** `domain/path`: `docker.io/library/busybox`. */
  readonly name: string;
  /** The tag, `latest` when neither tag nor digest was given; absent for digest-only refs. */
  readonly tag?: string;
  /** `sha256:<hex>` when pinned by digest. */
  readonly digest?: string;
}

/** Whether a domain refers to this machine, where plain http is allowed without `insecure`. */
export function isLoopbackDomain(domain: string): boolean {
  const host = hostOf(domain);
  return host === 'localhost' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) || host === '[::1]' || host === '::1';
}

/** The host part of a `host[:port]` domain (IPv6 keeps its brackets). */
export function hostOf(domain: string): string {
  if (domain.startsWith('[')) return domain.slice(0, domain.indexOf(']') + 1);
  const colon = domain.lastIndexOf(':');
  return colon === -1 ? domain : domain.slice(0, colon);
}

function validateDomain(ref: string, domain: string, option: string): void {
  let host = domain;
  const portAt = domain.startsWith('[') ? domain.indexOf(']:') + 1 : domain.lastIndexOf(':');
  if (portAt > 0) {
    const port = domain.slice(portAt + 1);
    if (!PORT.test(port)) throw new InvalidReferenceError(ref, 'domain', `port ${JSON.stringify(port)} is not a number`, option);
    host = domain.slice(0, portAt);
  }
  if (host.startsWith('[')) {
    if (!IPV6_HOST.test(host)) throw new InvalidReferenceError(ref, 'domain', `${JSON.stringify(host)} is not a valid IPv6 address`, option);
    return;
  }
  for (const component of host.split('.')) {
    if (!DOMAIN_NAME_COMPONENT.test(component)) {
      throw new InvalidReferenceError(ref, 'domain', `${JSON.stringify(host)} is not a valid host name`, option);
    }
  }
}

/** Whether the first path component of a name is a registry host (Docker's rule). */
function looksLikeDomain(component: string): boolean {
  return component.includes('.') || component.includes(':') || component === 'localhost' || component !== component.toLowerCase();
}

/**
 * Parse and normalise an image reference as `docker pull` does.
 *
 * @param ref e.g. `busybox`, `127.0.0.1:5000/ns/app:1`, `app@sha256:…`, `app:1@sha256:…`
 * @param option the option name to report in errors
 * @throws InvalidReferenceError naming the wrong part
 */
export function parseReference(ref: string, option = 'ref'): ImageReference {
  if (typeof ref !== 'string' || ref.length === 0) throw new InvalidReferenceError(String(ref), 'reference', 'reference is empty', option);
  if (ANCHORED_ID.test(ref)) {
    throw new InvalidReferenceError(ref, 'reference', 'a 64-character hexadecimal string is an image id, not a repository name', option);
  }
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    validateDigest(ref, digest, option);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const tagColon = rest.indexOf(':', lastSlash + 1);
  if (tagColon !== -1) {
    tag = rest.slice(tagColon + 1);
    rest = rest.slice(0, tagColon);
    if (!TAG.test(tag)) {
      throw new InvalidReferenceError(ref, 'tag', `${JSON.stringify(tag)} must be 1-128 characters of [A-Za-z0-9_.-], not starting with . or -`, option);
    }
  }
  if (rest.length === 0) throw new InvalidReferenceError(ref, 'path', 'repository name is empty', option);

  let domain: string;
  let path: string;
  const firstSlash = rest.indexOf('/');
  if (firstSlash !== -1 && looksLikeDomain(rest.slice(0, firstSlash))) {
    domain = rest.slice(0, firstSlash);
    path = rest.slice(firstSlash + 1);
    validateDomain(ref, domain, option);
  } else {
    domain = DOCKER_HUB_DOMAIN;
    path = rest;
  }
  if (domain === 'index.docker.io') domain = DOCKER_HUB_DOMAIN;
  if (path !== path.toLowerCase()) {
    throw new InvalidReferenceError(ref, 'path', `repository name ${JSON.stringify(path)} must be lowercase`, option);
  }
  if (domain === DOCKER_HUB_DOMAIN && !path.includes('/')) path = `library/${path}`;
  for (const component of path.split('/')) {
    if (!PATH_COMPONENT.test(component)) {
      throw new InvalidReferenceError(
        ref,
        'path',
        component === ''
          ? 'repository name has an empty path component'
          : `path component ${JSON.stringify(component)} must be lowercase letters and digits, separated by ".", "_", "__" or dashes`,
        option,
      );
    }
  }
  const name = `${domain}/${path}`;
  if (name.length > NAME_TOTAL_MAX) {
    throw new InvalidReferenceError(ref, 'path', `repository name is ${name.length} characters, more than ${NAME_TOTAL_MAX}`, option);
  }
  if (tag === undefined && digest === undefined) tag = DEFAULT_TAG;
  const result: { domain: string; path: string; name: string; tag?: string; digest?: string } = { domain, path, name };
  if (tag !== undefined) result.tag = tag;
  if (digest !== undefined) result.digest = digest;
  return Object.freeze(result);
}

function validateDigest(ref: string, digest: string, option: string): void {
  if (!DIGEST.test(digest)) throw new InvalidReferenceError(ref, 'digest', `${JSON.stringify(digest)} is not of the form algorithm:hex`, option);
  const [algorithm, hex] = digest.split(':') as [string, string];
  if (algorithm !== 'sha256') throw new InvalidReferenceError(ref, 'digest', `algorithm ${JSON.stringify(algorithm)} is not supported (only sha256)`, option);
  if (!SHA256_HEX.test(hex)) throw new InvalidReferenceError(ref, 'digest', 'a sha256 digest must be 64 lowercase hexadecimal characters', option);
}

/** Whether `s` is a well-formed `sha256:<64 lowercase hex>` digest. */
export function isSha256Digest(s: unknown): boolean {
  return typeof s === 'string' && s.startsWith('sha256:') && SHA256_HEX.test(s.slice(7));
}

/** The canonical string: `docker.io/library/busybox:latest`, `host/app@sha256:…`, `host/app:1@sha256:…`. */
export function formatReference(ref: ImageReference): string {
  return `${ref.name}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest !== undefined ? `@${ref.digest}` : ''}`;
}

/** The shortest form Docker would print: `busybox:latest`, `user/app:1`, `127.0.0.1:5000/app:1`. */
export function familiarName(ref: ImageReference): string {
  let name = ref.name;
  if (ref.domain === DOCKER_HUB_DOMAIN) {
    name = ref.path.startsWith('library/') && ref.path.split('/').length === 2 ? ref.path.slice('library/'.length) : ref.path;
  }
  return `${name}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest !== undefined ? `@${ref.digest}` : ''}`;
}

/** The same repository with a different tag and no digest. */
export function withTag(ref: ImageReference, tag: string): ImageReference {
  return parseReference(`${ref.name}:${tag}`);
}

/** The same repository pinned to a digest, without tag. */
export function withDigest(ref: ImageReference, digest: string): ImageReference {
  return parseReference(`${ref.name}@${digest}`);
}

/** The registry host to contact for a domain (`docker.io` is served by `registry-1.docker.io`). */
export function registryHost(domain: string): string {
  return domain === DOCKER_HUB_DOMAIN ? DOCKER_HUB_REGISTRY : domain;
}
