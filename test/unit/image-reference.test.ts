import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseReference, formatReference, familiarName, isLoopbackDomain, registryHost } from '../../lib/image/reference.js';
import { InvalidReferenceError } from '../../lib/image/errors.js';
import { isBerthError } from '../../lib/errors.js';

const D = 'sha256:' + 'a'.repeat(64);

const good: Array<[string, string, Partial<{ domain: string; path: string; tag: string; digest: string }>]> = [
  ['busybox', 'docker.io/library/busybox:latest', { domain: 'docker.io', path: 'library/busybox', tag: 'latest' }],
  ['busybox:1.36', 'docker.io/library/busybox:1.36', { tag: '1.36' }],
  ['library/busybox', 'docker.io/library/busybox:latest', {}],
  ['docker.io/busybox', 'docker.io/library/busybox:latest', {}],
  ['index.docker.io/library/busybox', 'docker.io/library/busybox:latest', { domain: 'docker.io' }],
  ['user/app', 'docker.io/user/app:latest', { path: 'user/app' }],
  ['user/ns/app:v1', 'docker.io/user/ns/app:v1', {}],
  ['localhost/app', 'localhost/app:latest', { domain: 'localhost', path: 'app' }],
  ['localhost:5000/app:1', 'localhost:5000/app:1', { domain: 'localhost:5000' }],
  ['127.0.0.1:5000/fixtures/busybox:1', '127.0.0.1:5000/fixtures/busybox:1', { domain: '127.0.0.1:5000', path: 'fixtures/busybox', tag: '1' }],
  ['quay.io/org/app', 'quay.io/org/app:latest', { domain: 'quay.io' }],
  ['Example.COM/app', 'Example.COM/app:latest', { domain: 'Example.COM' }],
  ['[::1]:5000/app', '[::1]:5000/app:latest', { domain: '[::1]:5000' }],
  ['[fe80::1]/app:x', '[fe80::1]/app:x', { domain: '[fe80::1]' }],
  [`busybox@${D}`, `docker.io/library/busybox@${D}`, { digest: D }],
  [`busybox:1@${D}`, `docker.io/library/busybox:1@${D}`, { tag: '1', digest: D }],
  [`h.io:443/a/b:c@${D}`, `h.io:443/a/b:c@${D}`, { domain: 'h.io:443', path: 'a/b', tag: 'c', digest: D }],
  ['a-b/c__d/e.f/g--h:_tag.X-1', 'docker.io/a-b/c__d/e.f/g--h:_tag.X-1', { tag: '_tag.X-1' }],
  ['localhost:5000', 'docker.io/library/localhost:5000', { path: 'library/localhost', tag: '5000' }],
  ['app:' + 'x'.repeat(128), `docker.io/library/app:${'x'.repeat(128)}`, {}],
];

for (const [input, canonical, parts] of good) {
  test(`parses ${input.length > 60 ? input.slice(0, 60) + '…' : input}`, () => {
    const r = parseReference(input);
    assert.equal(formatReference(r), canonical);
    for (const [k, v] of Object.entries(parts)) assert.equal((r as unknown as Record<string, string>)[k], v, k);
    assert.ok(Object.isFrozen(r));
  });
}

const bad: Array<[string, string, RegExp?]> = [
  ['', 'reference'],
  ['a'.repeat(64), 'reference', /image id/],
  ['Busybox', 'path', /lowercase/],
  ['user/App', 'path', /lowercase/],
  ['docker.io/User/app', 'path', /lowercase/],
  ['busybox:', 'tag'],
  ['busybox:-x', 'tag'],
  ['busybox:.x', 'tag'],
  ['busybox:' + 'x'.repeat(129), 'tag'],
  ['busybox:a/b', 'domain', /port/],
  ['busybox@sha256:abc', 'digest'],
  ['busybox@sha256:' + 'A'.repeat(64), 'digest', /lowercase/],
  ['busybox@md5:' + 'a'.repeat(32), 'digest', /not supported/],
  ['busybox@', 'digest'],
  ['busybox@' + 'a'.repeat(64), 'digest'],
  ['-busybox', 'path'],
  ['busybox-', 'path'],
  ['bus..ybox', 'path'],
  ['a//b', 'path', /empty path component/],
  ['a/', 'path'],
  ['/a', 'path'],
  ['host.io/', 'path'],
  ['host:port/a', 'domain', /port/],
  ['-host.io/a', 'domain'],
  ['[::1/a', 'domain'],
  ['ho_st.io/a', 'domain'],
  [':tag', 'path'],
  ['example.com/' + 'a'.repeat(250), 'path', /more than 255/],
];

for (const [input, part, message] of bad) {
  test(`rejects ${JSON.stringify(input.length > 40 ? input.slice(0, 40) + '…' : input)} (${part})`, () => {
    assert.throws(
      () => parseReference(input, 'image'),
      (e: unknown) => {
        assert.ok(e instanceof InvalidReferenceError, String(e));
        assert.ok(isBerthError(e));
        assert.equal(e.code, 'ERR_INVALID_OPTION');
        assert.equal(e.option, 'image');
        assert.equal(e.part, part, e.message);
        if (message) assert.match(e.message, message);
        return true;
      },
    );
  });
}

test('familiar names', () => {
  assert.equal(familiarName(parseReference('busybox')), 'busybox:latest');
  assert.equal(familiarName(parseReference('docker.io/user/app:1')), 'user/app:1');
  assert.equal(familiarName(parseReference('docker.io/library/a/b')), 'library/a/b:latest');
  assert.equal(familiarName(parseReference('127.0.0.1:5000/app:1')), '127.0.0.1:5000/app:1');
  assert.equal(familiarName(parseReference(`busybox@${D}`)), `busybox@${D}`);
});

test('loopback domains and registry hosts', () => {
  for (const d of ['localhost', 'localhost:5000', '127.0.0.1', '127.0.0.1:5000', '127.1.2.3:1', '[::1]:5000']) assert.ok(isLoopbackDomain(d), d);
  for (const d of ['docker.io', '10.0.0.1:5000', 'localhost.example.com', '[fe80::1]:5000']) assert.ok(!isLoopbackDomain(d), d);
  assert.equal(registryHost('docker.io'), 'registry-1.docker.io');
  assert.equal(registryHost('quay.io'), 'quay.io');
});
