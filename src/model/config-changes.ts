// Which config objects changed between two snapshots, by key (Istio's ConfigsUpdated): the store
// records them as sources publish and a push carries their union, so nothing downstream compares
// whole snapshots. A service and its endpoints are keyed by hostname; a rule changes when its spec
// (or its creation time, which orders merging) does, not when only where it was read from does.
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

/** The endpoints of one host as the index holds them, and how far this update has matched them. */
interface HostEndpoints {
  readonly key: string;
  held: readonly Endpoint[];
  /** The update that last saw this host. */
  epoch: number;
  /** Endpoints seen in this update. */
  count: number;
  /** This update's list, once it differs from `held`. */
  fresh: Endpoint[] | undefined;
}

/**
 * The objects of the last snapshot by change key, updated in place by each new snapshot: an
 * unchanged object costs no new key, entry or list, so a burst of publishes that each move one
 * endpoint leaves next to no garbage (entries live long, and V8 allocates such objects in the old
 * generation, where only a full collection reclaims them).
 */
export class ConfigIndex {
  readonly #versions = new ContentVersions();
  readonly #index = new Map<string, Entry>();
  /** The update in which each key was last seen. */
  readonly #seen = new Map<string, number>();
  readonly #hosts = new Map<string, HostEndpoints>();
  #epoch = 0;

  /** Takes `snapshot` as the current one; returns the objects it added, updated or deleted. */
  update(snapshot: SourceSnapshot): ConfigChanges {
    const epoch = ++this.#epoch;
    const changes = new Map<string, ConfigChange>();
    /** What the previous snapshot held for a key this update has replaced (a key can appear twice: the last wins). */
    const replaced = new Map<string, Entry | undefined>();
    const visit = (key: string, entry: Entry): void => {
      this.#seen.set(key, epoch);
      const before = replaced.has(key) ? replaced.get(key) : this.#index.get(key);
      if (!replaced.has(key)) {
        if (before === entry) return;
        replaced.set(key, before);
      }
      this.#index.set(key, entry);
      changes.delete(key);
      if (before === undefined) changes.set(key, { kind: entry.kind, namespace: entry.namespace, name: entry.name, event: 'add' });
      else if (!sameContent(before, entry, this.#versions)) changes.set(key, { kind: entry.kind, namespace: entry.namespace, name: entry.name, event: 'update' });
    };
    for (const service of snapshot.services) {
      const entry = this.#versions.entry(SERVICE_KIND, service.namespace, service.hostname, service);
      visit(entry.key, entry);
    }
    this.#groupEndpoints(snapshot.endpoints, epoch);
    this.#hosts.forEach((group, host) => {
      if (group.epoch !== epoch) {
        this.#hosts.delete(host);
        return;
      }
      if (!group.fresh && group.count === group.held.length) {
        this.#seen.set(group.key, epoch);
        return;
      }
      group.held = group.fresh ?? group.held.slice(0, group.count);
      visit(group.key, { kind: ENDPOINTS_KIND, namespace: '', name: host, content: group.held });
    });
    for (const credential of snapshot.credentials ?? []) {
      const entry = this.#versions.entry(CREDENTIAL_KIND, credential.namespace, credential.name, credential);
      visit(entry.key, entry);
    }
    // The entry's key is the rule's key (ruleKey): kind/namespace/name.
    for (const { meta, spec } of snapshot.rules) {
      const entry = this.#versions.entry(meta.kind, meta.namespace, meta.name, spec, meta.creationTimestamp);
      visit(entry.key, entry);
    }
    this.#index.forEach((entry, key) => {
      if (this.#seen.get(key) === epoch) return;
      this.#index.delete(key);
      this.#seen.delete(key);
      changes.set(key, { kind: entry.kind, namespace: entry.namespace, name: entry.name, event: 'delete' });
    });
    return changes;
  }

  /** Every object held, as added: what a first push carries. */
  everything(): ConfigChanges {
    const changes = new Map<string, ConfigChange>();
    this.#index.forEach((entry, key) => {
      changes.set(key, { kind: entry.kind, namespace: entry.namespace, name: entry.name, event: 'add' });
    });
    return changes;
  }

  /** Matches each host's endpoints against what the index holds, copying a host's list only where it differs. */
  #groupEndpoints(endpoints: readonly Endpoint[], epoch: number): void {
    for (const endpoint of endpoints) {
      const host = endpoint.serviceHostname;
      let group = this.#hosts.get(host);
      if (!group) {
        group = { key: `${ENDPOINTS_KIND}//${host}`, held: [], epoch, count: 0, fresh: undefined };
        this.#hosts.set(host, group);
      } else if (group.epoch !== epoch) {
        group.epoch = epoch;
        group.count = 0;
        group.fresh = undefined;
      }
      if (group.fresh) group.fresh.push(endpoint);
      else if (group.held[group.count] !== endpoint) group.fresh = [...group.held.slice(0, group.count), endpoint];
      group.count++;
    }
  }
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

export function diffSnapshots(before: SourceSnapshot, after: SourceSnapshot): ConfigChanges {
  const index = new ConfigIndex();
  index.update(before);
  return index.update(after);
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
