// What the streams answering one push share: the resources (generated for each proxy, the load
// assignments of a subscription once for all), and each response body, encoded once. A body
// carries no nonce: each stream writes its own after it, so every stream sent the same response
// in this push is sent the same bytes. The server keeps one per push, for as long as the push lives.
import type { PushContext } from '../../model/push-context.ts';
import type { Proxy } from '../../model/proxy.ts';
import type { GenerateFn } from '../generate/index.ts';
import type { EnvoyResource } from '../resource.ts';
import type { ResourceTypeUrl } from '../type-urls.ts';
import { ENDPOINT_TYPE } from '../type-urls.ts';
import { encodeDeltaDiscoveryResponseBody, encodeDiscoveryResponseBody } from './messages.ts';
import type { PlannedResponse, ResourceSource } from './stream-protocol.ts';
import type { Subscription } from './subscription.ts';
import type { StreamMode } from './watch-state.ts';
import type { ResourceWire } from './wire.ts';

/**
 * A body one stream was sent is remembered weakly (it lives while its write does), and kept from
 * the second stream on: a response only one proxy gets keeps no bytes alive.
 */
type Kept = Buffer | WeakRef<Buffer>;

export interface BodyStats {
  /** Bodies encoded for this push. */
  encoded: number;
  /** Writes that reused a body another stream was sent. */
  reused: number;
}

export interface PushResponsesOptions {
  readonly generate: GenerateFn;
  readonly wire: ResourceWire;
  readonly controlPlaneId: string;
}

export class PushResponses implements ResourceSource {
  readonly push: PushContext;
  readonly sequence: number;
  readonly stats: BodyStats = { encoded: 0, reused: 0 };
  readonly #options: PushResponsesOptions;
  readonly #assignments = new WeakMap<Subscription, readonly EnvoyResource[]>();
  /** Whole sets by list, then by `mode type version`. */
  readonly #wholeBodies = new WeakMap<readonly EnvoyResource[], Map<string, Kept>>();
  readonly #partialBodies = new Map<string, Kept>();
  /** A short id per resource this push has put in a partial response: its bodies are keyed by them. */
  readonly #ids = new Map<EnvoyResource, number>();

  constructor(push: PushContext, options: PushResponsesOptions) {
    this.push = push;
    this.sequence = push.sequence;
    this.#options = options;
  }

  generate(typeUrl: ResourceTypeUrl, proxy: Proxy, names?: readonly string[]): readonly EnvoyResource[] {
    return this.#options.generate(typeUrl, this.push, proxy, names);
  }

  subscribed(typeUrl: ResourceTypeUrl, proxy: Proxy, subscription: Subscription): readonly EnvoyResource[] {
    if (typeUrl !== ENDPOINT_TYPE) return this.generate(typeUrl, proxy, subscription.names);
    // Load assignments do not depend on the proxy: streams with the same subscription share one list.
    let list = this.#assignments.get(subscription);
    if (!list) {
      list = this.generate(typeUrl, proxy, subscription.names);
      this.#assignments.set(subscription, list);
    }
    return list;
  }

  /** The encoded response without its nonce: the same Buffer for every stream sent the same response. */
  body(mode: StreamMode, response: PlannedResponse): Buffer {
    const { typeUrl, version, removed } = response;
    const shared = response.shared;
    if (shared) {
      let byKey = this.#wholeBodies.get(shared);
      if (!byKey) {
        byKey = new Map();
        this.#wholeBodies.set(shared, byKey);
      }
      return this.#kept(byKey, `${mode} ${typeUrl} ${version}`, () => this.#encode(mode, typeUrl, shared, [], version));
    }
    const resources = response.resources;
    // Every stream sent the same changes shares their body, however many there are (a burst of
    // endpoint changes reaches every proxy): a copy per stream would be thousands of copies.
    // Removed names come from clients' subscriptions: quoted, so no name can pass for two.
    const key = `${mode} ${typeUrl} ${version} ${resources.map((r) => this.#idOf(r)).join(',')} ${removed.length === 0 ? '' : JSON.stringify(removed)}`;
    return this.#kept(this.#partialBodies, key, () => this.#encode(mode, typeUrl, resources, removed, version));
  }

  #idOf(resource: EnvoyResource): number {
    let id = this.#ids.get(resource);
    if (id === undefined) {
      id = this.#ids.size;
      this.#ids.set(resource, id);
    }
    return id;
  }

  #kept(bodies: Map<string, Kept>, key: string, encode: () => Buffer): Buffer {
    const kept = bodies.get(key);
    const alive = kept instanceof WeakRef ? kept.deref() : kept;
    if (alive) {
      this.stats.reused++;
      if (kept !== alive) bodies.set(key, alive);
      return alive;
    }
    const body = encode();
    // A second stream asking proves the body is shared: from then on it is kept whatever happens to the first.
    bodies.set(key, kept ? body : new WeakRef(body));
    return body;
  }

  #encode(mode: StreamMode, typeUrl: ResourceTypeUrl, resources: readonly EnvoyResource[], removed: readonly string[], version: string): Buffer {
    this.stats.encoded++;
    const { wire, controlPlaneId } = this.#options;
    return mode === 'delta'
      ? encodeDeltaDiscoveryResponseBody({ systemVersionInfo: version, typeUrl, resources, removed, controlPlaneId }, wire)
      : encodeDiscoveryResponseBody({ versionInfo: version, typeUrl, resources, controlPlaneId }, wire);
  }
}
