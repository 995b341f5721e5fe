// Resource-level and field-level differences between two sets of xDS resources (preview).
import { isDeepStrictEqual } from 'node:util';
import type { Json, JsonObject } from './proto-json.ts';
import type { EnvoyResource } from './resource.ts';
import { redactSecret } from './config-dump.ts';
import { SECRET_TYPE } from './type-urls.ts';

export interface FieldChange {
  /** e.g. `virtual_hosts[name=reviews:9080].routes[name=default/reviews/http[1]].route.timeout` */
  readonly path: string;
  /** Absent when the field is new. */
  readonly before?: Json;
  /** Absent when the field is gone. */
  readonly after?: Json;
}

export interface ResourceChanges {
  readonly added: readonly string[];
  readonly removed: readonly string[];
  readonly changed: readonly { readonly name: string; readonly fields: readonly FieldChange[] }[];
}

function isObject(value: Json | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The key that identifies an element of a list of named messages, if every element has a unique one. */
function elementKeys(list: readonly Json[]): string[] | undefined {
  const keys: string[] = [];
  for (const item of list) {
    if (!isObject(item)) return undefined;
    const key = typeof item['name'] === 'string' ? item['name'] : undefined;
    if (key === undefined || keys.includes(key)) return undefined;
    keys.push(key);
  }
  return keys;
}

/** Structural equality: an object's key order is no difference, a list's order is. */
function equal(a: Json | undefined, b: Json | undefined): boolean {
  return isDeepStrictEqual(a, b);
}

function change(path: string, before: Json | undefined, after: Json | undefined): FieldChange {
  return { path, ...(before !== undefined ? { before } : {}), ...(after !== undefined ? { after } : {}) };
}

/** Leaf-level changes; lists of named messages are compared by name (and their order). */
export function diffJson(before: Json | undefined, after: Json | undefined, path = ''): FieldChange[] {
  if (equal(before, after)) return [];
  if (isObject(before) && isObject(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    return keys.flatMap((k) => diffJson(before[k], after[k], path ? `${path}.${k}` : k));
  }
  if (Array.isArray(before) && Array.isArray(after)) {
    const beforeKeys = elementKeys(before);
    const afterKeys = elementKeys(after);
    if (beforeKeys && afterKeys) {
      const out: FieldChange[] = [];
      const common = beforeKeys.filter((k) => afterKeys.includes(k));
      // Route order decides which route wins, so a reorder is a change of its own.
      if (!equal(common, afterKeys.filter((k) => beforeKeys.includes(k)))) out.push(change(`${path}(order)`, beforeKeys, afterKeys));
      for (const key of [...new Set([...beforeKeys, ...afterKeys])]) {
        const b = before[beforeKeys.indexOf(key)];
        const a = after[afterKeys.indexOf(key)];
        out.push(...diffJson(beforeKeys.includes(key) ? b : undefined, afterKeys.includes(key) ? a : undefined, `${path}[name=${key}]`));
      }
      return out;
    }
    const out: FieldChange[] = [];
    for (let i = 0; i < Math.max(before.length, after.length); i++) out.push(...diffJson(before[i], after[i], `${path}[${i}]`));
    return out;
  }
  return [change(path, before, after)];
}

/** A resource as views show it: a Secret's private key redacted. */
function shown(resource: EnvoyResource): JsonObject {
  return resource.typeUrl === SECRET_TYPE ? redactSecret(resource.json) : resource.json;
}

/** What a proxy holding `before` would see if it were sent `after`. */
export function diffResources(before: readonly EnvoyResource[], after: readonly EnvoyResource[]): ResourceChanges {
  const old = new Map(before.map((r) => [r.name, r]));
  const next = new Map(after.map((r) => [r.name, r]));
  const changed: { name: string; fields: FieldChange[] }[] = [];
  for (const [name, resource] of next) {
    const previous = old.get(name);
    if (previous && previous.version !== resource.version) changed.push({ name, fields: diffJson(shown(previous), shown(resource)) });
  }
  const sorted = (names: Iterable<string>): string[] => [...names].sort();
  return {
    added: sorted([...next.keys()].filter((n) => !old.has(n))),
    removed: sorted([...old.keys()].filter((n) => !next.has(n))),
    changed: changed.sort((a, b) => (a.name < b.name ? -1 : 1)),
  };
}

export function isEmptyChange(changes: ResourceChanges): boolean {
  return changes.added.length === 0 && changes.removed.length === 0 && changes.changed.length === 0;
}
