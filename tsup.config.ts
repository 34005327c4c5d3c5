import { defineConfig } from 'tsup';

/**
 * The CLI's one way into the library is the package entry (docs/design/layers.md): in the
 * bundle its `../index.js` imports become `./index.js`, the very file users import, instead of
 * a second copy of the library inside dist/cli.js.
 */
const cliUsesPackageEntry = {
  name: 'cli-uses-package-entry',
  setup(build: { onResolve: (o: { filter: RegExp }, f: (a: { path: string }) => { path: string; external: boolean }) => void }) {
    build.onResolve({ filter: /^\.\.\/index\.js$/ }, () => ({ path: './index.js', external: true }));
  },
};

export default defineConfig([
  {
    entry: { index: 'lib/index.ts' },
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    // Each build cleans only its own files: the two run side by side in one dist/.
    clean: ['index.*'],
    target: 'node20',
    // Keep the package's own runtime dependency external: it resolves from the installed package.
    external: ['eventemitter3'],
    shims: true,
  },
  {
    // The program rootless berth runs inside the containers' user namespace to write layers
    // (lib/rootless/userns-helper.ts looks for it next to index.js).
    entry: { 'userns-worker': 'lib/rootless/userns-worker.ts' },
    format: ['esm'],
    sourcemap: true,
    target: 'node20',
    clean: ['userns-worker.*'],
  },
  {
    entry: { cli: 'lib/cli/bin.ts' },
    format: ['esm'],
    sourcemap: true,
    target: 'node20',
    clean: ['cli.*'],
    banner: { js: '#!/usr/bin/env node' },
    esbuildPlugins: [cliUsesPackageEntry],
  },
]);
