/**
 * `waitForHttp()` over a published port and over the container's own address, with status
 * and body matching; and what every wait's timeout says: a `WaitTimeoutError` naming what was
 * awaited and what was last seen (the last log lines, the last HTTP status or connection
 * error, the health log), as properties and in the message. Traffic goes to 127.0.0.1 and to
 * the containers the suite starts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConflictError, ValidationError, isBerthError } from '../../lib/errors.js';
import { WaitTimeoutError } from '../../lib/containers/wait-strategies.js';
import { openFixture, type Fixture } from '../helpers/containers-fixture.js';
import { networkSkipReason } from '../helpers/network-fixture.js';

const skip = networkSkipReason();

// busybox httpd serving /www; /www/late appears after a while, /cgi-bin/teapot answers 418.
const SERVER = [
  'mkdir -p /www/cgi-bin',
  'echo "hello from httpd" > /www/index.html',
  // Output that starts with "HTTP/" is passed through by busybox httpd as the whole response.
  'printf \'#!/bin/sh\\nprintf "HTTP/1.0 418 teapot\\\\r\\\\nContent-Type: text/plain\\\\r\\\\n\\\\r\\\\nshort and stout\\\\n"\\n\' > /www/cgi-bin/teapot',
  'chmod +x /www/cgi-bin/teapot',
  '(sleep 1; echo "late body" > /www/late) &',
  'echo serving',
  'exec httpd -f -p 8080 -h /www',
].join('\n');

const timeoutError = (check: (e: WaitTimeoutError) => void) => (e: unknown) => {
  assert.ok(isBerthError(e) && e instanceof WaitTimeoutError, `expected a WaitTimeoutError, got ${String(e)}`);
  assert.equal(e.code, 'ERR_TIMEOUT');
  check(e);
  return true;
};

describe('containers: waitForHttp and informative wait timeouts', { skip }, () => {
  let f: Fixture;
  before(async () => {
    f = await openFixture();
  });
  after(async () => {
    await f.removeContainersAndNetworks();
    await f.cleanup();
  });

  test('through the published port: status, body string and RegExp, a path that appears later', async () => {
    const c = await f.sh(SERVER, { ports: ['8080'] });
    await c.start();
    const r = await c.waitForHttp('/', { port: 8080, timeout: 30_000 });
    assert.equal(r.status, 200);
    assert.equal(r.body, 'hello from httpd\n');
    assert.equal((await c.waitForHttp('/late', { port: 8080, body: /late b.dy/, timeout: 30_000 })).body, 'late body\n');
    assert.equal((await c.waitForHttp('/cgi-bin/teapot', { port: 8080, status: 418, body: 'stout', timeout: 30_000 })).status, 418);
    assert.equal((await c.waitForHttp('/', { port: 8080, method: 'HEAD', headers: { 'x-probe': '1' }, timeout: 30_000 })).body, '');
    await c.kill();
  });

  test('at the container\'s own address when the port is not published', async () => {
    const net = await f.rt.networks.create({ name: 'wait-http' });
    const c = await f.sh(SERVER, { network: net });
    await c.start();
    assert.equal((await c.waitForHttp('/', { port: 8080, body: 'hello', timeout: 30_000 })).status, 200);
    await c.kill();
  });

  test('timeout: the URL awaited and the last status and body seen', async () => {
    const c = await f.sh(SERVER, { ports: ['8080'] });
    await c.start();
    await c.waitForHttp('/', { port: 8080, timeout: 30_000 });
    const host = `${c.getHost()}:${c.getMappedPort(8080)}`;
    await assert.rejects(
      c.waitForHttp('/missing', { port: 8080, timeout: 600 }),
      timeoutError((e) => {
        assert.equal(e.lastStatus, 404);
        assert.match(e.awaited, new RegExp(`GET http://${host}/missing \\(container port 8080\\) -> 2xx`));
        assert.match(e.message, /timed out after 600 ms waiting for HTTP GET .*\/missing.*last HTTP status 404/);
      }),
    );
    await assert.rejects(
      c.waitForHttp('/', { port: 8080, body: 'never there', timeout: 600 }),
      timeoutError((e) => {
        assert.equal(e.lastStatus, 200);
        assert.equal(e.lastBody, 'hello from httpd\n');
        assert.match(e.message, /with body "hello from httpd"/);
      }),
    );
    await c.kill();
  });

  test('timeout: the last connection error when nothing listens', async () => {
    const c = await f.sh('sleep 30', { ports: ['8080'] });
    await c.start();
    await assert.rejects(
      c.waitForHttp('/', { port: 8080, timeout: 600 }),
      timeoutError((e) => {
        assert.match(e.lastError ?? '', /ECONNREFUSED|ECONNRESET|socket hang up|no response/);
        assert.match(e.message, /last error: /);
      }),
    );
    await c.kill();
  });

  test('waitForLog timeout: the last log lines; waitForPort: what was missing; waitForHealthy: the health log', async () => {
    const c = await f.sh('for i in 1 2 3 4 5 6 7; do echo "line $i"; done; sleep 30', { healthcheck: { test: ['CMD-SHELL', 'echo probe-said-no; exit 1'], interval: '100ms', retries: 100 } });
    await c.start();
    await c.waitForLog('line 7', { timeout: 30_000 });
    await assert.rejects(
      c.waitForLog('never printed', { timeout: 500 }),
      timeoutError((e) => {
        assert.deepEqual(e.lastLogLines, ['line 3', 'line 4', 'line 5', 'line 6', 'line 7']);
        assert.match(e.message, /waiting for log never printed; seen last: last log lines: "line 3" \| .* \| "line 7"/);
      }),
    );
    await assert.rejects(
      c.waitForPort(9999, { timeout: 300 }),
      timeoutError((e) => {
        assert.equal(e.awaited, 'port 9999');
        assert.match(e.lastError ?? '', /no TCP socket listening on port 9999/);
      }),
    );
    await assert.rejects(
      c.waitForHealthy({ timeout: 1500 }),
      timeoutError((e) => {
        assert.ok((e.healthLog ?? []).length > 0, 'the health log is attached');
        assert.equal(e.healthLog!.at(-1)!.exitCode, 1);
        assert.match(e.healthLog!.at(-1)!.output, /probe-said-no/);
        assert.match(e.message, /last health check: exit code 1, output "probe-said-no"/);
      }),
    );
    await c.kill();
  });

  test('bad options and unreachable containers are typed errors naming the problem', async () => {
    const c = await f.sh('sleep 30');
    await c.start();
    await assert.rejects(c.waitForHttp('/', { port: 8080, timeout: 1000 }), (e: unknown) => isBerthError(e) && e instanceof ConflictError && /network "none".*ports: \[8080\]/.test(e.message));
    await assert.rejects(c.waitForHttp('health', { port: 8080 }), (e: unknown) => e instanceof ValidationError && e.option === 'path');
    await assert.rejects(c.waitForHttp('/', { port: 0 }), (e: unknown) => e instanceof ValidationError && e.option === 'port');
    await assert.rejects(c.waitForHttp('/', { port: 80, status: 99 }), (e: unknown) => e instanceof ValidationError && e.option === 'status');
    await c.kill();
    await assert.rejects(c.waitForHttp('/', { port: 8080, timeout: 1000 }), (e: unknown) => isBerthError(e) && e instanceof ConflictError && /stopped/.test(e.message));
  });
});
