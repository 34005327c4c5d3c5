/**
 * This process's stdin joined to a container's (`run -i`, `attach`, `exec -i`): piped in, raw
 * while a TTY session has a real terminal (so keys such as ^C reach the container, not Node),
 * and undone afterwards so the shell gets its terminal back.
 * @module
 */
import type { Writable } from 'node:stream';
import type { CliContext } from './command.js';

/** Whether a session with a TTY (`-t`) can put this process's stdin in raw mode. */
export function rawCapable(ctx: CliContext, tty: boolean): boolean {
  return tty && ctx.stdin.isTTY === true && typeof ctx.stdin.setRawMode === 'function';
}

/** Pipes stdin into `target` (if any), raw if `raw`; returns what undoes both and pauses stdin. */
export function connectStdin(ctx: CliContext, target: Writable | undefined, raw: boolean): () => void {
  if (raw) ctx.stdin.setRawMode!(true);
  if (target) ctx.stdin.pipe(target);
  return () => {
    if (target) ctx.stdin.unpipe(target);
    ctx.stdin.pause();
    if (raw) ctx.stdin.setRawMode!(false);
  };
}
