import { defineConfig } from 'tsup';

export default defineConfig({
  entry: { index: 'lib/index.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  // Keep the package's own runtime dependencies external: node-gyp-build must resolve the
  // addon relative to the installed package, not to the bundle.
  external: ['node-gyp-build', 'eventemitter3'],
  shims: true,
});
