// `node --import tsx --import ./test/helpers/berth-from-source.mjs program.mjs`: a program that
// imports 'berth' (as deploy/server.mjs does, like a user) gets this checkout's lib/ instead of
// the built dist/, so tests run it without a build. tsx compiles the TypeScript.
import { register } from 'node:module';

const entry = new URL('../../lib/index.ts', import.meta.url).href;
const hook = `export async function resolve(specifier, context, next) {
  if (specifier === 'berth') return next(${JSON.stringify(entry)}, context);
  return next(specifier, context);
}`;
register(`data:text/javascript,${encodeURIComponent(hook)}`);
