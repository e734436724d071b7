/**
 * The rules a tenant's JSON Schema must meet before it is compiled, checked on the schema
 * as a graph of sub-schemas (in-place applicators, descending applicators, local $refs).
 * Each rule closes one way for a schema to crash, leak across tenants or stall the loop.
 */
import { AgentstoreError } from '../../core/errors.js';
import { compileLinearPattern } from './schema-runtime.js';
import type { JsonObject } from './types.js';

export const SCHEMA_LIMITS = {
  /** The schema's JSON text. */
  bytes: 64 * 1024,
  /**
   * Sub-schemas (every object or boolean in a schema position, $defs included). Compiling
   * holds the loop ~0.2-0.5 ms per sub-schema (Ajv generates ~600 bytes of code for each):
   * 500 cost 80-270 ms of CPU on the loaded 2-core CI machine, a realistic 15-field schema 10 ms.
   */
  subschemas: 500,
  /** Nesting of sub-schemas inside each other. */
  depth: 32,
  /** Characters of one `pattern` or `patternProperties` key. */
  patternLength: 1000,
  /**
   * Keyword evaluations one data value can cost in the worst case, counting every branch of
   * allOf/anyOf/oneOf, every $ref followed and every enum member (see `workByDepth`). Only
   * a sanity bound (it refuses exponential schemas); the real bound is `recordWork`.
   */
  workPerValue: 10_000,
  /**
   * Σ over data depths of (values at that depth × worst work per value there), checked per
   * record: ~16 M keyword evaluations are ~50-100 ms on one core. A 1 MiB body holds up to
   * ~500,000 values, so a heavy schema accepts small records and a light one large records.
   */
  recordWork: 16_000_000,
} as const;

/** Keywords that are annotations or structure: they cost nothing when a value is checked. */
const FREE_KEYWORDS = new Set(['$schema', '$defs', 'definitions', '$comment', '$anchor', '$dynamicAnchor', 'title', 'description', 'default', 'examples', 'deprecated', 'readOnly', 'writeOnly', 'contentMediaType', 'contentEncoding', 'contentSchema']);

const META_2020 = 'https://json-schema.org/draft/2020-12/schema';

// Where sub-schemas sit. In-place ones apply to the same data value; descending ones to
// a child (item, property value or name). $defs are reachable only through $ref.
const IN_PLACE_ONE = ['not', 'if', 'then', 'else'] as const;
const IN_PLACE_LIST = ['allOf', 'anyOf', 'oneOf'] as const;
const IN_PLACE_MAP = ['dependentSchemas', 'dependencies'] as const;
const DESCEND_ONE = ['items', 'additionalItems', 'contains', 'additionalProperties', 'propertyNames', 'unevaluatedItems', 'unevaluatedProperties'] as const;
const DESCEND_LIST = ['prefixItems', 'items'] as const;
const DESCEND_MAP = ['properties', 'patternProperties'] as const;
const DEFS = ['$defs', 'definitions'] as const;

type Schema = JsonObject | boolean;

interface Node {
  readonly schema: JsonObject;
  readonly inPlace: Node[];
  /** Children per slot: one entry per property name, plus '*' for any other key / any item. */
  readonly objectChildren: { readonly named: Map<string, Node[]>; readonly all: Node[]; readonly other: Node[] };
  readonly arrayChildren: { readonly each: Node[]; readonly all: Node[] };
  readonly ownCost: number;
  readonly refs: string[];
}

const refuse = (message: string): never => {
  throw AgentstoreError.invalidField('/schema', message);
};

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);
const own = (o: JsonObject, key: string): unknown => (Object.hasOwn(o, key) ? o[key] : undefined);

function checkPattern(pattern: unknown, where: string): void {
  if (typeof pattern !== 'string') return;
  if (pattern.length > SCHEMA_LIMITS.patternLength) refuse(`${where}: a pattern is longer than ${SCHEMA_LIMITS.patternLength} characters`);
  try {
    compileLinearPattern(pattern);
  } catch (error) {
    refuse(`${where}: the pattern ${JSON.stringify(pattern)} is not supported (patterns run on a linear-time engine without backreferences or lookaround): ${(error as Error).message}`);
  }
}

/**
 * Refuses a schema that breaks a rule. Returns the worst keyword work on one data value at
 * each data depth (index 0: the record itself), for the per-record bound (`recordWork`).
 */
