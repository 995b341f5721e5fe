// The Kubernetes source: informers on the API server feed the same converters as the YAML
// directory, and every change is published to the config store as one complete snapshot.
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { ConfigStore, ObjectWarnings, RejectedObject, SourceSnapshot } from '../../model/store.ts';
import { ruleLabel } from '../../model/rules.ts';
import type { AcceptedObject, ParsedObject } from '../kube-objects.ts';
import { assembleObjects, isAccepted, parseObject } from '../kube-objects.ts';
import { guardReferences } from '../reference-guard.ts';
import type { Discovery, ServedResource } from './discovery.ts';
import { discover } from './discovery.ts';
import type { KubeConnection } from './kube-api.ts';
import type { InformerTuning } from './resilient-informer.ts';
import { DEFAULT_INFORMER_TUNING, ResilientInformer } from './resilient-informer.ts';
import type { WatchedResource } from './resources.ts';
import type { GatewayApiOptions } from '../gateway-api-listeners.ts';
import { apiVersionOf, collectionPath, objectPath, resourceId, WATCHED_RESOURCES } from './resources.ts';
import { ProblemLog, type LoggedProblem } from '../problem-log.ts';

export interface KubeSourceTuning extends InformerTuning {
  /** Changes arriving within this window are published together (a relist is one publish). */
  readonly coalesceMs: number;
  /** How often discovery looks again for CRDs installed or removed since. */
  readonly discoveryIntervalMs: number;
}

export const DEFAULT_KUBE_SOURCE_TUNING: KubeSourceTuning = { ...DEFAULT_INFORMER_TUNING, coalesceMs: 10, discoveryIntervalMs: 60_000 };

export interface KubeSourceOptions {
  readonly connection: KubeConnection;
  readonly store: ConfigStore;
  readonly log: Logger;
  /** Watch only these namespaces (default: all). */
  readonly namespaces?: readonly string[];
  readonly tuning?: Partial<KubeSourceTuning>;
  /** Which GatewayClasses meshpilot serves. */
  readonly gatewayApi?: GatewayApiOptions;
}

interface Entry {
  readonly parsed: ParsedObject;
  /** The converted form; an update that converts to the same thing is a duplicate. */
  readonly signature: string;
  readonly lastGood: AcceptedObject | undefined;
}

/** An Istio object whose status the leader may write: where it is, which generation, and its status now. */
export interface StatusTarget {
  /** `Kind/namespace/name`. */
  readonly key: string;
  readonly group: string;
  readonly version: string;
  readonly plural: string;
  readonly kind: string;
  /** '' for a cluster-scoped object (a GatewayClass). */
  readonly namespace: string;
  readonly name: string;
  /** Its API path, the source location its rules and problems carry. */
  readonly path: string;
  readonly generation: number | undefined;
  readonly resourceVersion: string | undefined;
  readonly status: Readonly<Record<string, unknown>> | undefined;
}

export type StatusTargetListener = (key: string, target: StatusTarget | undefined) => void;

interface Watched {
  readonly served: ServedResource;
  readonly informers: readonly ResilientInformer[];
}

const MAX_REASONS = 5;

function describe(resource: ServedResource): string {
  return `${apiVersionOf(resource.resource, resource.version)} ${resource.resource.kind}`;
}

export class KubeSource {
  readonly sourceId: string;
  readonly whenSynced: Promise<void>;
  readonly #connection: KubeConnection;
  readonly #store: ConfigStore;
  readonly #log: Logger;
  readonly #namespaces: readonly string[] | undefined;
  readonly #tuning: KubeSourceTuning;
  readonly #watched = new Map<string, Watched>();
  readonly #objects = new Map<string, Entry>();
  readonly #existingNamespaces = new Set<string>();
  readonly #reportedMissing = new Set<string>();
  readonly #gatewayApi: GatewayApiOptions | undefined;
  #pendingReasons: string[] = [];
  #publishTimer: NodeJS.Timeout | undefined;
  #discoveryTimer: NodeJS.Timeout | undefined;
  #discoveryFailures = 0;
  #discovered = false;
  #synced = false;
  #stopped = false;
  #published: string | undefined;
  readonly #problemLog: ProblemLog;
  /** What each object was when last published, for edits that break a reference. */
  #served = new Map<string, AcceptedObject>();
  readonly #statusTargets = new Map<string, StatusTarget>();
  readonly #statusListeners = new Set<StatusTargetListener>();
  #markSynced: () => void = () => undefined;

