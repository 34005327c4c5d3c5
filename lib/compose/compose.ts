/**
 * `rt.compose`: compose projects over a runtime's public services.
 * @module
 */
import { loadProject, type ComposeLoadOptions } from './load.js';
import { Stack, type ComposeRuntime } from './stack.js';

/** `rt.compose`: loads compose files into {@link Stack}s of the runtime. */
export class Compose {
  readonly #rt: ComposeRuntime;

  /** @internal Made by the runtime. */
  constructor(rt: ComposeRuntime) {
    this.#rt = rt;
  }

  /**
   * Reads, interpolates, merges and checks compose files (the compose specification's rules;
   * see docs/design/compose.md for the subset). Nothing is created until `stack.up()`.
   * Unknown keys become `stack.warnings`.
   * @throws ValidationError naming the option, file, or `services.<name>.<key>` that is wrong;
   *   UnsupportedError naming service and key for what berth cannot honour (`gpus`,
   *   `configs`, ...), unless `ignoreUnsupported`.
   */
  async load(options: ComposeLoadOptions = {}): Promise<Stack> {
    const stack = new Stack(this.#rt, await loadProject(options));
    // A stack that is already up (this process or another) answers container() at once.
    await stack.refresh();
    return stack;
  }
}
