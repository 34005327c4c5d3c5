/**
 * Every verb of the CLI: each module exports its `Command`s, listed here — a new verb changes
 * nothing else.
 * @module
 */
import type { Command } from './command.js';
import { BUILD_VERBS } from './build-verb.js';
import { COMPOSE_VERBS } from './compose-verbs.js';
import { CONTAINER_VERBS } from './container-verbs.js';
import { IMAGE_VERBS } from './image-verbs.js';
import { INFO_VERBS } from './info-verb.js';
import { INSPECT_VERBS } from './inspect-verb.js';
import { NETWORK_VERBS } from './network-verbs.js';
import { VOLUME_VERBS } from './volume-verbs.js';

export const VERBS: readonly Command[] = [...CONTAINER_VERBS, ...IMAGE_VERBS, ...BUILD_VERBS, ...INSPECT_VERBS, ...VOLUME_VERBS, ...NETWORK_VERBS, ...INFO_VERBS, ...COMPOSE_VERBS];

/** The verb `args` start with (`volume ls` before `volume`), and how many words it took. */
export function findVerb(args: readonly string[]): { command: Command; words: number } | undefined {
  const two = args.slice(0, 2).join(' ');
  const one = args[0];
  for (const c of VERBS) if (c.name === two || c.aliases?.includes(two)) return { command: c, words: 2 };
  for (const c of VERBS) if (c.name === one || c.aliases?.includes(one ?? '')) return { command: c, words: 1 };
  return undefined;
}
