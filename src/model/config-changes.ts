// Which config objects changed between two snapshots, by key (Istio's ConfigsUpdated): the store
// records them as sources publish and a push carries their union, so nothing downstream compares
// whole snapshots. A service and its endpoints are keyed by hostname; a rule changes when its spec
// (or its creation time, which orders merging) does, not when only where it was read from does.
import { ruleKey } from './rules.ts';
import type { Endpoint } from './service.ts';
import type { SourceSnapshot } from './store.ts';

export type ChangeEvent = 'add' | 'update' | 'delete';

/** Kinds that are not rules: a service by hostname, and the endpoints of a hostname. */
export const SERVICE_KIND = 'Service';
export const ENDPOINTS_KIND = 'Endpoints';
/** A Kubernetes TLS Secret, by namespace and name. */
export const CREDENTIAL_KIND = 'Secret';

export interface ConfigChange {
  readonly kind: string;
  /** Empty for endpoints, which are known by their service's hostname alone. */
  readonly namespace: string;
  /** The rule's name; the hostname for a service or its endpoints. */
  readonly name: string;
  readonly event: ChangeEvent;
}

/** Changed objects by key: `ruleKey` for rules, `Kind/namespace/hostname` for services and endpoints. */
export type ConfigChanges = ReadonlyMap<string, ConfigChange>;

/**
 * Content of an object as comparable text, computed once per object (snapshots are immutable),
 * and the index entry of each object, so a source publishing the same objects again (every
 * publish of a burst) allocates no new keys or entries for them.
 */
export class ContentVersions {
  readonly #text = new WeakMap<object, string>();
  readonly #entries = new WeakMap<object, Entry & { readonly key: string }>();

  entry(kind: string, namespace: string, name: string, content: object, created?: string): Entry & { readonly key: string } {
    const known = this.#entries.get(content);
    if (known?.kind === kind && known.namespace === namespace && known.name === name && known.created === created) return known;
    const entry = { key: `${kind}/${namespace}/${name}`, kind, namespace, name, content, ...(created !== undefined ? { created } : {}) };
    this.#entries.set(content, entry);
    return entry;
  }

  of(value: object): string {
    let text = this.#text.get(value);
    if (text === undefined) {
      text = JSON.stringify(value);
      this.#text.set(value, text);
    }
    return text;
  }
}

interface Entry {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  /** What is compared: the service, the rule's spec, or the host's endpoints. */
  readonly content: object;
  /** A rule's creation time, which orders how rules of one host merge. */
  readonly created?: string;
}

/** A snapshot's objects by change key. */
export type SnapshotIndex = ReadonlyMap<string, Entry>;

/** `versions` keeps the entries of objects seen before: an unchanged object costs no new key or entry. */
export function indexSnapshot(snapshot: SourceSnapshot, versions = new ContentVersions()): SnapshotIndex {
  const index = new Map<string, Entry>();
  for (const service of snapshot.services) {
    const entry = versions.entry(SERVICE_KIND, service.namespace, service.hostname, service);
    index.set(entry.key, entry);
  }
  const endpoints = new Map<string, Endpoint[]>();
  for (const endpoint of snapshot.endpoints) {
    const list = endpoints.get(endpoint.serviceHostname);
    if (list) list.push(endpoint);
    else endpoints.set(endpoint.serviceHostname, [endpoint]);
  }
  endpoints.forEach((list, host) => {
    index.set(`${ENDPOINTS_KIND}//${host}`, { kind: ENDPOINTS_KIND, namespace: '', name: host, content: list });
  });
  for (const credential of snapshot.credentials ?? []) {
    const entry = versions.entry(CREDENTIAL_KIND, credential.namespace, credential.name, credential);
    index.set(entry.key, entry);
  }
  for (const { meta, spec } of snapshot.rules) {
    const entry = versions.entry(meta.kind, meta.namespace, meta.name, spec, meta.creationTimestamp);
    index.set(ruleKey(meta), entry);
  }
  return index;
}

function sameContent(a: Entry, b: Entry, versions: ContentVersions): boolean {
  if (a.created !== b.created) return false;
  if (a.content === b.content) return true;
  if (!Array.isArray(a.content) || !Array.isArray(b.content)) return versions.of(a.content) === versions.of(b.content);
  // Endpoints: the same set in any order (the push sorts them).
  const x = a.content as readonly Endpoint[];
  const y = b.content as readonly Endpoint[];
  if (x.length !== y.length) return false;
  let same = true;
  for (let i = 0; i < x.length && same; i++) same = x[i] === y[i];
  if (same) return true;
  const left = x.map((e) => versions.of(e)).sort();
  const right = y.map((e) => versions.of(e)).sort();
  return left.every((text, i) => text === right[i]);
}

/** The objects added, updated or deleted from `before` to `after`; unchanged content is no change. */
export function diffIndexes(before: SnapshotIndex, after: SnapshotIndex, versions = new ContentVersions()): ConfigChanges {
  const changes = new Map<string, ConfigChange>();
  // forEach, not entries: a burst of publishes walks thousands of keys each time.
  after.forEach((entry, key) => {
    const old = before.get(key);
    if (old === undefined) changes.set(key, { kind: entry.kind, namespace: entry.namespace, name: entry.name, event: 'add' });
    else if (!sameContent(old, entry, versions)) changes.set(key, { kind: entry.kind, namespace: entry.namespace, name: entry.name, event: 'update' });
  });
  before.forEach((entry, key) => {
    if (!after.has(key)) changes.set(key, { kind: entry.kind, namespace: entry.namespace, name: entry.name, event: 'delete' });
  });
  return changes;
}

export function diffSnapshots(before: SourceSnapshot, after: SourceSnapshot): ConfigChanges {
  return diffIndexes(indexSnapshot(before), indexSnapshot(after));
}

/** Changes in the order they happened, as one: what differs from before the first to after the last. */
export function mergeChanges(sets: Iterable<ConfigChanges>): ConfigChanges {
  const merged = new Map<string, ConfigChange>();
  for (const changes of sets) {
    for (const [key, change] of changes) {
      const earlier = merged.get(key);
      if (earlier?.event === 'add' && change.event === 'delete') merged.delete(key);
      else if (earlier?.event === 'add') merged.set(key, { ...change, event: 'add' });
      else if (earlier?.event === 'delete' && change.event === 'add') merged.set(key, { ...change, event: 'update' });
      else merged.set(key, change);
    }
  }
  return merged;
}

/** Hostnames whose service (or endpoints) changed. */
export function changedHosts(changes: ConfigChanges, kind: typeof SERVICE_KIND | typeof ENDPOINTS_KIND): Set<string> {
  const hosts = new Set<string>();
  for (const change of changes.values()) if (change.kind === kind) hosts.add(change.name);
  return hosts;
}

export function isRuleChange(change: ConfigChange): boolean {
  return change.kind !== SERVICE_KIND && change.kind !== ENDPOINTS_KIND && change.kind !== CREDENTIAL_KIND;
}