export function checkSchemaRules(root: JsonObject): readonly number[] {
  if (JSON.stringify(root).length > SCHEMA_LIMITS.bytes) refuse(`is larger than ${SCHEMA_LIMITS.bytes} bytes`);
  const nodes = new Map<JsonObject, Node>();
  const anchors = new Map<string, JsonObject>();
  let count = 0;

  const visit = (schema: unknown, where: string, depth: number): Node | undefined => {
    if (typeof schema === 'boolean') {
      count++;
      return undefined;
    }
    if (!isObject(schema)) return undefined; // Ajv reports the wrong type when it compiles.
    const seen = nodes.get(schema);
    if (seen) return seen;
    if (++count > SCHEMA_LIMITS.subschemas) refuse(`has more than ${SCHEMA_LIMITS.subschemas} sub-schemas`);
    if (depth > SCHEMA_LIMITS.depth) refuse(`nests sub-schemas deeper than ${SCHEMA_LIMITS.depth} levels (at ${where})`);
    // An async schema makes the validator return a promise: the record would be stored
    // before the check ran, and the rejection would go unhandled.
    if (Object.hasOwn(schema, '$async') && schema.$async !== false) refuse(`${where}: $async schemas are not supported (validation must be synchronous)`);
    // Ajv registers every $id on its instance: ids are refused so that no schema can name,
    // reach or collide with another collection's (or another tenant's).
    if (Object.hasOwn(schema, '$id')) refuse(`${where}: $id is not supported (schemas are anonymous; use $defs and "#/..." references)`);
    const meta = own(schema, '$schema');
    if (meta !== undefined && meta !== META_2020) refuse(`${where}: $schema must be ${META_2020} or absent`);
    for (const key of ['$ref', '$dynamicRef']) {
      const ref = own(schema, key);
      if (ref !== undefined && (typeof ref !== 'string' || !ref.startsWith('#'))) refuse(`${where}: ${key} must be a local reference starting with "#"`);
    }
    for (const key of ['$anchor', '$dynamicAnchor']) {
      const name = own(schema, key);
      if (typeof name === 'string') anchors.set(name, schema);
    }
    checkPattern(own(schema, 'pattern'), `${where}/pattern`);
    const enumSize = Array.isArray(own(schema, 'enum')) ? (own(schema, 'enum') as unknown[]).length : 0;
    const keywords = Object.keys(schema).filter((k) => !FREE_KEYWORDS.has(k)).length;
    const node: Node = {
      schema,
      inPlace: [],
      objectChildren: { named: new Map(), all: [], other: [] },
      arrayChildren: { each: [], all: [] },
      ownCost: 1 + keywords + enumSize,
      refs: ['$ref', '$dynamicRef'].flatMap((k) => (typeof own(schema, k) === 'string' ? [own(schema, k) as string] : [])),
    };
    nodes.set(schema, node);
    const child = (value: unknown, path: string) => visit(value, path, depth + 1);
    const push = (list: Node[], n: Node | undefined) => void (n && list.push(n));
    for (const key of IN_PLACE_ONE) if (Object.hasOwn(schema, key)) push(node.inPlace, child(schema[key], `${where}/${key}`));
    for (const key of IN_PLACE_LIST) {
      const list = own(schema, key);
      if (Array.isArray(list)) list.forEach((s, i) => push(node.inPlace, child(s, `${where}/${key}/${i}`)));
    }
    for (const key of IN_PLACE_MAP) {
      const map = own(schema, key);
      if (isObject(map)) for (const [name, s] of Object.entries(map)) if (!Array.isArray(s)) push(node.inPlace, child(s, `${where}/${key}/${name}`));
    }
    for (const key of DESCEND_ONE) {
      if (!Object.hasOwn(schema, key) || Array.isArray(schema[key])) continue;
      const n = child(schema[key], `${where}/${key}`);
      if (key === 'additionalProperties') push(node.objectChildren.other, n);
      else if (key === 'propertyNames' || key === 'unevaluatedProperties') push(node.objectChildren.all, n);
      else push(node.arrayChildren.all, n);
    }
    for (const key of DESCEND_LIST) {
      const list = own(schema, key);
      if (Array.isArray(list)) list.forEach((s, i) => push(node.arrayChildren.each, child(s, `${where}/${key}/${i}`)));
    }
    for (const key of DESCEND_MAP) {
      const map = own(schema, key);
      if (!isObject(map)) continue;
      for (const [name, s] of Object.entries(map)) {
        const n = child(s, `${where}/${key}/${name}`);
        if (key === 'patternProperties') {
          checkPattern(name, `${where}/patternProperties`);
          // A key is tested against every pattern (twice with additionalProperties): count
          // each as work on every child.
          push(node.objectChildren.all, n);
        } else if (n) node.objectChildren.named.set(name, [...(node.objectChildren.named.get(name) ?? []), n]);
      }
    }
    for (const key of DEFS) {
      const map = own(schema, key);
      if (isObject(map)) for (const [name, s] of Object.entries(map)) child(s, `${where}/${key}/${name}`);
    }
    return node;
  };

  const rootNode = visit(root, '', 0);
  if (!rootNode) return [];
  for (const node of nodes.values()) {
    for (const ref of node.refs) {
      const target = resolveLocalRef(root, anchors, ref);
      const targetNode = isObject(target) ? nodes.get(target) : undefined;
      // An unresolvable reference is Ajv's to report when it compiles.
      if (targetNode) node.inPlace.push(targetNode);
    }
  }
  const byDepth = workByDepth(rootNode, nodes.values());
  const work = Math.max(0, ...byDepth);
  if (work > SCHEMA_LIMITS.workPerValue) {
    refuse(
      `can cost up to ${work >= 1e9 ? 'more than 10^9' : work} keyword evaluations on one data value (at most ${SCHEMA_LIMITS.workPerValue}): ` +
        'reduce branches of allOf/anyOf/oneOf or $refs that apply to the same value, or large enums under them',
    );
  }
  return byDepth;
}

