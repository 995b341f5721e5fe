// What many streams share: a list's set version and names, the load assignments of a
// subscription, and encoded responses. A whole set, or the same few changed resources, sent to
// many streams in one push is encoded once, nonce included: a nonce only has to be unique
// within a stream, and no stream is sent the same one twice.
import type { PushContext } from '../../model/push-context.ts';
import type { EnvoyResource } from '../resource.ts';
import { versionOfSet } from '../resource.ts';
import type { ResourceTypeUrl } from '../type-urls.ts';
import { encodeDeltaDiscoveryResponse, encodeDiscoveryResponse } from './messages.ts';
import type { Subscription } from './subscription.ts';
import type { StreamMode, WatchState } from './watch-state.ts';

export interface Encoded {
  readonly nonce: string;
  readonly bytes: Buffer;
}

// Set versions are hashes over every resource: computed once per shared resource list.
const setVersions = new WeakMap<readonly EnvoyResource[], string>();
export function setVersionOf(resources: readonly EnvoyResource[]): string {
  let version = setVersions.get(resources);
  if (version === undefined) {
    version = versionOfSet(resources);
    setVersions.set(resources, version);
  }
  return version;
}

// The names in a list, for lists that many streams are sent (a namespace's clusters, say).
const listNames = new WeakMap<readonly EnvoyResource[], ReadonlySet<string>>();
export function namesOf(resources: readonly EnvoyResource[]): ReadonlySet<string> {
  let names = listNames.get(resources);
  if (!names) {
    names = new Set(resources.map((r) => r.name));
    listNames.set(resources, names);
  }
  return names;
}

// Load assignments do not depend on the proxy: streams with the same subscription share one list per push.
const assignmentLists = new WeakMap<Subscription, { sequence: number; resources: readonly EnvoyResource[] }>();
export function sharedAssignments(push: PushContext, subscription: Subscription, build: () => readonly EnvoyResource[]): readonly EnvoyResource[] {
  const cached = assignmentLists.get(subscription);
  if (cached?.sequence === push.sequence) return cached.resources;
  const resources = build();
  assignmentLists.set(subscription, { sequence: push.sequence, resources });
  return resources;
}

interface SharedWhole {
  readonly sequence: number;
  readonly version: string;
  readonly controlPlaneId: string;
  /** Set once a second stream is sent the same list in the same push. */
  readonly encoded?: Encoded;
}

/** Whole sets by list, then by `mode:typeUrl`. */
const wholeResponses = new WeakMap<readonly EnvoyResource[], Map<string, SharedWhole>>();

/** Changes of a few resources are shared by content within one push; larger ones are rare and encoded per stream. */
const PARTIAL_SHARING_LIMIT = 64;
let partialResponses: { sequence: number; byKey: Map<string, Encoded | undefined> } = { sequence: -1, byKey: new Map() };

/** Encodes one stream's responses, reusing what other streams were sent in the same push. */
export class ResponseEncoder {
  readonly #mode: StreamMode;
  readonly #controlPlaneId: string;
  readonly #nextNonce: () => string;

  constructor(mode: StreamMode, controlPlaneId: string, nextNonce: () => string) {
    this.#mode = mode;
    this.#controlPlaneId = controlPlaneId;
    this.#nextNonce = nextNonce;
  }

  /** A response with exactly these resources (and, for Delta, these removed names). */
  encode(typeUrl: ResourceTypeUrl, resources: readonly EnvoyResource[], removed: readonly string[], version: string): Encoded {
    const nonce = this.#nextNonce();
    const controlPlaneId = this.#controlPlaneId;
    const bytes =
      this.#mode === 'delta'
        ? encodeDeltaDiscoveryResponse({ systemVersionInfo: version, typeUrl, nonce, resources, removed, controlPlaneId })
        : encodeDiscoveryResponse({ versionInfo: version, typeUrl, nonce, resources, controlPlaneId });
    return { nonce, bytes };
  }

  /** The whole set `whole` (a shared list): kept from the second stream on, so a list only one stream gets keeps no bytes alive. */
  whole(typeUrl: ResourceTypeUrl, watch: WatchState, push: PushContext, whole: readonly EnvoyResource[], version: string): Encoded {
    let byType = wholeResponses.get(whole);
    if (!byType) {
      byType = new Map();
      wholeResponses.set(whole, byType);
    }
    const key = `${this.#mode}:${typeUrl}`;
    const cached = byType.get(key);
    const current = cached?.sequence === push.sequence && cached.version === version && cached.controlPlaneId === this.#controlPlaneId ? cached : undefined;
    if (current?.encoded && !sentBefore(watch, push, current.encoded.nonce)) return remember(watch, push, current.encoded);
    const fresh = this.encode(typeUrl, whole, [], version);
    byType.set(key, { sequence: push.sequence, version, controlPlaneId: this.#controlPlaneId, ...(current ? { encoded: fresh } : {}) });
    return remember(watch, push, fresh);
  }

  /**
   * A few changed resources: the same ones go to many streams in one push (a route configuration
   * after a VirtualService change, one load assignment after an endpoint moves).
   */
  partial(typeUrl: ResourceTypeUrl, watch: WatchState, push: PushContext, resources: readonly EnvoyResource[], removed: readonly string[], version: string): Encoded {
    if (resources.length + removed.length > PARTIAL_SHARING_LIMIT) return this.encode(typeUrl, resources, removed, version);
    if (partialResponses.sequence !== push.sequence) partialResponses = { sequence: push.sequence, byKey: new Map() };
    const key = [this.#mode, typeUrl, this.#controlPlaneId, version, ...resources.map((r) => `${r.name}\u0000${r.version}`), '', ...removed].join('\u0001');
    const cached = partialResponses.byKey.get(key);
    if (cached && !sentBefore(watch, push, cached.nonce)) return remember(watch, push, cached);
    const fresh = this.encode(typeUrl, resources, removed, version);
    // Kept from the second stream on, as whole sets are.
    if (cached === undefined) partialResponses.byKey.set(key, partialResponses.byKey.has(key) ? fresh : undefined);
    return remember(watch, push, fresh);
  }
}

function sentBefore(watch: WatchState, push: PushContext, nonce: string): boolean {
  return watch.sharedNonces?.sequence === push.sequence && watch.sharedNonces.nonces.has(nonce);
}

function remember(watch: WatchState, push: PushContext, encoded: Encoded): Encoded {
  if (watch.sharedNonces?.sequence !== push.sequence) watch.sharedNonces = { sequence: push.sequence, nonces: new Set() };
  watch.sharedNonces.nonces.add(encoded.nonce);
  return encoded;
}