  constructor(options: KubeSourceOptions) {
    this.#connection = options.connection;
    this.sourceId = `kube:${options.connection.server}`;
    this.#store = options.store;
    this.#namespaces = options.namespaces && options.namespaces.length > 0 ? options.namespaces : undefined;
    this.#gatewayApi = options.gatewayApi;
    this.#tuning = { ...DEFAULT_KUBE_SOURCE_TUNING, ...options.tuning };
    this.#log = options.log.child({ source: this.sourceId });
    this.#problemLog = new ProblemLog(this.#log);
    this.whenSynced = new Promise((resolve) => {
      this.#markSynced = resolve;
    });
  }

  /** True once discovery ran and every informer finished its first list (then the first snapshot is published). */
  get synced(): boolean {
    return this.#synced;
  }

  /** Starts discovery and the informers; never throws: the API server may come later. */
  start(): void {
    this.#stopped = false;
    this.#log.info({ origin: this.#connection.origin, namespaces: this.#namespaces ?? 'all' }, `watching the Kubernetes API at ${this.#connection.server}`);
    for (const resource of WATCHED_RESOURCES.filter((r) => !r.optional)) this.#watch({ resource, version: resource.versions[0] ?? 'v1' });
    void this.#discover();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#publishTimer);
    clearTimeout(this.#discoveryTimer);
    await Promise.all([...this.#watched.values()].flatMap((watched) => watched.informers.map((informer) => informer.stop())));
    this.#watched.clear();
  }

  /** Namespaces that exist and are watched (all of them without --namespaces). */
  namespaces(): string[] {
    const existing = [...this.#existingNamespaces];
    return this.#namespaces ? existing.filter((namespace) => this.#namespaces?.includes(namespace)) : existing;
  }

  /** Per informer: its path and state, for logs and tests. */
  informers(): { path: string; state: string; lastError?: string }[] {
    return [...this.#watched.values()].flatMap((watched) =>
      watched.informers.map((informer) => ({ path: informer.path, state: informer.state, ...(informer.lastError ? { lastError: informer.lastError } : {}) })),
    );
  }

  /** Every watched Istio object with a status subresource, as the informers last saw it (status included). */
  statusTargets(): StatusTarget[] {
    return [...this.#statusTargets.values()];
  }

  statusTarget(key: string): StatusTarget | undefined {
    return this.#statusTargets.get(key);
  }

  /** Called on every add, update (status-only ones too) and removal of a status target. */
  onStatusTarget(listener: StatusTargetListener): () => void {
    this.#statusListeners.add(listener);
    return () => this.#statusListeners.delete(listener);
  }

  #watch(served: ServedResource): void {
    const { resource, version } = served;
    const paths = resource.namespaced && this.#namespaces ? this.#namespaces.map((ns) => collectionPath(resource, version, ns)) : [collectionPath(resource, version)];
    const informers = paths.map(
      (path) =>
        new ResilientInformer({
          connection: this.#connection,
          path,
          apiVersion: apiVersionOf(resource, version),
          kind: resource.kind,
          tuning: this.#tuning,
          log: this.#log,
          handlers: {
            upsert: (object) => {
              this.#upsert(served, object);
            },
            remove: (object) => {
              this.#remove(served, object);
            },
          },
        }),
    );
    this.#watched.set(resourceId(resource), { served, informers });
    for (const informer of informers) {
      informer.start();
      void informer.whenSynced.then(() => {
        this.#checkSynced();
      });
    }
  }

  async #discover(): Promise<void> {
    if (this.#stopped) return;
    const optional = WATCHED_RESOURCES.filter((resource) => resource.optional);
    let discovery: Discovery;
    try {
      discovery = await discover(this.#connection, optional, this.#tuning.listTimeoutMs);
    } catch (error) {
      this.#discoveryFailures++;
      const retryInMs = Math.min(this.#tuning.backoffMaxMs, this.#tuning.backoffInitialMs * 2 ** Math.min(this.#discoveryFailures - 1, 20));
      this.#log[this.#discoveryFailures === 1 ? 'warn' : 'debug']({ err: error, retryInMs }, 'API discovery failed; retrying');
      this.#scheduleDiscovery(retryInMs);
      return;
    }
    if (this.#halted()) return;
    this.#discoveryFailures = 0;
    await this.#applyDiscovery(discovery);
    this.#discovered = true;
    this.#checkSynced();
    this.#scheduleDiscovery(this.#tuning.discoveryIntervalMs);
  }

  /** Read through a method: the flag changes while an await is pending. */
  #halted(): boolean {
    return this.#stopped;
  }

  #scheduleDiscovery(ms: number): void {
    if (this.#stopped) return;
    this.#discoveryTimer = setTimeout(() => {
      void this.#discover();
    }, ms);
    this.#discoveryTimer.unref();
  }

  async #applyDiscovery(discovery: Discovery): Promise<void> {
    for (const served of discovery.served) {
      if (this.#watched.has(resourceId(served.resource))) continue;
      this.#reportedMissing.delete(resourceId(served.resource));
      if (this.#discovered) this.#log.info({ kind: served.resource.kind, version: served.version }, `${describe(served)} is now served; watching it`);
      this.#watch(served);
    }
    const newlyMissing: WatchedResource[] = [];
    for (const resource of discovery.missing) {
      const id = resourceId(resource);
      const watched = this.#watched.get(id);
      if (watched) {
        this.#log.warn({ kind: resource.kind }, `${describe(watched.served)} is no longer served (CRD removed); its objects are dropped`);
        this.#watched.delete(id);
        await Promise.all(watched.informers.map((informer) => informer.stop()));
        for (const key of [...this.#objects.keys()]) if (key.startsWith(`${id}/`)) this.#objects.delete(key);
        for (const key of [...this.#statusTargets.keys()]) if (key.startsWith(`${id}/`)) this.#setStatusTarget(key, undefined);
        this.#changed(`${resource.kind} no longer served`);
      }
      if (!this.#reportedMissing.has(id)) newlyMissing.push(resource);
      this.#reportedMissing.add(id);
    }
    if (newlyMissing.length > 0) {
      const names = newlyMissing.map((resource) => `${resource.kind} (${resource.group})`).join(', ');
      this.#log.info(
        { kinds: newlyMissing.map((resource) => resource.kind) },
        `CRDs not installed, not watched: ${names}; looked for again every ${Math.round(this.#tuning.discoveryIntervalMs / 1000)} s`,
      );
    }
  }

  #checkSynced(): void {
    if (this.#synced || this.#stopped || !this.#discovered) return;
    if (![...this.#watched.values()].every((watched) => watched.informers.every((informer) => informer.synced))) return;
    this.#synced = true;
    for (const namespace of this.#namespaces ?? []) {
      if (!this.#existingNamespaces.has(namespace)) this.#log.warn({ namespace }, `--namespaces names ${namespace}, which does not exist (yet); nothing is served from it until it does`);
    }
    this.#publish(['initial list']);
    this.#markSynced();
  }

  /** Where an event's object lives; Namespaces only update the set of existing namespaces. */
  #identify(served: ServedResource, raw: KubernetesObject, exists: boolean): { name: string; namespace: string | undefined; key: string; label: string } | undefined {
    const name = raw.metadata?.name;
    if (name === undefined) return undefined;
    if (served.resource.kind === 'Namespace') {
      if (exists) this.#existingNamespaces.add(name);
      else this.#existingNamespaces.delete(name);
    }
    const namespace = raw.metadata?.namespace;
    const key = `${resourceId(served.resource)}/${namespace ?? ''}/${name}`;
    return { name, namespace, key, label: `${served.resource.kind} ${namespace ? `${namespace}/` : ''}${name}` };
  }

  #upsert(served: ServedResource, raw: KubernetesObject): void {
    const id = this.#identify(served, raw, true);
    if (!id) return;
    const object = { ...raw, apiVersion: raw.apiVersion ?? apiVersionOf(served.resource, served.version), kind: raw.kind ?? served.resource.kind };
    const location = objectPath(served.resource, served.version, id.namespace, id.name);
    const generation = raw.metadata?.generation;
    if (served.resource.statusSubresource) {
      const { group, plural, kind } = served.resource;
      const status = (raw as { status?: unknown }).status;
      this.#setStatusTarget(id.key, {
        key: id.key,
        group,
        version: served.version,
        plural,
        kind,
        namespace: id.namespace ?? '',
        name: id.name,
        path: location,
        generation,
        resourceVersion: raw.metadata?.resourceVersion,
        status: typeof status === 'object' && status !== null ? (status as Record<string, unknown>) : undefined,
      });
    }
    const parsed = parseObject({ object, source: { origin: 'kube', location, ...(generation !== undefined ? { generation } : {}) } });
    const signature = JSON.stringify(parsed);
    const previous = this.#objects.get(id.key);
    // Status-only updates, resyncs and re-sent objects convert to the same thing: no push.
    if (previous?.signature === signature) return;
    const lastGood = isAccepted(parsed) ? parsed : previous && isAccepted(previous.parsed) ? previous.parsed : previous?.lastGood;
    this.#objects.set(id.key, { parsed, signature, lastGood });
    this.#changed(`${previous ? 'updated' : 'added'} ${id.label}`);
  }

  #remove(served: ServedResource, raw: KubernetesObject): void {
    const id = this.#identify(served, raw, false);
    if (id && this.#statusTargets.has(id.key)) this.#setStatusTarget(id.key, undefined);
    if (id && this.#objects.delete(id.key)) this.#changed(`deleted ${id.label}`);
  }

  #setStatusTarget(key: string, target: StatusTarget | undefined): void {
    if (target) this.#statusTargets.set(key, target);
    else this.#statusTargets.delete(key);
    for (const listener of this.#statusListeners) listener(key, target);
  }

  #changed(reason: string): void {
    this.#pendingReasons.push(reason);
    // Before the first complete list nothing is published: a half-listed cluster is not the cluster.
    if (!this.#synced || this.#publishTimer) return;
    this.#publishTimer = setTimeout(() => {
      this.#publishTimer = undefined;
      const reasons = this.#pendingReasons;
      this.#pendingReasons = [];
      this.#publish(reasons);
    }, this.#tuning.coalesceMs);
  }

  #publish(reasons: readonly string[]): void {
    if (this.#stopped) return;
    const parsed: ParsedObject[] = [];
    for (const entry of this.#objects.values()) {
      if (entry.parsed.type === 'rejected' && entry.lastGood) {
        parsed.push(entry.lastGood, { ...entry.parsed, rejected: { ...entry.parsed.rejected, keptLastGood: true } });
      } else {
        parsed.push(entry.parsed);
      }
    }
    const guarded = guardReferences(parsed, { lastServed: (key) => this.#served.get(key), firstRead: this.#served.size === 0 && this.#published === undefined });
    this.#served = new Map(guarded.filter(isAccepted).map((object) => [object.key, object]));
    const converted = assembleObjects(guarded, this.#gatewayApi ? { gatewayApi: this.#gatewayApi } : {});
    const snapshot: SourceSnapshot = { services: converted.services, endpoints: converted.endpoints, rules: converted.rules, rejected: converted.rejected, warnings: converted.warnings, routeStatuses: converted.routeStatuses, gatewayStatuses: converted.gatewayStatuses };
    const signature = JSON.stringify(snapshot);
    if (signature === this.#published) {
      this.#log.debug({ reasons }, 'objects changed but the config they describe did not');
      return;
    }
    this.#published = signature;
    this.#logRejections(converted.rejected, [
      ...converted.rules.map((rule) => ({ object: ruleLabel(rule.meta), source: rule.meta.source, issues: rule.meta.warnings ?? [] })),
      ...converted.warnings,
    ]);
    const reason = reasons.length > MAX_REASONS ? `${reasons.slice(0, MAX_REASONS).join(', ')} and ${reasons.length - MAX_REASONS} more` : reasons.join(', ');
    this.#store.publish(this.sourceId, snapshot, reason);
    this.#log.info(
      {
        reason,
        services: snapshot.services.length,
        endpoints: snapshot.endpoints.length,
        rules: snapshot.rules.length,
        rejected: snapshot.rejected.length,
        ...(Object.keys(converted.ignored).length > 0 ? { ignored: converted.ignored } : {}),
      },
      `published the cluster: ${snapshot.services.length} services, ${snapshot.endpoints.length} endpoints, ${snapshot.rules.length} rules, ${snapshot.rejected.length} rejected`,
    );
  }

  /** One warning per rejected object, and per warning about a served one, when it first appears, naming its API path and field. */
  #logRejections(rejected: readonly RejectedObject[], warned: readonly Pick<ObjectWarnings, 'object' | 'source' | 'issues'>[]): void {
    const warnings = warned.flatMap((object) =>
      object.issues.map((warning): LoggedProblem => ({
        signature: JSON.stringify([object.source.location, warning]),
        fields: { code: warning.code, object: object.object, path: object.source.location, field: warning.path, severity: 'warning' },
        message: `${warning.code}: ${object.object} (${object.source.location}): ${warning.path}: ${warning.message}`,
      })),
    );
    const rejections = rejected.map((object): LoggedProblem => {
      const first = object.issues.find((issue) => issue.severity === 'error') ?? object.issues[0];
      const code = first?.code ?? 'MP_OBJECT_INVALID';
      const kept = object.keptLastGood ? '; still serving its last good version' : '';
      return {
        signature: JSON.stringify([object.source.location, object.issues]),
        fields: { code, object: object.object, path: object.source.location, field: first?.path, keptLastGood: object.keptLastGood },
        message: `${code}: ${object.object} (${object.source.location})${first?.path ? `: ${first.path}` : ''}: ${first?.message ?? 'rejected'}${kept}`,
      };
    });
    this.#problemLog.report([...warnings, ...rejections]);
  }
}
