/**
 * Registry credentials and the two auth schemes of the distribution spec: Basic, and Bearer
 * tokens fetched from the realm a `WWW-Authenticate` challenge names (the Docker token flow).
 * @module
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ValidationError } from '../errors.js';
import { DOCKER_HUB_DOMAIN } from './reference.js';

/** Credentials for one registry. */
export interface RegistryAuth {
  username?: string;
  password?: string;
  /** A refresh token (`identitytoken` in Docker's config), exchanged at the token realm. */
  identityToken?: string;
  /** A bearer token to send as is. */
  registryToken?: string;
}

export interface AuthChallenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parses a `WWW-Authenticate` header: `Bearer realm="…",service="…",scope="…"`. */
export function parseChallenges(header: string): AuthChallenge[] {
  const out: AuthChallenge[] = [];
  let i = 0;
  const s = header;
  const skipWs = () => {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t' || s[i] === ',')) i++;
  };
  while (i < s.length) {
    skipWs();
    const start = i;
    while (i < s.length && /[A-Za-z0-9!#$%&'*+.^_`|~-]/.test(s[i]!)) i++;
    if (i === start) break;
    const scheme = s.slice(start, i).toLowerCase();
    const params: Record<string, string> = {};
    for (;;) {
      while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
      const keyStart = i;
      while (i < s.length && /[A-Za-z0-9_.-]/.test(s[i]!)) i++;
      const key = s.slice(keyStart, i).toLowerCase();
      while (i < s.length && s[i] === ' ') i++;
      if (key === '' || s[i] !== '=') {
        i = keyStart;
        break;
      }
      i++;
      while (i < s.length && s[i] === ' ') i++;
      let value = '';
      if (s[i] === '"') {
        i++;
        while (i < s.length && s[i] !== '"') {
          if (s[i] === '\\' && i + 1 < s.length) i++;
          value += s[i];
          i++;
        }
        i++;
      } else {
        const vs = i;
        while (i < s.length && s[i] !== ',' && s[i] !== ' ') i++;
        value = s.slice(vs, i);
      }
      params[key] = value;
      while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
      if (s[i] === ',') {
        i++;
        // A comma followed by `token=` continues the params; followed by a bare token, a new challenge.
        const save = i;
        while (i < s.length && s[i] === ' ') i++;
        const m = /^[A-Za-z0-9_.-]+\s*=/.exec(s.slice(i));
        i = m ? i : save;
        if (!m) break;
      } else {
        break;
      }
    }
    out.push({ scheme, params });
  }
  return out;
}

function configKeysFor(domain: string): string[] {
  const keys = [domain, `https://${domain}`, `http://${domain}`, `https://${domain}/v1/`, `https://${domain}/v2/`];
  if (domain === DOCKER_HUB_DOMAIN) keys.unshift('https://index.docker.io/v1/', 'index.docker.io', 'registry-1.docker.io');
  return keys;
}

/**
 * Credentials for `domain` from Docker's `config.json` (`$DOCKER_CONFIG/config.json` or
 * `~/.docker/config.json`), from its `auths` section. Credential helpers (`credsStore`,
 * `credHelpers`) run external programs and are not consulted.
 */
export function credentialsFromDockerConfig(domain: string, configPath?: string): RegistryAuth | undefined {
  const path = configPath ?? join(process.env.DOCKER_CONFIG ?? join(homedir(), '.docker'), 'config.json');
  let config: { auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string; registrytoken?: string }> };
  try {
    config = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ValidationError('dockerConfig', `${path} is not readable JSON: ${(e as Error).message}`, { path, cause: e });
  }
  const auths = config?.auths;
  if (!auths || typeof auths !== 'object') return undefined;
  for (const key of configKeysFor(domain)) {
    const entry = auths[key];
    if (!entry || typeof entry !== 'object') continue;
    const out: RegistryAuth = {};
    if (typeof entry.auth === 'string' && entry.auth !== '') {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon === -1) throw new ValidationError('dockerConfig', `${path}: auths[${JSON.stringify(key)}].auth is not base64 of "user:password"`, { path });
      out.username = decoded.slice(0, colon);
      out.password = decoded.slice(colon + 1);
    }
    if (typeof entry.username === 'string') out.username = entry.username;
    if (typeof entry.password === 'string') out.password = entry.password;
    if (typeof entry.identitytoken === 'string' && entry.identitytoken !== '') out.identityToken = entry.identitytoken;
    if (typeof entry.registrytoken === 'string' && entry.registrytoken !== '') out.registryToken = entry.registrytoken;
    if (Object.keys(out).length > 0) return out;
  }
  return undefined;
}

export function basicAuthorization(auth: RegistryAuth): string | undefined {
  if (auth.username === undefined || auth.password === undefined) return undefined;
  return `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
}

/** A cached bearer token for one scope. */
export interface CachedToken {
  token: string;
  expiresAt: number;
}

/** Reads the token endpoint's answer (`token` or `access_token`, `expires_in`). */
export function parseTokenResponse(body: string, now = Date.now()): CachedToken {
  let json: { token?: unknown; access_token?: unknown; expires_in?: unknown };
  try {
    json = JSON.parse(body);
  } catch {
    throw new Error('token endpoint did not answer JSON');
  }
  const token = typeof json.token === 'string' && json.token !== '' ? json.token : typeof json.access_token === 'string' ? json.access_token : '';
  if (token === '') throw new Error('token endpoint answered without a token');
  const ttl = typeof json.expires_in === 'number' && json.expires_in > 0 ? json.expires_in : 60;
  // Renew a little early: a token that expires in flight costs a failed request and a retry.
  return { token, expiresAt: now + Math.max(ttl - 10, 5) * 1000 };
}
