/**
 * Image-specific members of the berth error family (see `lib/errors.ts`).
 * @module
 */
import { BerthError, ValidationError, type BerthErrorDetails } from '../errors.js';

/** The part of an image reference that was wrong. */
export type ReferencePart = 'reference' | 'domain' | 'path' | 'tag' | 'digest';

/** An image reference could not be parsed. `.part` names the offending part. */
export class InvalidReferenceError extends ValidationError {
  readonly part: ReferencePart;
  readonly reference: string;
  constructor(reference: string, part: ReferencePart, message: string, option = 'ref') {
    super(option, `invalid ${part} in image reference ${JSON.stringify(reference)}: ${message}`);
    this.part = part;
    this.reference = reference;
  }
}

/** Content from the wire did not hash to the digest that named it. */
export class DigestMismatchError extends BerthError {
  readonly expected: string;
  readonly actual: string;
  constructor(expected: string, actual: string, what: string, details: BerthErrorDetails = {}) {
    super('ERR_DIGEST_MISMATCH', `${what}: expected digest ${expected}, got ${actual}`, details);
    this.expected = expected;
    this.actual = actual;
  }
}

/** Content from the wire was longer or shorter than its descriptor declared. */
export class SizeMismatchError extends BerthError {
  readonly expected: number;
  readonly actual: number;
  constructor(expected: number, actual: number, what: string, details: BerthErrorDetails = {}) {
    super('ERR_SIZE_MISMATCH', `${what}: declared size ${expected} bytes, ${actual > expected ? 'received more than that' : `received ${actual}`}`, details);
    this.expected = expected;
    this.actual = actual;
  }
}

/** A manifest, index or config is malformed, of an unsupported media type, or of schema 1. */
export class ImageFormatError extends BerthError {
  readonly mediaType?: string;
  constructor(code: 'ERR_IMAGE_FORMAT' | 'ERR_UNSUPPORTED_MEDIA_TYPE' | 'ERR_SCHEMA1', message: string, mediaType?: string, details: BerthErrorDetails = {}) {
    super(code, message, details);
    if (mediaType !== undefined) this.mediaType = mediaType;
  }
}

/** No manifest in an index matches the requested platform. */
export class PlatformNotFoundError extends BerthError {
  constructor(message: string, details: BerthErrorDetails = {}) {
    super('ERR_PLATFORM_NOT_FOUND', message, details);
  }
}

/** A layer tar entry would write outside the layer directory, or is otherwise unsafe. */
export class UnsafeLayerEntryError extends BerthError {
  readonly layer: string;
  readonly entry: string;
  constructor(layer: string, entry: string, reason: string, details: BerthErrorDetails = {}) {
    super('ERR_UNSAFE_LAYER_ENTRY', `layer ${layer}: entry ${JSON.stringify(entry)} refused: ${reason}`, details);
    this.layer = layer;
    this.entry = entry;
  }
}

/** A layer tar stream is malformed (bad header checksum, truncated, bad PAX record). */
export class LayerFormatError extends BerthError {
  readonly layer: string;
  constructor(layer: string, message: string, details: BerthErrorDetails = {}) {
    super('ERR_LAYER_FORMAT', `layer ${layer}: ${message}`, details);
    this.layer = layer;
  }
}

/** The registry answered with an error other than 401/404. */
export class RegistryError extends BerthError {
  /** HTTP status, or 0 when the registry could not be reached. */
  readonly status: number;
  /** The `errors[].code` values of an OCI distribution error body. */
  readonly registryCodes: string[];
  constructor(code: 'ERR_REGISTRY' | 'ERR_REGISTRY_UNREACHABLE', message: string, status: number, registryCodes: string[] = [], details: BerthErrorDetails = {}) {
    super(code, message, details);
    this.status = status;
    this.registryCodes = registryCodes;
  }
}

/** The registry refused our credentials (or demanded some we do not have). */
export class UnauthorizedError extends BerthError {
  readonly registry: string;
  constructor(registry: string, message: string, details: BerthErrorDetails = {}) {
    super('ERR_UNAUTHORIZED', message, details);
    this.registry = registry;
  }
}

/**
 * A layer's uncompressed content ran past the size limit (`maxLayerSize`): a decompression
 * bomb, or simply a layer larger than this runtime accepts. Nothing of it was kept.
 */
export class LayerTooLargeError extends BerthError {
  /** The layer's digest (for a loaded archive, the archive or member it came from). */
  readonly layer: string;
  /** The limit, bytes. */
  readonly limit: number;
  constructor(layer: string, limit: number, details: BerthErrorDetails = {}) {
    super('ERR_LAYER_TOO_LARGE', `layer ${layer}: uncompressed content is larger than the limit of ${limit} bytes (maxLayerSize); refused`, details);
    this.layer = layer;
    this.limit = limit;
  }
}

/** What a {@link ContentTooLargeError} was about. */
export type CappedContent = 'manifest' | 'config';

/**
 * A manifest, index or image config is larger than berth parses (4 MiB for manifests and
 * indexes, 8 MiB for configs, as containerd caps them): by its declared size or by the bytes
 * that actually arrived.
 */
export class ContentTooLargeError extends BerthError {
  readonly kind: CappedContent;
  /** The content's digest or reference, as far as known. */
  readonly what: string;
  /** The limit, bytes. */
  readonly limit: number;
  /** The size declared (descriptor, Content-Length) or counted so far, bytes. */
  readonly size: number;
  constructor(kind: CappedContent, what: string, size: number, limit: number, details: BerthErrorDetails = {}) {
    super('ERR_CONTENT_TOO_LARGE', `${kind} ${what} is larger than the ${limit} bytes berth accepts (${size} bytes declared or received); refused`, details);
    this.kind = kind;
    this.what = what;
    this.limit = limit;
    this.size = size;
  }
}
