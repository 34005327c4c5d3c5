import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { basicAuthorization, credentialsFromDockerConfig, parseChallenges, parseTokenResponse } from '../../lib/image/auth.js';
import { ValidationError } from '../../lib/errors.js';

test('WWW-Authenticate: Bearer with quoted params', () => {
  assert.deepEqual(parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"'), [
    { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull' } },
  ]);
});

test('WWW-Authenticate: Basic, unquoted values, escapes, several challenges', () => {
  assert.deepEqual(parseChallenges('Basic realm="Registry Realm"'), [{ scheme: 'basic', params: { realm: 'Registry Realm' } }]);
  assert.deepEqual(parseChallenges('Bearer realm=https://x/token, service=svc'), [{ scheme: 'bearer', params: { realm: 'https://x/token', service: 'svc' } }]);
  assert.deepEqual(parseChallenges('Bearer realm="a\\"b"'), [{ scheme: 'bearer', params: { realm: 'a"b' } }]);
  assert.deepEqual(parseChallenges('Basic realm="r", Bearer realm="https://t",scope="repository:a:pull,push"').map((c) => [c.scheme, c.params]), [
    ['basic', { realm: 'r' }],
    ['bearer', { realm: 'https://t', scope: 'repository:a:pull,push' }],
  ]);
  assert.deepEqual(parseChallenges(''), []);
});

test('credentials from a Docker config.json', () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-dockercfg-'));
  try {
    const path = join(dir, 'config.json');
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    writeFileSync(path, JSON.stringify({
      auths: {
        'https://index.docker.io/v1/': { auth: b64('hubuser:hub:pass') },
        'registry.example.com:5000': { auth: b64('u:p') },
        'https://quay.io': { identitytoken: 'refresh-me' },
      },
      credsStore: 'desktop',
    }));
    assert.deepEqual(credentialsFromDockerConfig('docker.io', path), { username: 'hubuser', password: 'hub:pass' });
    assert.deepEqual(credentialsFromDockerConfig('registry.example.com:5000', path), { username: 'u', password: 'p' });
    assert.deepEqual(credentialsFromDockerConfig('quay.io', path), { identityToken: 'refresh-me' });
    assert.equal(credentialsFromDockerConfig('ghcr.io', path), undefined);
    assert.equal(credentialsFromDockerConfig('ghcr.io', join(dir, 'missing.json')), undefined);
    writeFileSync(path, '{oops');
    assert.throws(() => credentialsFromDockerConfig('docker.io', path), ValidationError);
    writeFileSync(path, JSON.stringify({ auths: { 'docker.io': { auth: b64('no-colon') } } }));
    assert.throws(() => credentialsFromDockerConfig('docker.io', path), /user:password/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('token responses', () => {
  assert.deepEqual(parseTokenResponse('{"token":"t","expires_in":300}', 1000), { token: 't', expiresAt: 1000 + 290_000 });
  assert.equal(parseTokenResponse('{"access_token":"a"}', 0).token, 'a');
  assert.throws(() => parseTokenResponse('{}'), /without a token/);
  assert.throws(() => parseTokenResponse('<html>'), /JSON/);
  assert.equal(basicAuthorization({ username: 'a', password: 'b' }), `Basic ${Buffer.from('a:b').toString('base64')}`);
  assert.equal(basicAuthorization({ identityToken: 'x' }), undefined);
});
