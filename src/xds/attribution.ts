// Which rule produced a generated resource: the attribution Istio writes into route metadata
// (`istio.config`), read back for explain, NACK attribution and preview.
import type { PushContext } from '../model/push-context.ts';
import { parseClusterName, parseHostPort } from './generate/names.ts';
import { resolveTargetHost } from './generate/targets.ts';
import type { Json, JsonObject } from './proto-json.ts';
import type { EnvoyResource } from './resource.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE, ROUTE_TYPE } from './type-urls.ts';

/** An object that produced (part of) a resource; `httpRoute` is the index in `spec.http`. */
export interface RuleRef {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly httpRoute?: number;
}

const KIND_PATHS: Readonly<Record<string, string>> = {
  VirtualService: 'virtual-service',
  DestinationRule: 'destination-rule',
  HTTPRoute: 'httproute',
  GRPCRoute: 'grpcroute',
};

/** Kinds outside networking.istio.io that rules are converted from. */
const KIND_GROUPS: Readonly<Record<string, string>> = {
  HTTPRoute: 'gateway.networking.k8s.io',
  GRPCRoute: 'gateway.networking.k8s.io',
};

/** `/apis/networking.istio.io/v1/namespaces/NS/virtual-service/NAME`, Istio's route attribution. */
export function configPath(meta: Omit<RuleRef, 'httpRoute'>): string {
  return `/apis/${KIND_GROUPS[meta.kind] ?? 'networking.istio.io'}/v1/namespaces/${meta.namespace}/${KIND_PATHS[meta.kind] ?? meta.kind.toLowerCase()}/${meta.name}`;
}

/** Route metadata naming the rule and its http route index. */
export function istioConfigMetadata(meta: Omit<RuleRef, 'httpRoute'>, httpRoute: number): JsonObject {
  return { filter_metadata: { istio: { config: configPath(meta), http_route: httpRoute } } };
}

export function parseConfigPath(path: string): Omit<RuleRef, 'httpRoute'> | undefined {
  const match = /^\/apis\/[^/]+\/[^/]+\/namespaces\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(path);
  if (!match?.[1] || !match[2] || !match[3]) return undefined;
  const kind = Object.entries(KIND_PATHS).find(([, p]) => p === match[2])?.[0] ?? match[2];
  return { kind, namespace: match[1], name: match[3] };
}

export function asObject(value: Json | undefined): JsonObject | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? value : undefined;
}

/** A string field, or '' when absent or not a string. */
export function str(value: Json | undefined): string {
  return typeof value === 'string' ? value : typeof value === 'number' ? String(value) : '';
}

/** The strings of a list, or [] when absent or not a list. */
export function strings(value: Json | undefined): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

export function asObjects(value: Json | undefined): JsonObject[] {
  return Array.isArray(value) ? value.map(asObject).filter((v): v is JsonObject => v !== undefined) : [];
}

/** The rule a generated Envoy route came from, read from its metadata. */
export function routeRule(route: JsonObject): RuleRef | undefined {
  const istio = asObject(asObject(asObject(route['metadata'])?.['filter_metadata'])?.['istio']);
  const path = istio?.['config'];
  const ref = typeof path === 'string' ? parseConfigPath(path) : undefined;
  if (!ref) return undefined;
  const index = istio?.['http_route'];
  return typeof index === 'number' ? { ...ref, httpRoute: index } : ref;
}

function sameRef(a: RuleRef, b: RuleRef): boolean {
  return a.kind === b.kind && a.namespace === b.namespace && a.name === b.name && a.httpRoute === b.httpRoute;
}

function pushUnique(list: RuleRef[], ref: RuleRef | undefined): void {
  if (ref && !list.some((r) => sameRef(r, ref))) list.push(ref);
}

/** The Service and DestinationRule behind a cluster (or load assignment) name. */
export function clusterOrigins(clusterName: string, push: PushContext | undefined): RuleRef[] {
  const key = parseClusterName(clusterName);
  const service = key && push?.serviceByHost.get(key.host);
  if (!key || !service || !push) return [];
  const out: RuleRef[] = [{ kind: 'Service', namespace: service.namespace, name: service.name }];
  const rule = push.destinationRuleByHost.get(key.host);
  if (rule) out.push({ kind: 'DestinationRule', namespace: rule.meta.namespace, name: rule.meta.name });
  return out;
}

/**
 * The objects that produced a resource. `only` narrows a route configuration to the routes
 * whose names appear in it (e.g. the text of a NACK).
 */
export function resourceOrigins(resource: EnvoyResource, push: PushContext | undefined, only?: string, proxyNamespace?: string): RuleRef[] {
  const out: RuleRef[] = [];
  if (resource.typeUrl === CLUSTER_TYPE || resource.typeUrl === ENDPOINT_TYPE) return clusterOrigins(resource.name, push);
  if (resource.typeUrl === ROUTE_TYPE) {
    const routes = asObjects(resource.json['virtual_hosts']).flatMap((vh) => asObjects(vh['routes']));
    const named = only === undefined ? [] : routes.filter((r) => typeof r['name'] === 'string' && r['name'] !== '' && only.includes(r['name']));
    for (const route of named.length > 0 ? named : routes) pushUnique(out, routeRule(route));
    return out;
  }
  // A listener: a gRPC API listener is named after the service (and so the rule) it targets.
  const target = parseHostPort(resource.name);
  const resolved = target && push ? resolveTargetHost(push, target.host, target.port, proxyNamespace) : undefined;
  if (resolved) pushUnique(out, { kind: 'Service', namespace: resolved.service.namespace, name: resolved.service.name });
  const vs = resolved && push?.virtualServiceByHost.get(resolved.service.hostname);
  if (vs) pushUnique(out, { kind: vs.rule.meta.kind, namespace: vs.rule.meta.namespace, name: vs.rule.meta.name });
  return out;
}

/**
 * The resources a NACK names: every sent resource whose name appears in the message (longest
 * first, so a host inside a cluster name is not counted twice); all of them when none does.
 */
export function rejectedResources(message: string, sent: readonly EnvoyResource[]): { resources: readonly EnvoyResource[]; named: boolean } {
  const matched: EnvoyResource[] = [];
  for (const resource of [...sent].sort((a, b) => b.name.length - a.name.length)) {
    if (resource.name === '' || !message.includes(resource.name)) continue;
    if (matched.some((m) => m.name.includes(resource.name))) continue;
    matched.push(resource);
  }
  return matched.length > 0 ? { resources: matched, named: true } : { resources: sent, named: false };
}

export function formatRef(ref: RuleRef): string {
  return `${ref.kind} ${ref.namespace}/${ref.name}${ref.httpRoute !== undefined ? ` http[${ref.httpRoute}]` : ''}`;
}
