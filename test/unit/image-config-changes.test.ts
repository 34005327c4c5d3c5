import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ValidationError } from '../../lib/errors.js';
import { applyConfigChanges, splitWords } from '../../lib/image/config-changes.js';
import { prepareImport } from '../../lib/image/image-import.js';
import { committedConfig } from '../../lib/containers/commit.js';
import type { ContainerRecord } from '../../lib/containers/container-record.js';

test('CMD and ENTRYPOINT: exec (JSON) form and shell form', () => {
  assert.deepEqual(applyConfigChanges({}, ['CMD ["sh", "-c", "echo hi"]']).Cmd, ['sh', '-c', 'echo hi']);
  assert.deepEqual(applyConfigChanges({}, ['CMD echo "$HOME" && ls']).Cmd, ['/bin/sh', '-c', 'echo "$HOME" && ls']);
  assert.deepEqual(applyConfigChanges({}, ['entrypoint ["/init"]']).Entrypoint, ['/init'], 'instructions are case-insensitive');
  assert.deepEqual(applyConfigChanges({}, ['CMD [not json']).Cmd, ['/bin/sh', '-c', '[not json'], 'bad JSON falls back to shell form, as Docker');
  assert.deepEqual(applyConfigChanges({}, ['CMD [1, 2]']).Cmd, ['/bin/sh', '-c', '[1, 2]']);
});

test('ENV and LABEL: pairs with quotes and escapes, the legacy single pair, replace by key', () => {
  const c = applyConfigChanges({ Env: ['PATH=/bin', 'A=old'] }, ['ENV A=1 B="two words" C=a\\ b', 'ENV D the rest of the line', "LABEL org.x=y 'quoted key'=\"v\"", 'LABEL legacy value here']);
  assert.deepEqual(c.Env, ['PATH=/bin', 'A=1', 'B=two words', 'C=a b', 'D=the rest of the line']);
  assert.deepEqual(c.Labels, { 'org.x': 'y', 'quoted key': 'v', legacy: 'value here' });
  assert.throws(() => applyConfigChanges({}, ['ENV =x']), (e: unknown) => e instanceof ValidationError && e.option === 'changes[0]');
  assert.throws(() => applyConfigChanges({}, ['ENV A="unterminated']), /unterminated/);
  assert.throws(() => applyConfigChanges({}, ['ENV']), ValidationError);
});

test('EXPOSE, VOLUME, USER, WORKDIR, STOPSIGNAL, ONBUILD, HEALTHCHECK', () => {
  const c = applyConfigChanges({ WorkingDir: '/app' }, [
    'EXPOSE 80 53/udp 8000-8002/TCP',
    'VOLUME ["/data", "/logs"]',
    'VOLUME /cache /tmp/x',
    'USER 1000:1000',
    'WORKDIR sub',
    'WORKDIR deeper',
    'STOPSIGNAL SIGQUIT',
    'ONBUILD RUN make',
    'HEALTHCHECK --interval=30s --timeout=1m30s --retries=3 CMD curl -f http://localhost/',
  ]);
  assert.deepEqual(c.ExposedPorts, { '80/tcp': {}, '53/udp': {}, '8000/tcp': {}, '8001/tcp': {}, '8002/tcp': {} });
  assert.deepEqual(c.Volumes, { '/data': {}, '/logs': {}, '/cache': {}, '/tmp/x': {} });
  assert.equal(c.User, '1000:1000');
  assert.equal(c.WorkingDir, '/app/sub/deeper');
  assert.equal(c.StopSignal, 'SIGQUIT');
  assert.deepEqual(c.OnBuild, ['RUN make']);
  assert.deepEqual(c.Healthcheck, { Interval: 30e9, Timeout: 90e9, Retries: 3, Test: ['CMD-SHELL', 'curl -f http://localhost/'] });
  assert.deepEqual(applyConfigChanges({}, ['HEALTHCHECK CMD ["true"]']).Healthcheck, { Test: ['CMD', 'true'] });
  assert.deepEqual(applyConfigChanges({}, ['HEALTHCHECK NONE']).Healthcheck, { Test: ['NONE'] });
  assert.equal(applyConfigChanges({}, ['WORKDIR rel']).WorkingDir, '/rel');
  assert.equal(applyConfigChanges({ WorkingDir: '/a' }, ['WORKDIR /abs']).WorkingDir, '/abs');
});

