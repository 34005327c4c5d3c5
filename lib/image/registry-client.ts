/**
 * An OCI distribution-spec client over node:http/https: ping, auth (anonymous, Basic, Bearer
 * token flow), manifests by tag or digest, blobs with redirects and Range resume, and push
 * (existence check, cross-repository mount, monolithic or chunked upload, manifest PUT).
 *
 * Plain http is used only for loopback registries or when the caller says `insecure` (and then
 * only after https failed, as Docker does); `insecure` also accepts unverified certificates.
 * @module
 */
import { createHash } from 'node:crypto';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { AbortError, NotFoundError } from '../errors.js';
import { basicAuthorization, credentialsFromDockerConfig, parseChallenges, parseTokenResponse, type AuthChallenge, type CachedToken, type RegistryAuth } from './auth.js';
import { ContentTooLargeError, DigestMismatchError, RegistryError, UnauthorizedError } from './errors.js';
import { MANIFEST_ACCEPT, MAX_MANIFEST_BYTES } from './manifest.js';
import { isLoopbackDomain, registryHost, isSha256Digest } from './reference.js';

export interface RegistryClientOptions {
  /** The reference's domain, e.g. `docker.io` or `127.0.0.1:5000`. */
  domain: string;
  /** Credentials; default: Docker's config.json `auths` entry for the domain, else anonymous. */
  auth?: RegistryAuth;
  /** Allow plain http and unverified TLS for a non-loopback registry. */
  insecure?: boolean;
  /** Path of a Docker `config.json` to read credentials from (default `~/.docker/config.json`). */
  dockerConfigPath?: string;
  /** Socket idle timeout per request, ms. Default 30000. */
  timeoutMs?: number;
  userAgent?: string;
}

export interface FetchedManifest {
  bytes: Buffer;
  /** The `Content-Type` the registry sent. */
  mediaType: string;
  /** sha256 of `bytes`. */
  digest: string;
}

interface SendOptions {
  method: string;
  /** Path below the registry root (`/v2/...`) or an absolute URL (upload locations). */
  path: string;
  headers?: Record<string, string>;
  body?: Buffer;
  /** Bearer scopes the request needs, e.g. `repository:app:pull`. */
  scopes: string[];
  signal?: AbortSignal | undefined;
}

const MAX_REDIRECTS = 5;
const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE', 'ERR_SHORT_BODY', 'UND_ERR_SOCKET']);

/** Whether an error is a transport failure worth retrying (with Range, for blobs). */
export function isNetworkError(e: unknown): boolean {
  const code = (e as { code?: string } | null)?.code;
  if (e instanceof RegistryError) return e.code === 'ERR_REGISTRY_UNREACHABLE' || e.status >= 500;
  return typeof code === 'string' && NETWORK_CODES.has(code);
}

/**
 * Reads a body, counting the bytes that really arrive (Content-Length is the sender's word,
 * and chunked responses have none). `tooLarge` makes the error when it passes `limit`.
 */
