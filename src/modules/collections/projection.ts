import { AgentstoreError } from '../../core/errors.js';
import { arrayIndex, parseQueryPath } from './json-path.js';
import type { JsonObject } from './types.js';

/**
 * `fields=title,owner.id`: the parts of `data` a read returns. Paths are the filter's (dot
 * paths into data, `data.` optional, a numeric segment an array index on an array and a key on
 * an object). The record attributes (`id`, `version`, `createdAt`, `updatedAt`) are always
 * returned, so naming one selects nothing more. The result keeps the data's shape: `owner.id`
 * gives `{"owner": {"id": …}}`; a path that finds nothing adds nothing; a path inside another
 * selected one adds nothing either. Keys come in the order of `fields` (not the stored order,
 * which differs between the databases); an array keeps the elements a path selects, in their
 * order (`items.2.name` on three items gives `{"items": [{"name": …}]}`).
 *
 * Done on the data as read, the same code for both databases: the records still count whole
 * against the page's byte budget.
 */
export type Projection = readonly (readonly string[])[];

export const MAX_FIELDS = 32;

/** Parses `fields` (comma-separated text, or a list in the library); undefined selects everything. */
export function parseFields(raw: string | readonly string[] | undefined): Projection | undefined {
  if (raw === undefined) return undefined;
  const names = (typeof raw === 'string' ? raw.split(',') : [...raw]).map((name) => (typeof name === 'string' ? name.trim() : name));
  if (names.length === 0 || names.length > MAX_FIELDS || names.some((name) => typeof name !== 'string' || name.length === 0)) {
    throw AgentstoreError.invalidField('fields', `takes 1 to ${MAX_FIELDS} comma-separated field paths`);
  }
  const paths: string[][] = [];
  for (const name of names) {
    const path = parseQueryPath(name, 'fields');
    if (path.kind === 'data') paths.push([...path.segments]);
  }
  return paths;
}

type Json = unknown;

function child(value: Json, segment: string): Json | undefined {
  if (Array.isArray(value)) {
    const index = arrayIndex(segment);
    return index === undefined || index >= value.length ? undefined : (value[index] as Json);
  }
  if (typeof value === 'object' && value !== null) return Object.hasOwn(value, segment) ? (value as JsonObject)[segment] : undefined;
  return undefined;
}

/**
 * The selection as a tree mirroring the data: a leaf is a selected value, an inner node maps
 * each selected key (or array index) to its subtree.
 */
interface Node {
  value?: Json;
  selected: boolean;
  readonly children: Map<string, Node>;
}

function select(root: Node, data: Json, segments: readonly string[]): void {
  // The whole path first: one that finds nothing adds nothing, not even its parents.
  const keys: string[] = [];
  let value: Json = data;
  for (const segment of segments) {
    const next = child(value, segment);
    if (next === undefined) return;
    keys.push(Array.isArray(value) ? String(arrayIndex(segment)) : segment);
    value = next;
  }
  let node = root;
  for (const key of keys) {
    if (node.selected) return;
    let sub = node.children.get(key);
    if (!sub) {
      sub = { selected: false, children: new Map() };
      node.children.set(key, sub);
    }
    node = sub;
  }
  node.selected = true;
  node.value = value;
  node.children.clear();
}

function build(node: Node, source: Json): Json {
  if (node.selected) return node.value;
  if (Array.isArray(source)) {
    return [...node.children.entries()].sort(([a], [b]) => Number(a) - Number(b)).map(([key, sub]) => build(sub, source[Number(key)] as Json));
  }
  const out: JsonObject = {};
  for (const [key, sub] of node.children) {
    // defineProperty: a "__proto__" key must stay a plain key of the result.
    Object.defineProperty(out, key, { value: build(sub, (source as JsonObject)[key]), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/** The selected parts of one record's data. */
export function project(data: JsonObject, projection: Projection): JsonObject {
  const root: Node = { selected: false, children: new Map() };
  for (const segments of projection) select(root, data, segments);
  return build(root, data) as JsonObject;
}
