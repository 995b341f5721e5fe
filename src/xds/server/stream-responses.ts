// What one watch is sent next, SotW and Delta: the whole set, or only what differs from what the
// client holds, and what it holds afterwards. Part of the stream protocol (stream-protocol.ts,
// which gives each response its nonce): no I/O, resources come from a source.
import type { Proxy } from '../../model/proxy.ts';
import type { EnvoyResource } from '../resource.ts';
import { versionOfSet } from '../resource.ts';
import type { ResourceTypeUrl } from '../type-urls.ts';
import { CLUSTER_TYPE, WILDCARD_TYPES } from '../type-urls.ts';
import type { TypeScope } from './push-scope.ts';
import type { SharedLists } from './shared-lists.ts';
import type { Subscription } from './subscription.ts';
import type { WatchState } from './watch-state.ts';

/** Where resources come from: one push, generated for a proxy. Tests hand in a fake. */
export interface ResourceSource {
  /** The push's sequence: recorded with each response, and Delta's system version. */
  readonly sequence: number;
  /** Every resource of the type the proxy gets (`names` undefined), or those of `names` that exist. */
  generate(typeUrl: ResourceTypeUrl, proxy: Proxy, names?: readonly string[]): readonly EnvoyResource[];
  /** The resources a whole subscription names (streams with the same one may share the list). */
  subscribed(typeUrl: ResourceTypeUrl, proxy: Proxy, subscription: Subscription): readonly EnvoyResource[];
}

/** A response's content, before it has a nonce. */
export interface NextResponse {
  readonly resources: readonly EnvoyResource[];
  /** Delta: names the client is to drop. */
  readonly removed: readonly string[];
  readonly version: string;
  /** A list sent whole that other streams may be sent too: its encoding is shared. */
  readonly shared: readonly EnvoyResource[] | undefined;
  /** SotW's whole sets: what the client holds is exactly this list. */
  readonly sentWhole: readonly EnvoyResource[] | undefined;
  /** performance.now() of the earliest change it carries. */
  readonly sourceAt: number | undefined;
  /** Clusters sent changed or anew, whose load assignments are to be sent again (Envoy warms them). */
  readonly rewarm: readonly EnvoyResource[];
}

const NONE: readonly EnvoyResource[] = [];

/** SotW: takes the watch's pending work; undefined when the client already holds it all. */
export function nextSotw(typeUrl: ResourceTypeUrl, watch: WatchState, proxy: Proxy, source: ResourceSource, lists: SharedLists): NextResponse | undefined {
  const scope = watch.pending ?? 'all';
  const whole = watch.resendWhole === true;
  const sourceAt = watch.pendingSince;
  watch.pending = undefined;
  watch.pendingSince = undefined;
  watch.resendWhole = undefined;
  // LDS and CDS are always sent whole; so is EDS/RDS after the client changes its subscription.
  if (WILDCARD_TYPES.has(typeUrl) || whole) {
    const resources = generateAll(typeUrl, watch, proxy, source);
    const version = lists.versionOf(resources);
    if (watch.setVersion === version && watch.sent) return undefined;
    // Nothing to say yet about named resources that do not exist; they are sent when they appear.
    if (!watch.sent && resources.length === 0 && !WILDCARD_TYPES.has(typeUrl)) return undefined;
    if (!WILDCARD_TYPES.has(typeUrl)) watch.held.replaceAll(resources);
    const before = typeUrl === CLUSTER_TYPE ? new Map((watch.sent?.resources ?? []).map((r) => [r.name, r.version])) : undefined;
    watch.setVersion = version;
    const rewarm = before ? resources.filter((r) => before.get(r.name) !== r.version) : NONE;
    return { resources, removed: [], version, shared: resources, sentWhole: resources, sourceAt, rewarm };
  }
  // EDS and RDS changes go out as just the changed resources (xds_protocol allows it for these types).
  const { updated, generated } = changes(typeUrl, watch, proxy, source, scope, lists);
  if (updated.length === 0) return undefined;
  if (updated === generated) watch.held.replaceAll(generated);
  else hold(watch, updated, []);
  watch.setVersion = undefined;
  return { resources: updated, removed: [], version: versionOfSet(updated), shared: undefined, sentWhole: undefined, sourceAt, rewarm: NONE };
}

