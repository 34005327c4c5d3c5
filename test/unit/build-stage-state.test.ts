import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDockerfile } from '../../lib/build/dockerfile-parser.js';
import { GlobalArgs, StageState } from '../../lib/build/stage-state.js';
import { stagesFor, toStages } from '../../lib/build/stages.js';
import type { ContainerConfig } from '../../lib/image/manifest.js';
import { BuildSourceNotFoundError, DockerfileSyntaxError } from '../../lib/build/build-errors.js';

/** Dispatches the metadata steps of the last stage; RUN records what its shell would see. */
function dispatch(text: string, buildArgs: Record<string, string> = {}, base: ContainerConfig = {}) {
  const df = toStages(parseDockerfile(text));
  const globals = new GlobalArgs(buildArgs, df.escape);
  for (const a of df.globalArgs) globals.declare(a);
  const stage = df.stages[df.stages.length - 1]!;
  const state = new StageState(base, globals);
  const history: string[] = [];
  const runs: string[][] = [];
  const from = globals.expand(stage.from.image, stage.from.loc);
  for (const i of stage.instructions) {
    if (i.kind === 'RUN') runs.push(state.runEnv());
    else if (i.kind === 'WORKDIR' || i.kind === 'COPY' || i.kind === 'ADD') continue;
    else history.push(state.applyMetadata(i));
  }
  return { state, history, runs, from };
}

test('Docker docs: an ARG is usable from the line after its declaration', () => {
  const text = 'FROM busybox\nUSER ${username:-some_user}\nARG username\nUSER $username\n';
  const { history } = dispatch(text, { username: 'what_user' });
  assert.deepEqual(history, ['/bin/sh -c #(nop)  USER some_user', '/bin/sh -c #(nop)  ARG username', '/bin/sh -c #(nop)  USER what_user']);
});

test('Docker docs: ENV overrides an ARG of the same name; ${VAR:-default} keeps a default', () => {
  const a = dispatch('FROM ubuntu\nARG CONT_IMG_VER\nENV CONT_IMG_VER=v1.0.0\nRUN echo $CONT_IMG_VER', { CONT_IMG_VER: 'v2.0.1' });
  assert.deepEqual(a.runs[0], ['CONT_IMG_VER=v1.0.0']);
  const b = dispatch('FROM ubuntu\nARG CONT_IMG_VER\nENV CONT_IMG_VER=${CONT_IMG_VER:-v1.0.0}\nRUN x', { CONT_IMG_VER: 'v2.0.1' });
  assert.deepEqual(b.state.config.Env, ['CONT_IMG_VER=v2.0.1']);
  const c = dispatch('FROM ubuntu\nARG CONT_IMG_VER\nENV CONT_IMG_VER=${CONT_IMG_VER:-v1.0.0}\nRUN x');
  assert.deepEqual(c.state.config.Env, ['CONT_IMG_VER=v1.0.0']);
});

test('Docker docs: a global ARG is seen by FROM, and inside a stage only once declared again', () => {
  const text = 'ARG VERSION=latest\nFROM busybox:$VERSION\nRUN before\nARG VERSION\nRUN after';
  const d = dispatch(text);
  assert.equal(d.from, 'busybox:latest');
  assert.deepEqual(d.runs, [[], ['VERSION=latest']]);
  const o = dispatch(text, { VERSION: '1.36' });
  assert.equal(o.from, 'busybox:1.36');
  assert.deepEqual(o.runs[1], ['VERSION=1.36']);
});

test('undeclared build args are invisible; proxy args reach RUN without a declaration', () => {
  const d = dispatch('FROM a\nARG B=def\nRUN x', { A: '1', http_proxy: 'http://127.0.0.1:3128', B: 'set' });
  assert.deepEqual(d.runs[0], ['B=set', 'http_proxy=http://127.0.0.1:3128']);
  assert.deepEqual(d.state.visibleArgs(), [['B', 'set']]);
});

test('ENV: pairs, quotes, escapes, expansion of earlier values, legacy form, Docker\'s history text', () => {
  const d = dispatch('FROM a\nENV A=1 B="x y" C=a\\ b\nENV D=$A-${B}\nENV E the rest  "q"', {}, { Env: ['PATH=/bin'] });
  assert.deepEqual(d.state.config.Env, ['PATH=/bin', 'A=1', 'B=x y', 'C=a b', 'D=1-x y', 'E=the rest  q']);
  assert.equal(d.history[0], '/bin/sh -c #(nop)  ENV A=1 B=x y C=a b');
});