function resolveLocalRef(root: JsonObject, anchors: Map<string, JsonObject>, ref: string): unknown {
  let fragment: string;
  try {
    fragment = decodeURIComponent(ref.slice(1));
  } catch {
    return undefined; // A malformed escape: Ajv refuses the reference when it compiles.
  }
  if (fragment === '') return root;
  if (!fragment.startsWith('/')) return anchors.get(fragment);
  let at: unknown = root;
  for (const raw of fragment.slice(1).split('/')) {
    const token = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(at)) at = at[Number(token)];
    else if (isObject(at) && Object.hasOwn(at, token)) at = at[token];
    else return undefined;
  }
  return at;
}

/** Deeper data than this is refused before validation (see unstorableJson). */
const DATA_DEPTH = 100;
const CAP = 1e9;

/**
 * The most keyword evaluations one data value can cost, per depth: at depth 0 the root and
 * everything it applies in place (allOf, anyOf, oneOf, not, if/then/else, dependentSchemas,
 * $ref: all summed, as if every branch ran); one level down, for the worst property name or
 * item, the sub-schemas that apply to it, and so on to the data depth limit. A $ref loop
 * that never descends into the data would recurse forever and is refused; a recursive
 * schema that descends (a tree) gets a cost at every depth.
 */
function workByDepth(root: Node, nodes: Iterable<Node>): number[] {
  const all = [...nodes];
  let previous = new Map<Node, number>();
  const out: number[] = [];
  for (let depth = 0; depth <= DATA_DEPTH; depth++) {
    const current = new Map<Node, number>();
    const onStack = new Set<Node>();
    const below = (list: readonly Node[]) => list.reduce((sum, n) => sum + (previous.get(n) ?? 0), 0);
    const descend = (node: Node): number => {
      const { named, all: everyKey, other } = node.objectChildren;
      // One property value gets its named schema or additionalProperties, never both.
      let slot = below(other);
      for (const list of named.values()) slot = Math.max(slot, below(list));
      const objectWork = slot + below(everyKey);
      const arrayWork = Math.max(0, ...node.arrayChildren.each.map((n) => previous.get(n) ?? 0)) + below(node.arrayChildren.all);
      return Math.max(objectWork, arrayWork);
    };
    const cost = (node: Node): number => {
      const known = current.get(node);
      if (known !== undefined) return known;
      if (onStack.has(node)) refuse('has a $ref cycle that does not descend into the data (it would recurse forever)');
      onStack.add(node);
      let total = depth === 0 ? node.ownCost : descend(node);
      for (const n of node.inPlace) total += cost(n);
      onStack.delete(node);
      const capped = Math.min(total, CAP);
      current.set(node, capped);
      return capped;
    };
    for (const node of all) cost(node);
    const atRoot = cost(root);
    if (atRoot === 0) break;
    out.push(atRoot);
    if (atRoot >= CAP) break;
    previous = current;
  }
  return out;
}

/** Values of `data` at each depth (index 0: `data` itself); keys count with their values. */
export function valuesByDepth(data: unknown): number[] {
  const counts: number[] = [];
  const walk = (value: unknown, depth: number): void => {
    counts[depth] = (counts[depth] ?? 0) + 1;
    if (value === null || typeof value !== 'object' || depth >= DATA_DEPTH) return;
    if (Array.isArray(value)) for (const item of value) walk(item, depth + 1);
    else for (const key in value) if (Object.hasOwn(value, key)) walk((value as Record<string, unknown>)[key], depth + 1);
  };
  walk(data, 0);
  return counts;
}
