/**
 * Reading a compose file: YAML 1.2 with anchors, aliases and `<<` merge keys (the `yaml`
 * package; see docs/design/decisions.md), one document, a mapping at the top.
 * @module
 */
import { parseDocument } from 'yaml';
import { ValidationError } from '../errors.js';
import { isMapping } from './interpolate.js';
import { readTextFile } from './read-text.js';
import { markTags, reviveMarks } from './yaml-tags.js';

/**
 * Aliases one document may expand. The `yaml` package counts expanded nodes against this,
 * which is what stops a "billion laughs" file (each alias doubling the last) before it
 * fills the heap.
 */
const MAX_ALIAS_COUNT = 1000;

/**
 * Parses compose YAML text into plain objects.
 * @throws ValidationError naming the file (and line) for a syntax error, several documents,
 *   an alias bomb, or a top level that is not a mapping.
 */
export function parseComposeYaml(text: string, file: string): Record<string, unknown> {
  const doc = parseDocument(text, { merge: true, uniqueKeys: true, prettyErrors: true, version: '1.2' });
  const problem = doc.errors[0];
  if (problem) throw new ValidationError(file, `invalid YAML: ${problem.message}`);
  markTags(doc);
  let value: unknown;
  try {
    value = reviveMarks(doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }));
  } catch (error) {
    throw new ValidationError(file, `invalid YAML: ${(error as Error).message}`, { cause: error });
  }
  if (value === null || value === undefined) return {};
  if (!isMapping(value)) throw new ValidationError(file, 'the top level of a compose file must be a mapping');
  return value;
}

/**
 * Reads and parses one compose file.
 * @throws ValidationError naming the file when it cannot be read or parsed.
 */
export async function readComposeFile(path: string): Promise<Record<string, unknown>> {
  return parseComposeYaml((await readTextFile(path, 'files'))!, path);
}
