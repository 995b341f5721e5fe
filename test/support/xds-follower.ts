// Clients that follow meshpilot the way Envoy does, over SotW or Delta: wildcard CDS and LDS,
// then EDS for the EDS clusters and RDS for the route configs the listeners name, ACKing every
// response. Each keeps what it holds, so tests can compare what two variants converge to.
import type { Json, JsonObject } from '../../src/xds/proto-json.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, PUSH_ORDER, ROUTE_TYPE } from '../../src/xds/type-urls.ts';
import { RawAdsClient, type Response } from './ads-client.ts';
import { RawDeltaClient, type DeltaResponse } from './delta-client.ts';

export type Held = Record<string, Record<string, string>>;

function collect(json: Json, key: string, out: Set<string>): void {
  if (Array.isArray(json)) for (const item of json) collect(item, key, out);
  else if (json !== null && typeof json === 'object') {
    for (const [k, v] of Object.entries(json)) {
      if (k === key && typeof v === 'string') out.add(v);
      else collect(v, key, out);
    }
  }
}

function edsNames(clusters: Map<string, JsonObject>): Set<string> {
  const out = new Set<string>();
  for (const [name, cluster] of clusters) {
    if (cluster['type'] !== 'EDS') continue;
    const config = cluster['eds_cluster_config'] as JsonObject | undefined;
    out.add(typeof config?.['service_name'] === 'string' ? config['service_name'] : name);
  }
  return out;
}

function routeNames(listeners: Map<string, JsonObject>): Set<string> {
  const out = new Set<string>();
  for (const listener of listeners.values()) collect(listener, 'route_config_name', out);
  return out;
}

interface FollowedClient<R> {
  readonly responses: R[];
  next(predicate: (r: R) => boolean, from: number, timeoutMs: number): Promise<R>;
  send(fields: { typeUrl: string }): void;
  close(): void;
}

abstract class Follower<R, C extends FollowedClient<R>> {
  readonly client: C;
  readonly held = new Map<string, Map<string, JsonObject>>(PUSH_ORDER.map((t) => [t, new Map()]));
  protected eds = new Set<string>();
  protected rds = new Set<string>();
  #stopped = false;
  processed = 0;

  protected abstract handle(response: R): void;

  constructor(client: C) {
    this.client = client;
    this.client.send({ typeUrl: CLUSTER_TYPE });
    this.client.send({ typeUrl: LISTENER_TYPE });
    void this.#loop();
  }

  close(): void {
    this.#stopped = true;
    this.client.close();
  }

  async #loop(): Promise<void> {
    while (!this.#stopped) {
      try {
        await this.client.next(() => true, this.processed, 500);
      } catch {
        continue;
      }
      while (this.processed < this.client.responses.length) this.handle(this.client.responses[this.processed++] as R);
    }
  }

  /** What the client holds, as comparable JSON text per type and name. */
  snapshot(): Held {
    const out: Held = {};
    for (const [type, map] of this.held) {
      out[type] = Object.fromEntries([...map.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([n, j]) => [n, JSON.stringify(j)]));
    }
    return out;
  }

  protected map(type: string): Map<string, JsonObject> {
    return this.held.get(type) ?? new Map<string, JsonObject>();
  }
}

export class SotwFollower extends Follower<Response, RawAdsClient> {
  constructor(xdsPort: number, nodeId: string) {
    super(new RawAdsClient(xdsPort, nodeId));
  }

  protected handle(r: Response): void {
    const map = this.map(r.type_url);
    const nameOf = (j: JsonObject): string => (j['name'] ?? j['cluster_name']) as string;
    if (r.type_url === CLUSTER_TYPE || r.type_url === LISTENER_TYPE) map.clear();
    for (const resource of r.resources) map.set(nameOf(resource), resource);
    const names = r.type_url === ENDPOINT_TYPE ? this.eds : r.type_url === ROUTE_TYPE ? this.rds : undefined;
    this.client.ack(r, names ? [...names] : undefined);
    if (r.type_url === CLUSTER_TYPE) this.#follow(ENDPOINT_TYPE, edsNames(map));
    if (r.type_url === LISTENER_TYPE) this.#follow(ROUTE_TYPE, routeNames(map));
  }

  #follow(type: typeof ENDPOINT_TYPE | typeof ROUTE_TYPE, wanted: Set<string>): void {
    const current = type === ENDPOINT_TYPE ? this.eds : this.rds;
    if (wanted.size === current.size && [...wanted].every((n) => current.has(n))) return;
    if (type === ENDPOINT_TYPE) this.eds = wanted;
    else this.rds = wanted;
    const map = this.map(type);
    for (const name of [...map.keys()]) if (!wanted.has(name)) map.delete(name);
    const last = this.client.responses.filter((x) => x.type_url === type).at(-1);
    this.client.send({ typeUrl: type, names: [...wanted], ...(last ? { version: last.version_info, nonce: last.nonce } : {}) });
  }

}

export class DeltaFollower extends Follower<DeltaResponse, RawDeltaClient> {
  constructor(xdsPort: number, nodeId: string) {
    super(new RawDeltaClient(xdsPort, nodeId));
  }

  protected handle(r: DeltaResponse): void {
    const map = this.map(r.type_url);
    for (const resource of r.resources) map.set(resource.name, resource.resource);
    for (const name of r.removed_resources) map.delete(name);
    this.client.ack(r);
    if (r.type_url === CLUSTER_TYPE) this.#follow(ENDPOINT_TYPE, edsNames(map));
    if (r.type_url === LISTENER_TYPE) this.#follow(ROUTE_TYPE, routeNames(map));
  }

  #follow(type: typeof ENDPOINT_TYPE | typeof ROUTE_TYPE, wanted: Set<string>): void {
    const current = type === ENDPOINT_TYPE ? this.eds : this.rds;
    const subscribe = [...wanted].filter((n) => !current.has(n));
    const unsubscribe = [...current].filter((n) => !wanted.has(n));
    if (subscribe.length === 0 && unsubscribe.length === 0) return;
    if (type === ENDPOINT_TYPE) this.eds = wanted;
    else this.rds = wanted;
    const map = this.map(type);
    for (const name of unsubscribe) map.delete(name);
    this.client.send({ typeUrl: type, subscribe, unsubscribe });
  }

}
