// Which VirtualService routes each host, as proxies of one namespace see them (Istio's
// virtualServiceIndex): the namespace's own rules first, then rules exported to it by name, then
// public ones, oldest first within each; the first to name a host owns it there.
import { mostSpecificMatch } from './destination-rules.ts';
import type { ResolvedVirtualService } from './push-context.ts';
import type { Service } from './service.ts';
import type { Visibility } from './visibility.ts';

export interface VisibleVirtualService {
  readonly vs: ResolvedVirtualService;
  readonly visibility: Visibility;
}

/** Stands for every namespace no rule lives in or is exported to by name: it sees public rules only. */
export const ANY_OTHER_NAMESPACE = '';

export function virtualServicesSeenFrom(all: readonly VisibleVirtualService[], namespace: string): ResolvedVirtualService[] {
  const own: ResolvedVirtualService[] = [];
  const exported: ResolvedVirtualService[] = [];
  const everyone: ResolvedVirtualService[] = [];
  for (const { vs, visibility } of all) {
    if (visibility.public) everyone.push(vs);
    else if (visibility.namespaces.has(namespace)) (vs.rule.meta.namespace === namespace ? own : exported).push(vs);
  }
  const order = byRouteOfNamespace(namespace);
  return [...own.sort(order), ...exported.sort(order), ...everyone.sort(order)];
}

/** As Istio: within a tier, Gateway API routes of the caller's own namespace come first (the consumer's override). */
function byRouteOfNamespace(namespace: string): (a: ResolvedVirtualService, b: ResolvedVirtualService) => number {
  const tier = (vs: ResolvedVirtualService): number => (vs.rule.meta.origin !== undefined && vs.rule.meta.namespace === namespace ? 0 : 1);
  // Array.prototype.sort is stable: everything else keeps its oldest-first order.
  return (a, b) => tier(a) - tier(b);
}

/** The namespaces whose rules may differ from those of a namespace no rule names. */
export function distinctViewNamespaces(all: readonly VisibleVirtualService[]): string[] {
  const namespaces = new Set<string>([ANY_OTHER_NAMESPACE]);
  for (const { vs, visibility } of all) {
    // Converted Gateway API routes order differently in their own namespace.
    if (vs.rule.meta.origin !== undefined) namespaces.add(vs.rule.meta.namespace);
    if (visibility.public) continue;
    namespaces.add(vs.rule.meta.namespace);
    for (const namespace of visibility.namespaces) namespaces.add(namespace);
  }
  return [...namespaces];
}

export type ConflictSink = (vs: ResolvedVirtualService, hostIndex: number, host: string, owner: ResolvedVirtualService) => void;

/** A service no VirtualService names exactly takes the most specific wildcard rule that covers it. */
function coverWildcardHosts(byHost: Map<string, ResolvedVirtualService>, services: readonly Service[]): void {
  const wildcards = new Map([...byHost].filter(([host]) => host.startsWith('*')));
  if (wildcards.size === 0) return;
  for (const service of services) {
    if (byHost.has(service.hostname)) continue;
    const vs = mostSpecificMatch(wildcards, service.hostname);
    if (vs) byHost.set(service.hostname, vs);
  }
}

/** Each host to the first rule of `ordered` that names it, and the services its wildcard hosts cover. */
export function claimHosts(ordered: readonly ResolvedVirtualService[], services: readonly Service[], onConflict?: ConflictSink): Map<string, ResolvedVirtualService> {
  const byHost = new Map<string, ResolvedVirtualService>();
  for (const vs of ordered) {
    vs.hosts.forEach((host, index) => {
      const owner = byHost.get(host);
      if (!owner) byHost.set(host, vs);
      else if (owner !== vs) onConflict?.(vs, index, host, owner);
    });
  }
  coverWildcardHosts(byHost, services);
  return byHost;
}