test('Docker docs: CMD and ENTRYPOINT combinations', () => {
  const inherited: ContainerConfig = { Cmd: ['base-cmd'] };
  assert.deepEqual(dispatch('FROM a\nENTRYPOINT ["e"]', {}, inherited).state.config.Cmd, null, 'ENTRYPOINT resets an inherited CMD');
  const kept = dispatch('FROM a\nCMD ["c"]\nENTRYPOINT ["e"]', {}, inherited).state.config;
  assert.deepEqual([kept.Entrypoint, kept.Cmd], [['e'], ['c']]);
  const after = dispatch('FROM a\nENTRYPOINT e x\nCMD ["p1"]').state.config;
  assert.deepEqual([after.Entrypoint, after.Cmd], [['/bin/sh', '-c', 'e x'], ['p1']]);
  const shell = dispatch('FROM a\nSHELL ["/bin/bash", "-eu", "-c"]\nCMD echo $HOME');
  assert.deepEqual(shell.state.config.Cmd, ['/bin/bash', '-eu', '-c', 'echo $HOME'], 'shell form is not expanded and uses SHELL');
  assert.deepEqual(shell.history, ['/bin/bash -eu -c #(nop)  SHELL [/bin/bash -eu -c]', '/bin/bash -eu -c #(nop)  CMD ["/bin/bash" "-eu" "-c" "echo $HOME"]']);
});

test('metadata instructions and their history strings', () => {
  const d = dispatch([
    'FROM a', 'ARG P=8080', 'LABEL "a b"=c d=$P', 'EXPOSE $P 53/udp 7000-7001', 'VOLUME ["/data", "/x"]', 'VOLUME /y',
    'USER app:app', 'STOPSIGNAL SIGQUIT', 'HEALTHCHECK --interval=90s --timeout=3s --retries=3 CMD curl -f http://127.0.0.1/', 'ONBUILD RUN echo hi', 'MAINTAINER me',
  ].join('\n'));
  const c = d.state.config;
  assert.deepEqual(c.Labels, { 'a b': 'c', d: '8080' });
  assert.deepEqual(Object.keys(c.ExposedPorts ?? {}), ['8080/tcp', '53/udp', '7000/tcp', '7001/tcp']);
  assert.deepEqual(Object.keys(c.Volumes ?? {}), ['/data', '/x', '/y']);
  assert.equal(c.User, 'app:app');
  assert.equal(c.StopSignal, 'SIGQUIT');
  assert.deepEqual(c.Healthcheck, { Test: ['CMD-SHELL', 'curl -f http://127.0.0.1/'], Interval: 90e9, Timeout: 3e9, Retries: 3 });
  assert.deepEqual(c.OnBuild, ['RUN echo hi']);
  assert.equal(d.state.author, 'me');
  assert.deepEqual(d.history, [
    '/bin/sh -c #(nop)  ARG P=8080',
    '/bin/sh -c #(nop)  LABEL a b=c d=8080',
    '/bin/sh -c #(nop)  EXPOSE 53/udp 7000-7001 8080',
    '/bin/sh -c #(nop)  VOLUME [/data /x]',
    '/bin/sh -c #(nop)  VOLUME [/y]',
    '/bin/sh -c #(nop)  USER app:app',
    '/bin/sh -c #(nop)  STOPSIGNAL SIGQUIT',
    '/bin/sh -c #(nop)  HEALTHCHECK &{["CMD-SHELL" "curl -f http://127.0.0.1/"] "1m30s" "3s" "0s" \'\\x03\'}',
    '/bin/sh -c #(nop)  ONBUILD RUN echo hi',
    '/bin/sh -c #(nop)  MAINTAINER me',
  ]);
  assert.throws(() => dispatch('FROM a\nEXPOSE 99999'), DockerfileSyntaxError);
  assert.throws(() => dispatch('FROM a\nUSER ${U:?needs_U}'), /Dockerfile:2:1: U: needs_U/);
});

test('stages: only what the target needs, dependencies first; unknown target', () => {
  const df = toStages(parseDockerfile([
    'ARG BASE=base', 'FROM scratch AS base', 'FROM scratch AS unused', 'FROM $BASE AS build', 'FROM scratch AS other',
    'FROM scratch AS final', 'COPY --from=build /a /a', 'COPY --from=0 /b /b', 'RUN --mount=type=bind,from=other,target=/o true',
  ].join('\n')));
  const globals = new GlobalArgs({}, '\\');
  for (const a of df.globalArgs) globals.declare(a);
  assert.deepEqual(stagesFor(df, globals).map((s) => s.name), ['base', 'build', 'other', 'final']);
  assert.deepEqual(stagesFor(df, globals, 'build').map((s) => s.name), ['base', 'build']);
  assert.throws(() => stagesFor(df, globals, 'nope'), BuildSourceNotFoundError);
  assert.throws(() => toStages(parseDockerfile('RUN x\nFROM a')), /only ARG may come before FROM/);
  assert.throws(() => toStages(parseDockerfile('FROM a AS x\nFROM b AS X')), /duplicate stage name/);
  assert.throws(() => toStages(parseDockerfile('# just a comment')), /no FROM/);
});
