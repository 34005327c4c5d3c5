/**
 * Docker's prompt before a prune: `Are you sure you want to continue? [y/N]`, skipped with
 * `-f`. Anything but `y`/`yes` is no, and so is a closed stdin.
 * @module
 */
import { createInterface } from 'node:readline';
import type { CliContext } from './command.js';

/** Asks on the terminal; true only for yes. */
export async function confirm(ctx: CliContext, warning: string): Promise<boolean> {
  ctx.stdout.write(`${warning}\nAre you sure you want to continue? [y/N] `);
  const rl = createInterface({ input: ctx.stdin, terminal: false });
  try {
    const answer = await new Promise<string>((resolve) => {
      rl.once('line', resolve);
      rl.once('close', () => resolve(''));
    });
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
    ctx.stdin.pause();
  }
}

/** A prune's go-ahead: `-f` and `--json` (no one to ask) skip the question. */
export async function confirmPrune(ctx: CliContext, force: boolean, warning: string): Promise<boolean> {
  return force || ctx.json || confirm(ctx, warning);
}