async function readBody(res: IncomingMessage, limit: number, what: string, tooLarge?: (size: number) => Error): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of res) {
    n += (chunk as Buffer).length;
    if (n > limit) {
      res.destroy();
      throw tooLarge?.(n) ?? new RegistryError('ERR_REGISTRY', `${what} is larger than ${limit} bytes`, res.statusCode ?? 0);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function drain(res: IncomingMessage): void {
  res.resume();
}

export class RegistryClient {
  readonly domain: string;
  private readonly host: string;
  private readonly auth: RegistryAuth | undefined;
  private readonly insecure: boolean;
  private readonly timeoutMs: number;
  private readonly userAgent: string;
  private base: URL | undefined;
  private pinging: Promise<void> | undefined;
  private challenge: AuthChallenge | null = null;
  private readonly tokens = new Map<string, CachedToken>();
  private readonly httpAgent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  private readonly httpsAgent: https.Agent;

  constructor(options: RegistryClientOptions) {
    this.domain = options.domain;
    this.host = registryHost(options.domain);
    this.auth = options.auth ?? credentialsFromDockerConfig(options.domain, options.dockerConfigPath);
    this.insecure = options.insecure ?? false;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.userAgent = options.userAgent ?? 'berth';
    this.httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 16, rejectUnauthorized: !this.insecure });
  }

  /** Closes idle keep-alive sockets. */
  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  /** GET /v2/: picks the scheme and learns how the registry wants us to authenticate. */
  async ping(signal?: AbortSignal): Promise<void> {
    if (this.base) return;
    this.pinging ??= this.doPing(signal).finally(() => {
      this.pinging = undefined;
    });
    return this.pinging;
  }

  private async doPing(signal?: AbortSignal): Promise<void> {
    const plainAllowed = this.insecure || isLoopbackDomain(this.domain);
    const schemes = plainAllowed ? ['https', 'http'] : ['https'];
    let lastError: unknown;
    for (const scheme of schemes) {
      const url = new URL(`${scheme}://${this.host}/v2/`);
      let res: IncomingMessage;
      try {
        res = await this.raw('GET', url, {}, undefined, signal);
      } catch (e) {
        if (e instanceof AbortError) throw e;
        lastError = e;
        continue;
      }
      drain(res);
      const status = res.statusCode ?? 0;
      if (status === 401) {
        this.setChallenge(res.headers['www-authenticate']);
      } else if (status >= 400) {
        throw new RegistryError('ERR_REGISTRY', `${url.href} answered ${status}: not an OCI registry?`, status);
      }
      this.base = new URL(`${scheme}://${this.host}`);
      return;
    }
    const code = (lastError as { code?: string })?.code;
    throw new RegistryError(
      'ERR_REGISTRY_UNREACHABLE',
      `registry ${this.domain} is unreachable: ${(lastError as Error)?.message ?? 'unknown error'}` +
        (!plainAllowed && code !== undefined && /SSL|EPROTO|CERT/.test(code) ? ' (if it serves plain http or a self-signed certificate, pass insecure: true)' : ''),
      0,
      [],
      { cause: lastError },
    );
  }

  private setChallenge(header: string | undefined): void {
    const challenges = parseChallenges(header ?? '');
    this.challenge = challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic') ?? null;
  }

  /** One HTTP exchange, no auth, no redirects. */
  private raw(method: string, url: URL, headers: Record<string, string>, body: Buffer | undefined, signal: AbortSignal | undefined): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(new AbortError(undefined, { cause: signal.reason }));
      const mod = url.protocol === 'http:' ? http : https;
      const req = mod.request(url, {
        method,
        headers: { 'user-agent': this.userAgent, ...headers, ...(body ? { 'content-length': String(body.length) } : {}) },
        agent: url.protocol === 'http:' ? this.httpAgent : this.httpsAgent,
        signal,
      });
      req.setTimeout(this.timeoutMs, () => req.destroy(Object.assign(new Error(`no data from ${url.host} for ${this.timeoutMs} ms`), { code: 'ETIMEDOUT' })));
      req.on('response', resolve);
      req.on('error', (e) => {
        if ((e as { name?: string }).name === 'AbortError' || signal?.aborted) reject(new AbortError(undefined, { cause: signal?.reason ?? e }));
        else reject(e);
      });
      req.end(body);
    });
  }

  private async authorization(scopes: string[], signal: AbortSignal | undefined): Promise<string | undefined> {
    const c = this.challenge;
    if (!c) return undefined;
    if (c.scheme === 'basic') {
      const header = this.auth ? basicAuthorization(this.auth) : undefined;
      if (!header) throw new UnauthorizedError(this.domain, `registry ${this.domain} requires a username and password (pass auth, or log in with docker login)`);
      return header;
    }
    if (c.scheme !== 'bearer') return undefined;
    if (this.auth?.registryToken) return `Bearer ${this.auth.registryToken}`;
    const key = scopes.join(' ');
    const cached = this.tokens.get(key);
    if (cached && cached.expiresAt > Date.now()) return `Bearer ${cached.token}`;
    const token = await this.fetchToken(c.params, scopes, signal);
    this.tokens.set(key, token);
    return `Bearer ${token.token}`;
  }

  private async fetchToken(params: Record<string, string>, scopes: string[], signal: AbortSignal | undefined): Promise<CachedToken> {
    if (!params.realm) throw new RegistryError('ERR_REGISTRY', `registry ${this.domain} sent a Bearer challenge without realm`, 401);
    const realm = new URL(params.realm);
    if (realm.protocol === 'http:' && !this.insecure && !isLoopbackDomain(realm.host)) {
      throw new RegistryError('ERR_REGISTRY', `token realm ${realm.href} is plain http; refusing to send credentials (pass insecure: true to allow)`, 401);
    }
    let res: IncomingMessage;
    const headers: Record<string, string> = {};
    if (this.auth?.identityToken) {
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: this.auth.identityToken, client_id: 'berth' });
      if (params.service) form.set('service', params.service);
      if (scopes.length) form.set('scope', scopes.join(' '));
      res = await this.raw('POST', realm, { 'content-type': 'application/x-www-form-urlencoded' }, Buffer.from(form.toString()), signal);
    } else {
      if (params.service) realm.searchParams.set('service', params.service);
      for (const s of scopes) realm.searchParams.append('scope', s);
      const basic = this.auth ? basicAuthorization(this.auth) : undefined;
      if (basic) headers.authorization = basic;
      res = await this.raw('GET', realm, headers, undefined, signal);
    }
    const body = (await readBody(res, 1024 * 1024, 'token response')).toString('utf8');
    const status = res.statusCode ?? 0;
    if (status === 401 || status === 403) {
      throw new UnauthorizedError(this.domain, `registry ${this.domain} rejected the credentials${this.auth ? ` for user ${JSON.stringify(this.auth.username ?? '')}` : ' (anonymous access refused)'} (token endpoint answered ${status})`);
    }
    if (status !== 200) throw new RegistryError('ERR_REGISTRY', `token endpoint ${realm.origin}${realm.pathname} answered ${status}`, status);
    try {
      return parseTokenResponse(body);
    } catch (e) {
      throw new RegistryError('ERR_REGISTRY', `token endpoint ${realm.origin}${realm.pathname}: ${(e as Error).message}`, status, [], { cause: e });
    }
  }

  /** An authenticated request that follows redirects and re-authenticates once on 401. */
  private async send(o: SendOptions): Promise<IncomingMessage> {
    await this.ping(o.signal);
    let retried = false;
    for (;;) {
      let url = o.path.startsWith('http://') || o.path.startsWith('https://') ? new URL(o.path) : new URL(o.path, this.base);
      // The origin the credentials were given for: the registry's, not the request's. An
      // absolute path (an upload Location) or a redirect may name any host; the registry
      // chooses those, and a hostile or compromised one would harvest the password.
      const origin = this.base!.origin;
      const auth = await this.authorization(o.scopes, o.signal);
      let method = o.method;
      let body = o.body;
      let res: IncomingMessage;
      for (let hops = 0; ; hops++) {
        const headers = { ...(o.headers ?? {}) };
        // Credentials go only to the registry itself, never to where it redirects (e.g. a CDN).
        if (auth && url.origin === origin) headers.authorization = auth;
        try {
          res = await this.raw(method, url, headers, body, o.signal);
        } catch (e) {
          if (e instanceof AbortError) throw e;
          throw new RegistryError('ERR_REGISTRY_UNREACHABLE', `${method} ${url.href} failed: ${(e as Error).message}`, 0, [], { cause: e });
        }
        const status = res.statusCode ?? 0;
        const location = res.headers.location;
        if ([301, 302, 303, 307, 308].includes(status) && location && method !== 'PUT' && method !== 'PATCH' && method !== 'POST') {
          drain(res);
          if (hops >= MAX_REDIRECTS) throw new RegistryError('ERR_REGISTRY', `too many redirects from ${o.path}`, status);
          const next = new URL(location, url);
          if (next.protocol === 'http:' && url.protocol === 'https:' && !this.insecure) {
            throw new RegistryError('ERR_REGISTRY', `refusing a redirect from https to plain http (${next.origin})`, status);
          }
          url = next;
          if (status === 303) {
            method = 'GET';
            body = undefined;
          }
          continue;
        }
        break;
      }
      if (res.statusCode === 401 && !retried && url.origin === origin) {
        drain(res);
        retried = true;
        const header = res.headers['www-authenticate'];
        const before = JSON.stringify(this.challenge);
        this.setChallenge(header);
        this.tokens.delete(o.scopes.join(' '));
        // Retry only when there is something new to try: a new challenge, or a token to fetch.
        if (this.challenge === null || (JSON.stringify(this.challenge) === before && this.challenge.scheme === 'basic')) {
          throw this.unauthorized(o, header);
        }
        continue;
      }
      return res;
    }
  }

  private unauthorized(o: SendOptions, header: string | undefined): UnauthorizedError {
    const who = this.auth?.username !== undefined ? `credentials for user ${JSON.stringify(this.auth.username)} were rejected` : 'authentication required';
    return new UnauthorizedError(this.domain, `registry ${this.domain}: ${who} (${o.method} ${o.path})${header ? '' : ''}`);
  }

  /** Turns a non-success response into the right typed error. */
  private async fail(res: IncomingMessage, o: SendOptions, what: string): Promise<never> {
    const status = res.statusCode ?? 0;
    let codes: string[] = [];
    let detail = '';
    try {
      const text = (await readBody(res, 64 * 1024, 'error body')).toString('utf8');
      const json = JSON.parse(text) as { errors?: Array<{ code?: string; message?: string }> };
      codes = (json.errors ?? []).map((e) => String(e.code ?? ''));
      detail = (json.errors ?? []).map((e) => `${e.code}: ${e.message ?? ''}`).join('; ');
    } catch {
      /* not JSON: the status says enough */
    }
    if (status === 404) throw new NotFoundError(`${what} not found in ${this.domain}${detail ? ` (${detail})` : ''}`);
    if (status === 401) throw this.unauthorized(o, res.headers['www-authenticate']);
    if (status === 403) throw new UnauthorizedError(this.domain, `registry ${this.domain} denied access to ${what}${detail ? ` (${detail})` : ''}`);
    throw new RegistryError('ERR_REGISTRY', `${o.method} ${what} in ${this.domain}: HTTP ${status}${detail ? ` (${detail})` : ''}`, status, codes);
  }

  private static scope(repo: string, actions: string): string {
    return `repository:${repo}:${actions}`;
  }

  /**
   * Fetches a manifest or index by tag or digest, with the Accept header for all four types.
   * The body's digest is checked against a digest reference and against `Docker-Content-Digest`.
   */
  async getManifest(repo: string, reference: string, signal?: AbortSignal): Promise<FetchedManifest> {
    const o: SendOptions = { method: 'GET', path: `/v2/${repo}/manifests/${reference}`, headers: { accept: MANIFEST_ACCEPT }, scopes: [RegistryClient.scope(repo, 'pull')], signal };
    const res = await this.send(o);
    const what = `manifest ${repo}${isSha256Digest(reference) ? '@' : ':'}${reference}`;
    if (res.statusCode !== 200) return this.fail(res, o, what);
    const tooLarge = (size: number) => new ContentTooLargeError('manifest', `${repo}${isSha256Digest(reference) ? '@' : ':'}${reference}`, size, MAX_MANIFEST_BYTES);
    const declared = Number(res.headers['content-length']);
    if (Number.isFinite(declared) && declared > MAX_MANIFEST_BYTES) {
      res.destroy();
      throw tooLarge(declared);
    }
    const bytes = await readBody(res, MAX_MANIFEST_BYTES, what, tooLarge);
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    if (isSha256Digest(reference) && digest !== reference) throw new DigestMismatchError(reference, digest, what);
    const header = res.headers['docker-content-digest'];
    if (typeof header === 'string' && isSha256Digest(header) && header !== digest) throw new DigestMismatchError(header, digest, `${what} (Docker-Content-Digest)`);
    return { bytes, mediaType: String(res.headers['content-type'] ?? ''), digest };
  }

  /** Resolves a tag to a digest with HEAD, without downloading the manifest. */
  async headManifest(repo: string, reference: string, signal?: AbortSignal): Promise<{ digest?: string; mediaType: string; size?: number }> {
    const o: SendOptions = { method: 'HEAD', path: `/v2/${repo}/manifests/${reference}`, headers: { accept: MANIFEST_ACCEPT }, scopes: [RegistryClient.scope(repo, 'pull')], signal };
    const res = await this.send(o);
    drain(res);
    if (res.statusCode !== 200) return this.fail(res, o, `manifest ${repo}:${reference}`);
    const digest = res.headers['docker-content-digest'];
    const size = Number(res.headers['content-length']);
    return { ...(typeof digest === 'string' && isSha256Digest(digest) ? { digest } : {}), mediaType: String(res.headers['content-type'] ?? ''), ...(Number.isFinite(size) ? { size } : {}) };
  }

  /**
   * Opens a blob from `offset` (with a Range request when > 0). `offset` in the result is
   * where the body really starts: 0 when the server ignored the range.
   */
  async openBlob(repo: string, digest: string, offset: number, signal?: AbortSignal): Promise<{ body: AsyncIterable<Buffer>; offset: number }> {
    const { body, offset: start } = await this.openBlobResponse(repo, digest, offset, signal);
    return { body: this.guardBody(body, `blob ${repo}@${digest}`, signal), offset: start };
  }

  /** The response body, with a connection lost mid-way reported as the registry being unreachable. */
  private async *guardBody(res: IncomingMessage, what: string, signal: AbortSignal | undefined): AsyncGenerator<Buffer> {
    try {
      for await (const chunk of res) yield chunk as Buffer;
    } catch (e) {
      if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason });
      throw new RegistryError('ERR_REGISTRY_UNREACHABLE', `${what}: connection to ${this.domain} lost: ${(e as Error).message}`, 0, [], { cause: e });
    } finally {
      res.destroy();
    }
  }

  private async openBlobResponse(repo: string, digest: string, offset: number, signal?: AbortSignal): Promise<{ body: IncomingMessage; offset: number }> {
    const o: SendOptions = { method: 'GET', path: `/v2/${repo}/blobs/${digest}`, headers: offset > 0 ? { range: `bytes=${offset}-` } : {}, scopes: [RegistryClient.scope(repo, 'pull')], signal };
    const res = await this.send(o);
    const status = res.statusCode ?? 0;
    if (status === 200) return { body: res, offset: 0 };
    if (status === 206) {
      const m = /^bytes (\d+)-/.exec(String(res.headers['content-range'] ?? ''));
      if (!m || Number(m[1]) !== offset) {
        res.destroy();
        throw new RegistryError('ERR_REGISTRY', `blob ${digest}: server answered a range starting elsewhere than ${offset}`, status);
      }
      return { body: res, offset };
    }
    if (status === 416) {
      drain(res);
      // The server has fewer bytes than the descriptor promised.
      throw Object.assign(new Error(`blob ${digest}: no bytes after offset ${offset}`), { code: 'ERR_SHORT_BODY' });
    }
    return this.fail(res, o, `blob ${repo}@${digest}`);
  }

  /** HEAD a blob: its size, or undefined when the repository does not have it. */
  async blobExists(repo: string, digest: string, signal?: AbortSignal): Promise<number | undefined> {
    const o: SendOptions = { method: 'HEAD', path: `/v2/${repo}/blobs/${digest}`, scopes: [RegistryClient.scope(repo, 'pull')], signal };
    const res = await this.send(o);
    drain(res);
    if (res.statusCode === 404) return undefined;
    if (res.statusCode !== 200) return this.fail(res, o, `blob ${repo}@${digest}`);
    const size = Number(res.headers['content-length']);
    return Number.isFinite(size) ? size : 0;
  }

  /**
   * Uploads a blob unless the repository has it: tries a cross-repository mount from
   * `mountFrom` first, then uploads in one PUT (size <= chunkSize) or in PATCH chunks.
   * @param read returns `length` bytes of the blob starting at `offset`
   */
  async pushBlob(
    repo: string,
    desc: { digest: string; size: number },
    read: (offset: number, length: number) => Promise<Buffer>,
    { mountFrom, chunkSize = 16 * 1024 * 1024, signal }: { mountFrom?: string; chunkSize?: number; signal?: AbortSignal } = {},
  ): Promise<'exists' | 'mounted' | 'uploaded'> {
    const pushScopes = [RegistryClient.scope(repo, 'pull,push'), ...(mountFrom && mountFrom !== repo ? [RegistryClient.scope(mountFrom, 'pull')] : [])];
    const headScope = { scopes: pushScopes, signal };
    if ((await this.blobExistsWithScopes(repo, desc.digest, headScope)) !== undefined) return 'exists';
    const start: SendOptions = {
      method: 'POST',
      path: mountFrom && mountFrom !== repo ? `/v2/${repo}/blobs/uploads/?mount=${encodeURIComponent(desc.digest)}&from=${encodeURIComponent(mountFrom)}` : `/v2/${repo}/blobs/uploads/`,
      headers: {},
      body: Buffer.alloc(0),
      scopes: pushScopes,
      signal,
    };
    let res = await this.send(start);
    if (res.statusCode === 201) {
      drain(res);
      return 'mounted';
    }
    if (res.statusCode !== 202) return this.fail(res, start, `blob upload to ${repo}`);
    drain(res);
    let location = this.location(res);
    const what = `blob upload ${desc.digest} to ${repo}`;
    if (desc.size <= chunkSize) {
      const url = new URL(location);
      url.searchParams.set('digest', desc.digest);
      const put: SendOptions = { method: 'PUT', path: url.href, headers: { 'content-type': 'application/octet-stream' }, body: await read(0, desc.size), scopes: pushScopes, signal };
      res = await this.send(put);
      if (res.statusCode !== 201) return this.fail(res, put, what);
      drain(res);
      return 'uploaded';
    }
    for (let offset = 0; offset < desc.size; offset += chunkSize) {
      const chunk = await read(offset, Math.min(chunkSize, desc.size - offset));
      const patch: SendOptions = {
        method: 'PATCH',
        path: location,
        headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${offset + chunk.length - 1}` },
        body: chunk,
        scopes: pushScopes,
        signal,
      };
      res = await this.send(patch);
      if (res.statusCode !== 202) return this.fail(res, patch, what);
      drain(res);
      location = this.location(res);
    }
    const url = new URL(location);
    url.searchParams.set('digest', desc.digest);
    const put: SendOptions = { method: 'PUT', path: url.href, headers: { 'content-type': 'application/octet-stream' }, body: Buffer.alloc(0), scopes: pushScopes, signal };
    res = await this.send(put);
    if (res.statusCode !== 201) return this.fail(res, put, what);
    drain(res);
    return 'uploaded';
  }

  private async blobExistsWithScopes(repo: string, digest: string, { scopes, signal }: { scopes: string[]; signal?: AbortSignal | undefined }): Promise<number | undefined> {
    const o: SendOptions = { method: 'HEAD', path: `/v2/${repo}/blobs/${digest}`, scopes, signal };
    const res = await this.send(o);
    drain(res);
    if (res.statusCode === 404) return undefined;
    if (res.statusCode !== 200) return this.fail(res, o, `blob ${repo}@${digest}`);
    return Number(res.headers['content-length'] ?? 0);
  }

  private location(res: IncomingMessage): string {
    const loc = res.headers.location;
    if (!loc) throw new RegistryError('ERR_REGISTRY', 'upload response without Location header', res.statusCode ?? 0);
    return new URL(loc, this.base).href;
  }

  /** PUT a manifest under a tag or digest; returns its digest. */
  async putManifest(repo: string, reference: string, bytes: Buffer, mediaType: string, signal?: AbortSignal): Promise<string> {
    const o: SendOptions = { method: 'PUT', path: `/v2/${repo}/manifests/${reference}`, headers: { 'content-type': mediaType }, body: bytes, scopes: [RegistryClient.scope(repo, 'pull,push')], signal };
    const res = await this.send(o);
    if (res.statusCode !== 201) return this.fail(res, o, `manifest ${repo}:${reference}`);
    drain(res);
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    const header = res.headers['docker-content-digest'];
    if (typeof header === 'string' && isSha256Digest(header) && header !== digest) throw new DigestMismatchError(digest, header, `pushed manifest ${repo}:${reference}`);
    return digest;
  }
}
