/**
 * The guides (`docs/guides/*.md`, pages of the typedoc site) show code that runs: every `ts`
 * block in a guide is a verbatim slice of a file in `examples/`, which `examples.test.ts` runs
 * and `npm run typecheck` checks. A guide edited apart from its example, or an example changed
 * under its guide, fails here. Every guide is also a page of the site (typedoc.json).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const GUIDES = join(REPO, 'docs/guides');
const guides = readdirSync(GUIDES).filter((f) => f.endsWith('.md')).sort();
const examples = readdirSync(join(REPO, 'examples'))
  .filter((f) => f.endsWith('.ts'))
  .map((f) => ({ name: f, text: readFileSync(join(REPO, 'examples', f), 'utf8') }));

/** The bodies of the fenced blocks of `lang` in a markdown text. */
function codeBlocks(markdown: string, lang: string): string[] {
  return [...markdown.matchAll(new RegExp(`^\`\`\`${lang}\\n([\\s\\S]*?)^\`\`\`$`, 'gm'))].map((m) => m[1]!);
}

it('every TypeScript block of a guide is a slice of an example', () => {
  const orphans: string[] = [];
  let blocks = 0;
  for (const guide of guides) {
    for (const block of codeBlocks(readFileSync(join(GUIDES, guide), 'utf8'), 'ts')) {
      blocks++;
      if (!examples.some((e) => e.text.includes(block))) orphans.push(`${guide}:\n${block}`);
    }
  }
  assert.ok(blocks > 0, 'no code block found: the pattern no longer matches the guides');
  assert.deepEqual(orphans, [], 'blocks found in no file of examples/');
});

it('every guide is a page of the typedoc site', () => {
  const config = JSON.parse(readFileSync(join(REPO, 'typedoc.json'), 'utf8')) as { projectDocuments?: string[] };
  const pages = new Set(config.projectDocuments ?? []);
  assert.deepEqual(guides.filter((g) => !pages.has(`docs/guides/${g}`)), [], 'guides missing from typedoc.json projectDocuments');
});
