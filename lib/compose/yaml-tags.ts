/**
 * The compose specification's merge tags: `!reset` (in a later file, drop the value the
 * earlier files gave: `ports: !reset []`) and `!override` (replace the earlier value whole
 * instead of merging into it: `ports: !override ["8080:80"]`). They are marks the YAML
 * reader leaves in the tree, the merge (`merge.ts`) obeys, and {@link stripMarks} removes
 * once every file is merged.
 * @module
 */
import { isNode, Scalar, visit, YAMLMap, type Document } from 'yaml';

/** A value tagged `!reset`. */
export const RESET: unique symbol = Symbol('compose !reset');

/** A value tagged `!override`. */
export class Override {
  constructor(readonly value: unknown) {}
}

/** A key no compose file can spell (YAML keys cannot hold NUL), carrying an `!override`'d value through `toJS`. */
const OVERRIDE_KEY = '\u0000compose-override';

/** Replaces the tagged nodes of a parsed document by marks that survive `toJS`. */
export function markTags(doc: Document): void {
  visit(doc, {
    Node(_, node) {
      if (!isNode(node) || (node.tag !== '!reset' && node.tag !== '!override')) return undefined;
      const tag = node.tag;
      node.tag = undefined;
      if (tag === '!reset') return new Scalar(RESET);
      const wrapper = new YAMLMap();
      wrapper.set(OVERRIDE_KEY, node);
      return wrapper;
    },
  });
}

/** After `toJS`: the `!override` wrappers become {@link Override}s. */
export function reviveMarks(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reviveMarks);
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value);
    if (entries.length === 1 && entries[0]![0] === OVERRIDE_KEY) return new Override(reviveMarks(entries[0]![1]));
    return Object.fromEntries(entries.map(([k, v]) => [k, reviveMarks(v)]));
  }
  return value;
}

/** The merged tree without marks: `!reset` values gone, `!override`n ones plain. */
export function stripMarks(value: unknown): unknown {
  if (value instanceof Override) return stripMarks(value.value);
  if (Array.isArray(value)) return value.filter((v) => v !== RESET).map(stripMarks);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== RESET).map(([k, v]) => [k, stripMarks(v)]));
  }
  return value;
}
