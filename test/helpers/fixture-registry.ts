/**
 * The fixture image (test/helpers/fixture-image.ts) served by a loopback registry of the test's
 * own (test/helpers/registry.ts), pushed by skopeo as `fixtures/busybox:1`: what the pull,
 * image and rootless storage suites start from.
 * @module
 */
import { buildFixtureImage, FIXTURE_TAG } from './fixture-image.js';
import { skopeoPush, startRegistry, type TestRegistry } from './registry.js';

/** The running registry, the OCI layout the image was built in, and the reference to pull. */
export interface ServedFixture {
  registry: TestRegistry;
  layout: string;
  ref: string;
}

/**
 * Builds the fixture image under `work` (with `extraLayers` more layers) and pushes it to a new
 * registry; the caller stops `registry`. On a failure the registry is stopped here.
 */
export async function serveFixtureImage(work: string, options: { extraLayers?: number } = {}): Promise<ServedFixture> {
  const registry = await startRegistry();
  try {
    const layout = await buildFixtureImage(work, options);
    await skopeoPush(layout, FIXTURE_TAG, registry, 'fixtures/busybox:1');
    return { registry, layout, ref: `${registry.host}/fixtures/busybox:1` };
  } catch (error) {
    await registry.stop();
    throw error;
  }
}