/** Delta: takes the watch's pending work; undefined when there is nothing to add or remove. */
export function nextDelta(typeUrl: ResourceTypeUrl, watch: WatchState, proxy: Proxy, source: ResourceSource, lists: SharedLists): NextResponse | undefined {
  const scope = watch.pending ?? 'all';
  const sourceAt = watch.pendingSince;
  watch.pending = undefined;
  watch.pendingSince = undefined;
  const { updated, removed, generated } = changes(typeUrl, watch, proxy, source, scope, lists);
  // xds_protocol: a subscribed name that does not exist is answered in removed_resources.
  if (watch.announce) {
    const sending = updated === generated ? lists.namesOf(generated) : new Set(updated.map((r) => r.name));
    const gone = new Set(removed);
    for (const name of watch.announce) {
      if (!sending.has(name) && !gone.has(name) && !watch.held.has(name)) removed.push(name);
    }
    watch.announce = undefined;
  }
  if (updated.length === 0 && removed.length === 0) return undefined;
  // A client that gets a whole set (a first subscription, say) gets what others in its place get: shared.
  const whole = scope === 'all' && removed.length === 0 && updated.length === generated.length ? generated : undefined;
  if (whole) watch.held.replaceAll(whole);
  else hold(watch, updated, removed);
  const rewarm = typeUrl === CLUSTER_TYPE ? updated : NONE;
  return { resources: whole ?? updated, removed, version: `${source.sequence}`, shared: whole, sentWhole: undefined, sourceAt, rewarm };
}

/** Every resource the watch covers: the wildcard set plus explicit names. */
export function generateAll(typeUrl: ResourceTypeUrl, watch: WatchState, proxy: Proxy, source: ResourceSource): readonly EnvoyResource[] {
  const names = watch.subscription.names;
  if (!watch.wildcard) return names.length === 0 ? [] : source.subscribed(typeUrl, proxy, watch.subscription);
  const all = source.generate(typeUrl, proxy);
  if (names.length === 0) return all;
  const have = new Set(all.map((r) => r.name));
  const extra = names.filter((n) => !have.has(n));
  return extra.length === 0 ? all : [...all, ...source.generate(typeUrl, proxy, extra)];
}

/** Resources in `scope` that differ from what the client holds, and held names that are gone. */
function changes(
  typeUrl: ResourceTypeUrl,
  watch: WatchState,
  proxy: Proxy,
  source: ResourceSource,
  scope: TypeScope,
  lists: SharedLists,
): { updated: readonly EnvoyResource[]; removed: string[]; generated: readonly EnvoyResource[] } {
  if (scope === 'all') {
    const generated = generateAll(typeUrl, watch, proxy, source);
    // A client that holds nothing yet (a first subscription) is sent all of it: no comparison to make.
    if (watch.held.size === 0) return { updated: generated, removed: [], generated };
    const { updated, held } = compare(watch, generated);
    const removed: string[] = [];
    // A client holding only names just generated (each once) has nothing to drop: thousands of
    // streams compared in one push need not walk what they hold. A whole list's names are shared.
    const present = lists.namesOf(generated);
    if (present.size !== generated.length || held !== watch.held.size) for (const name of watch.held.keys()) if (!present.has(name)) removed.push(name);
    return { updated, removed, generated };
  }
  const candidates = [...scope].filter((n) => watch.wildcard || watch.subscription.set.has(n) || watch.held.has(n));
  const generated = candidates.length === 0 ? [] : source.generate(typeUrl, proxy, candidates);
  const { updated } = compare(watch, generated);
  const removed: string[] = [];
  // A held candidate the push no longer generates is dropped; none is when each came back.
  if (generated.length !== candidates.length || !generated.every((r) => scope.has(r.name))) {
    const present = new Set(generated.map((r) => r.name));
    for (const name of candidates) if (!present.has(name) && watch.held.has(name)) removed.push(name);
  }
  return { updated, removed, generated };
}

/** The generated resources whose version the client does not hold, and how many of their names it holds. */
function compare(watch: WatchState, generated: readonly EnvoyResource[]): { updated: EnvoyResource[]; held: number } {
  const updated: EnvoyResource[] = [];
  let held = 0;
  for (const resource of generated) {
    const version = watch.held.get(resource.name);
    if (version !== undefined) held++;
    if (version !== resource.version) updated.push(resource);
  }
  return { updated, held };
}

function hold(watch: WatchState, updated: readonly EnvoyResource[], removed: readonly string[]): void {
  watch.held.add(updated);
  for (const name of removed) watch.held.delete(name);
}
