// Applying an object meshpilot manages the way server-side apply does for Istio's controller: the
// fields meshpilot sets are put back, the fields it set before and no longer sets are removed,
// and everything else a user added (labels, env, replicas, a debug container) is left alone.
// What was applied last is kept in an annotation, as `kubectl apply` keeps its own.
import { isDeepStrictEqual } from 'node:util';
import type { KubeConnection } from './kube-api.ts';
import { requestJson, statusMessage } from './kube-api.ts';

type Json = Record<string, unknown>;

/** Where the last applied object is kept on the object itself. */
export const LAST_APPLIED_ANNOTATION = 'meshpilot.io/last-applied';

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A list Kubernetes merges by name (containers, volumes, ports, env): every element has a string `name`. */
function isNamedList(value: unknown): value is Json[] {
  return Array.isArray(value) && value.length > 0 && value.every((item) => isObject(item) && typeof item['name'] === 'string');
}

function named(list: readonly Json[]): Map<string, Json> {
  return new Map(list.map((item) => [String(item['name']), item]));
}

/**
 * The three-way merge of `kubectl apply` and server-side apply: `desired` over `live`, minus what
 * `last` (the previous desired) had and `desired` no longer has. Maps merge by key, named lists by
 * name, any other value is `desired`'s.
 */
export function mergeManaged(live: unknown, desired: unknown, last: unknown): unknown {
  if (isObject(desired)) {
    const previous = isObject(last) ? last : {};
    const base: Json = Object.fromEntries(Object.entries(isObject(live) ? live : {}).filter(([key]) => key in desired || !(key in previous)));
    for (const [key, value] of Object.entries(desired)) base[key] = mergeManaged(base[key], value, previous[key]);
    return base;
  }
  if (isNamedList(desired) && (live === undefined || isNamedList(live))) {
    const wanted = named(desired);
    const before = named(isNamedList(last) ? last : []);
    const kept = (live ?? []).filter((item) => wanted.has(String(item['name'])) || !before.has(String(item['name'])));
    const merged = kept.map((item) => {
      const name = String(item['name']);
      const want = wanted.get(name);
      return want ? (mergeManaged(item, want, before.get(name)) as Json) : item;
    });
    const present = new Set(kept.map((item) => String(item['name'])));
    return [...merged, ...desired.filter((item) => !present.has(String(item['name'])))];
  }
  return desired;
}

function annotationsOf(object: Json): Json {
  const meta = isObject(object['metadata']) ? object['metadata'] : {};
  return isObject(meta['annotations']) ? meta['annotations'] : {};
}

/** `desired` with the annotation recording it. */
function withRecord(desired: Json): Json {
  const meta = isObject(desired['metadata']) ? desired['metadata'] : {};
  return { ...desired, metadata: { ...meta, annotations: { ...annotationsOf(desired), [LAST_APPLIED_ANNOTATION]: JSON.stringify(desired) } } };
}

/** What `live` becomes when `desired` is applied to it; equal to `live` when nothing meshpilot manages changed. */
export function appliedObject(live: Json, desired: Json): Json {
  const record = annotationsOf(live)[LAST_APPLIED_ANNOTATION];
  let last: unknown;
  try {
    last = typeof record === 'string' ? JSON.parse(record) : undefined;
  } catch {
    last = undefined;
  }
  return mergeManaged(live, withRecord(desired), last === undefined ? undefined : withRecord(last as Json)) as Json;
}

export type ApplyResult = 'created' | 'updated' | 'unchanged';

/**
 * Creates `desired` at `collection` (its `/api/v1/namespaces/NS/services` path), or updates the
 * live object when what meshpilot manages differs. A conflict (someone wrote in between) throws:
 * the caller tries again with the newer object.
 */
export async function applyManaged(connection: KubeConnection, collection: string, desired: Json, timeoutMs: number): Promise<ApplyResult> {
  const name = String((desired['metadata'] as Json | undefined)?.['name']);
  const path = `${collection}/${name}`;
  const read = await requestJson(connection, 'GET', path, { timeoutMs });
  if (read.statusCode === 404) {
    const created = await requestJson(connection, 'POST', collection, { body: withRecord(desired), timeoutMs });
    if (created.statusCode !== 201 && created.statusCode !== 200) throw new Error(`POST ${collection}: ${String(created.statusCode)} ${statusMessage(created.body)}`);
    return 'created';
  }
  if (read.statusCode !== 200) throw new Error(`GET ${path}: ${String(read.statusCode)} ${statusMessage(read.body)}`);
  const live = JSON.parse(read.body) as Json;
  const next = appliedObject(live, desired);
  if (isDeepStrictEqual(next, live)) return 'unchanged';
  const updated = await requestJson(connection, 'PUT', path, { body: next, timeoutMs });
  if (updated.statusCode !== 200) throw new Error(`PUT ${path}: ${String(updated.statusCode)} ${statusMessage(updated.body)}`);
  return 'updated';
}