test('refusals name the change; the input config is not modified', () => {
  const input = { Env: ['A=1'], Labels: { x: 'y' } };
  const frozen = structuredClone(input);
  applyConfigChanges(input, ['ENV A=2', 'LABEL x=z']);
  assert.deepEqual(input, frozen);
  const cases: Array<[string, RegExp]> = [
    ['RUN make', /RUN cannot be applied/],
    ['FROM busybox', /FROM cannot be applied/],
    ['EXPOSE http', /not a port/],
    ['EXPOSE 70000', /out of range/],
    ['EXPOSE 90-80', /out of range/],
    ['STOPSIGNAL "kill me"', /not a signal/],
    ['HEALTHCHECK --every=5s CMD true', /unknown HEALTHCHECK option --every/],
    ['HEALTHCHECK --interval=5 CMD true', /not a duration/],
    ['HEALTHCHECK true', /needs NONE or/],
    ['', /not a Dockerfile instruction/],
  ];
  for (const [change, re] of cases) {
    assert.throws(() => applyConfigChanges({}, ['CMD ok', change]), (e: unknown) => e instanceof ValidationError && e.option === 'changes[1]' && re.test(e.message), change);
  }
  assert.throws(() => applyConfigChanges({}, [42 as unknown as string]), ValidationError);
});

test('splitWords: quotes group, backslash escapes, single quotes are literal', () => {
  assert.deepEqual(splitWords(`a "b c" 'd \\e' f\\ g ""`, 'x'), ['a', 'b c', 'd \\e', 'f g', '']);
  assert.deepEqual(splitWords('  ', 'x'), []);
});

describe('commit and import accept the same changes, as Docker', () => {
  const record = {
    imageConfig: { Env: ['PATH=/bin'], WorkingDir: '/app', Labels: { from: 'image' } },
    env: ['PATH=/bin', 'A=1'],
    cmd: ['old'],
    entrypoint: null,
    labels: {},
    options: {},
    stopSignal: 'SIGTERM',
  } as unknown as ContainerRecord;
  const base = committedConfig(record, []);
  const viaImport = (changes: string[]) => prepareImport({ config: base, changes }).config;
  const viaCommit = (changes: string[]) => committedConfig(record, changes);
  const refusal = (f: () => unknown): string => {
    try {
      f();
    } catch (e) {
      assert.ok(e instanceof ValidationError);
      return `${e.option}: ${e.message}`;
    }
    assert.fail('no refusal');
  };

  test('every instruction of docker commit --change / import --change gives one config', () => {
    const changes = [
      'CMD ["sh", "-c", "echo hi"]',
      'ENTRYPOINT /entry.sh --flag',
      'ENV A=2 B="two words"',
      'ENV C three words',
      'LABEL org.x=y z=w',
      'EXPOSE 80 53/udp',
      'VOLUME ["/data"]',
      'USER app',
      'WORKDIR sub',
      'STOPSIGNAL SIGINT',
      'ONBUILD RUN make',
      'HEALTHCHECK --interval=5s CMD true',
      'CMD [not json',
    ];
    const committed = viaCommit(changes);
    assert.deepEqual(committed, viaImport(changes));
    assert.deepEqual(committed.Env, ['PATH=/bin', 'A=2', 'B=two words', 'C=three words']);
    assert.deepEqual(committed.Entrypoint, ['/bin/sh', '-c', '/entry.sh --flag']);
    assert.deepEqual(committed.Cmd, ['/bin/sh', '-c', '[not json']);
    assert.equal(committed.WorkingDir, '/app/sub');
    assert.deepEqual(committed.OnBuild, ['RUN make']);
    assert.deepEqual(committed.Healthcheck, { Interval: 5e9, Test: ['CMD-SHELL', 'true'] });
  });

  test('and refuse the same changes with the same message', () => {
    for (const change of ['RUN apt-get update', 'FROM busybox', 'EXPOSE http', 'HEALTHCHECK --every=5s CMD true', 'ENV']) {
      assert.equal(refusal(() => viaCommit([change])), refusal(() => viaImport([change])), change);
    }
  });
});
