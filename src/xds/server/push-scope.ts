// What a push may have changed, per type: every resource ('all') or only some names. The push
// pipeline computes it; a connection merges the scopes it has not been sent yet.
import type { ResourceTypeUrl } from '../type-urls.ts';
import { PUSH_ORDER } from '../type-urls.ts';

export type TypeScope = 'all' | ReadonlySet<string>;
export type PushScope = ReadonlyMap<ResourceTypeUrl, TypeScope>;

export const FULL_SCOPE: PushScope = new Map(PUSH_ORDER.map((t) => [t, 'all' as const]));

export function mergeTypeScope(a: TypeScope | undefined, b: TypeScope): TypeScope {
  if (a === undefined) return b;
  if (a === 'all' || b === 'all') return 'all';
  if (a.size === 0) return b;
  if (b.size === 0) return a;
  return new Set([...a, ...b]);
}

export function scopeIsEmpty(scope: PushScope): boolean {
  for (const value of scope.values()) if (value === 'all' || value.size > 0) return false;
  return true;
}

export function describeScope(scope: PushScope): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  for (const [typeUrl, value] of scope) out[typeUrl.slice(typeUrl.lastIndexOf('.') + 1)] = value === 'all' ? 'all' : value.size;
  return out;
}
