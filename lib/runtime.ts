/**
 * `Runtime`: one state directory (images, layers, and later containers, volumes, networks)
 * shared safely by every Node process that opens it.
 * @module
 */
import { mkdirSync } from 'node:fs';
import type { RunOptions } from './container/run-options.js';
import { NotFoundError, ValidationError, isBerthError } from './errors.js';
import { ImageService } from './image/image-service.js';
import { runFromRoot, type OutputOf, type RunResult } from './run.js';

/** Options of {@link Runtime.open}. */
export interface RuntimeOptions {
  /** The state directory. Default `/var/lib/berth`. */
  root?: string;
}

/** The default state directory (root-owned, like Docker's /var/lib/docker). */
export const DEFAULT_ROOT = '/var/lib/berth';

/** A berth state directory and the services over it. */
export class Runtime {
  /** The state directory. */
  readonly root: string;
  /** Images: pull, push, list, inspect, tag, remove, save/load, unpack. */
  readonly images: ImageService;

  private constructor(root: string) {
    this.root = root;
    this.images = new ImageService(root);
  }

  /** Opens (creating if needed) a state directory. Several processes may open the same one. */
  static async open(options: RuntimeOptions = {}): Promise<Runtime> {
    const root = options.root ?? DEFAULT_ROOT;
    if (typeof root !== 'string' || !root.startsWith('/')) throw new ValidationError('root', `must be an absolute path, got ${JSON.stringify(root)}`);
    mkdirSync(root, { recursive: true, mode: 0o700 });
    return new Runtime(root);
  }

  /**
   * {@link run} from an image in this runtime's store, pulling it first if it is not there.
   * Docker's rules apply: `cmd` replaces the image's Cmd, Env/WorkingDir/User are defaults
   * under the options.
   */
  async run<O extends RunOptions = RunOptions>(image: string, cmd?: string[] | null, options?: O): Promise<RunResult<OutputOf<O>>> {
    if (typeof image !== 'string' || image === '') throw new ValidationError('image', 'must be an image reference');
    try {
      await this.images.get(image);
    } catch (error) {
      if (!(isBerthError(error) && error instanceof NotFoundError)) throw error;
      await this.images.pull(image, options?.signal ? { signal: options.signal } : {});
    }
    const { lowerDirs, config } = await this.images.rootfsFor(image);
    return runFromRoot({ kind: 'layers', lowerDirs }, cmd, options, config.config ? { config: config.config } : {}) as Promise<RunResult<OutputOf<O>>>;
  }
}

let shared: Promise<Runtime> | undefined;

/** The runtime `run(imageRef, …)` uses: {@link DEFAULT_ROOT}, opened once per process. */
export function defaultRuntime(): Promise<Runtime> {
  shared ??= Runtime.open();
  return shared;
}
