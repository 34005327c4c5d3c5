/**
 * The shape of `rt.images.build()`: its options and progress events. The builder itself lives
 * above the image service (`lib/build/`, it runs containers); the runtime hands the service a
 * function that builds, so the service names the API without importing upward.
 * @module
 */
import type { Readable } from 'node:stream';
import type { Image } from './image.js';

/** One event of a build, per step and per line a RUN step prints. */
export interface BuildProgress {
  /** The stage: its `AS` name, or its index as a string. */
  stage: string;
  /** 1-based number of the step among all steps of the stages the target needs. */
  step: number;
  /** How many steps the build has. */
  total: number;
  /** The instruction as written (`RUN make`), continuation lines joined. */
  instruction: string;
  /** The step's result came from the build cache. */
  cached: boolean;
  /** A line a RUN step printed (stdout and stderr), without its newline; absent on the step's start event. */
  line?: string;
}

/** Options of `rt.images.build()`. */
export interface BuildOptions {
  /** The build context: a directory, or a tar stream (plain or gzip) of one. Required. */
  context: string | Readable | AsyncIterable<Uint8Array>;
  /** The Dockerfile: a path inside the context, or its text. Default `'Dockerfile'`. */
  dockerfile?: string | { content: string };
  /** The stage to build (its `AS` name). Default the last stage. */
  target?: string;
  /** Values of `ARG`s (and of the predefined proxy args). Default none. */
  buildArgs?: Record<string, string>;
  /** Tags for the result (`name[:tag]`, `latest` when no tag). Default none (the image is dangling). */
  tags?: string[];
  /** Labels added to the result's config. Default none. */
  labels?: Record<string, string>;
  /** Run every step, ignoring the build cache (results still go into it). Default false. */
  noCache?: boolean;
  /** Pull every base image even when the store has it. Default false. */
  pull?: boolean;
  /** The network of RUN steps: `'none'`, `'host'`, or a network's name (`'bridge'`). Default `'none'`. */
  network?: string;
  /** Secrets for `RUN --mount=type=secret,id=<key>`: key -> host file path. Default none. */
  secrets?: Record<string, string>;
  /** The target platform; only the host's is supported. Default the host's. */
  platform?: string;
  /** Called for every progress event; an exception it throws is ignored. */
  onProgress?: (event: BuildProgress) => void;
  /** Aborts the build: a running step's container is killed, nothing half-done is kept. */
  signal?: AbortSignal;
}

/** What the runtime injects: builds and returns the image. */
export type BuildFunction = (options: BuildOptions) => Promise<Image>;

/** What `pruneBuildCache()` did. */
export interface BuildCachePruneResult {
  /** Cache entries removed. */
  entriesDeleted: number;
  /** Bytes freed in the store (layers and blobs only the cache held). */
  spaceReclaimed: number;
}
