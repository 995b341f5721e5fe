// The config store: each source publishes a complete snapshot of what it knows; the store
// merges them and tells listeners which objects changed. Plain data and callbacks, no I/O.
import type { ConfigChanges } from './config-changes.ts';
import { ConfigIndex } from './config-changes.ts';
import type { Rule, ValidationIssue } from './rules.ts';
import { ruleKey } from './rules.ts';
import type { Endpoint, Service, SourceRef } from './service.ts';
import type { GatewayObjectStatus, RouteStatus } from './route-status.ts';
import type { TlsCredential } from './credentials.ts';

/** An object a source could not accept; the last good version of it (if any) stays served. */
export interface RejectedObject {
  readonly source: SourceRef;
  /** `Kind namespace/name` when the object got that far, else what is known (e.g. `document 3`). */
  readonly object: string;
  readonly kind?: string;
  readonly namespace?: string;
  readonly name?: string;
  readonly issues: readonly ValidationIssue[];
  /** True when an earlier good version of the object is still being served. */
  readonly keptLastGood: boolean;
}

/** A served object with something to say about it: a field meshpilot ignores, a host an older entry owns. */
export interface ObjectWarnings {
  readonly source: SourceRef;
  /** `Kind namespace/name`. */
  readonly object: string;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly issues: readonly ValidationIssue[];
}

export interface SourceSnapshot {
  readonly services: readonly Service[];
  readonly endpoints: readonly Endpoint[];
  readonly rules: readonly Rule[];
  readonly rejected: readonly RejectedObject[];
  /** Served objects that are not rules, with their warnings (rules carry theirs in `meta.warnings`). */
  readonly warnings?: readonly ObjectWarnings[];
  /** Gateway API routes' status per parent, as computed from this source's objects. */
  readonly routeStatuses?: readonly RouteStatus[];
  /** Gateway API Gateways and GatewayClasses of meshpilot's classes, with the status they should show. */
  readonly gatewayStatuses?: readonly GatewayObjectStatus[];
  /** Kubernetes TLS Secrets, for gateways' credentialName. */
  readonly credentials?: readonly TlsCredential[];
}

export const EMPTY_SNAPSHOT: SourceSnapshot = { services: [], endpoints: [], rules: [], rejected: [] };

export interface StoreChange {
  readonly sourceId: string;
  readonly reason: string;
  /** The objects of the merged view this publish added, updated or deleted; empty when it changed none. */
  readonly changes: ConfigChanges;
}

export type StoreListener = (change: StoreChange) => void;

export class ConfigStore {
  readonly #snapshots = new Map<string, SourceSnapshot>();
  /** Sources listed first win when two publish the same service or rule. */
  readonly #precedence: string[] = [];
  readonly #listeners = new Set<StoreListener>();
  #merged: SourceSnapshot = EMPTY_SNAPSHOT;
  readonly #index = new ConfigIndex();

  register(sourceId: string): void {
    if (!this.#precedence.includes(sourceId)) this.#precedence.push(sourceId);
  }

  publish(sourceId: string, snapshot: SourceSnapshot, reason: string): void {
    this.register(sourceId);
    this.#snapshots.set(sourceId, snapshot);
    this.#merged = this.#merge();
    const changes = this.#index.update(this.#merged);
    for (const listener of this.#listeners) listener({ sourceId, reason, changes });
  }

  has(sourceId: string): boolean {
    return this.#snapshots.has(sourceId);
  }

  current(): SourceSnapshot {
    return this.#merged;
  }

  /** Every object served now, as added: what a first push carries. */
  everything(): ConfigChanges {
    return this.#index.everything();
  }

  onChange(listener: StoreListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #merge(): SourceSnapshot {
    // A source with nothing (an empty config directory beside the cluster) adds nothing: with one
    // source left, its snapshot is the merged view, and a burst of its publishes copies nothing.
    const ordered = this.#precedence.map((id) => this.#snapshots.get(id)).filter((s): s is SourceSnapshot => !!s && !isEmpty(s));
    if (ordered.length === 0) return EMPTY_SNAPSHOT;
    if (ordered.length === 1 && ordered[0]) return ordered[0];
    const services = new Map<string, Service>();
    const endpointOwners = new Map<string, number>();
    const rules = new Map<string, Rule>();
    const endpoints: Endpoint[] = [];
    const rejected: RejectedObject[] = [];
    const warnings: ObjectWarnings[] = [];
    const routeStatuses: RouteStatus[] = [];
    const gatewayStatuses: GatewayObjectStatus[] = [];
    const credentials = new Map<string, TlsCredential>();
    ordered.forEach((snapshot, index) => {
      for (const service of snapshot.services) if (!services.has(service.hostname)) services.set(service.hostname, service);
      for (const rule of snapshot.rules) if (!rules.has(ruleKey(rule.meta))) rules.set(ruleKey(rule.meta), rule);
      // Endpoints of a service come from the one source that owns the service's endpoints.
      for (const endpoint of snapshot.endpoints) {
        const owner = endpointOwners.get(endpoint.serviceHostname);
        if (owner === undefined) endpointOwners.set(endpoint.serviceHostname, index);
        if (owner === undefined || owner === index) endpoints.push(endpoint);
      }
      rejected.push(...snapshot.rejected);
      warnings.push(...(snapshot.warnings ?? []));
      routeStatuses.push(...(snapshot.routeStatuses ?? []));
      gatewayStatuses.push(...(snapshot.gatewayStatuses ?? []));
      for (const credential of snapshot.credentials ?? []) if (!credentials.has(`${credential.namespace}/${credential.name}`)) credentials.set(`${credential.namespace}/${credential.name}`, credential);
    });
    return { services: [...services.values()], endpoints, rules: [...rules.values()], rejected, warnings, routeStatuses, gatewayStatuses, credentials: [...credentials.values()] };
  }
}

function isEmpty(snapshot: SourceSnapshot): boolean {
  const lists = [snapshot.services, snapshot.endpoints, snapshot.rules, snapshot.rejected, snapshot.warnings, snapshot.routeStatuses, snapshot.gatewayStatuses, snapshot.credentials];
  return lists.every((list) => list === undefined || list.length === 0);
}
