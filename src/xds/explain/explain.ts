// Explain: which listener, virtual host, route, cluster and endpoints a request from a proxy
// takes, walked over the resources that proxy was last sent, with the rule behind each step.
import type { PushContext } from '../../model/push-context.ts';
import type { Proxy } from '../../model/proxy.ts';
import type { RuleRef } from '../attribution.ts';
import { asObject, asObjects, clusterOrigins, routeRule, str } from '../attribution.ts';
import { parseClusterName } from '../generate/names.ts';
import type { Json, JsonObject } from '../proto-json.ts';
import type { EnvoyResource } from '../resource.ts';
import { HTTP_CONNECTION_MANAGER_TYPE, TCP_PROXY_TYPE } from '../type-urls.ts';
import type { DomainMatch, RequestFacts } from './route-match.ts';
import { routeMismatch, selectVirtualHost } from './route-match.ts';

export type { RequestFacts } from './route-match.ts';

export interface SentConfig {
  readonly listeners: readonly EnvoyResource[];
  readonly routes: readonly EnvoyResource[];
  readonly clusters: readonly EnvoyResource[];
  readonly endpoints: readonly EnvoyResource[];
}

export type ExplainOutcome = 'routed' | 'tcp' | 'no_listener' | 'no_route_config' | 'no_virtual_host' | 'no_route' | 'no_action';

export interface ExplainedEndpoint {
  readonly address: string;
  readonly port: number;
  readonly locality: string;
  readonly healthStatus: string;
  readonly weight: number;
}

export interface ExplainedCluster {
  readonly name: string;
  readonly weight: number | null;
  /** Share of requests, 0-100. */
  readonly percent: number;
  readonly sent: boolean;
  readonly type: string | null;
  readonly lbPolicy: string | null;
  readonly service: string | null;
  readonly subset: string | null;
  readonly rules: readonly RuleRef[];
  readonly endpoints: readonly ExplainedEndpoint[];
}

export interface Explanation {
  readonly outcome: ExplainOutcome;
  readonly summary: string;
  readonly request: RequestFacts;
  readonly listener: { readonly name: string; readonly kind: 'api' | 'http' | 'tcp' | 'virtualOutbound'; readonly httpFilters: readonly string[] } | null;
  readonly routeConfig: { readonly name: string; readonly sent: boolean } | null;
  readonly virtualHost: { readonly name: string; readonly domain: string; readonly match: DomainMatch; readonly service: RuleRef | null } | null;
  readonly route: {
    readonly name: string;
    readonly index: number;
    readonly match: JsonObject;
    readonly rule: RuleRef | null;
  } | null;
  /** Routes tried before the one that matched, and why each did not take the request. */
  readonly skipped: readonly { readonly name: string; readonly index: number; readonly reason: string; readonly rule: RuleRef | null }[];
  readonly clusters: readonly ExplainedCluster[];
  readonly policy: {
    readonly timeout: string | null;
    readonly retries: JsonObject | null;
    readonly fault: JsonObject | null;
    readonly mirrors: readonly JsonObject[];
    readonly other: JsonObject;
  } | null;
}

const FAULT_FILTER = 'envoy.filters.http.fault';

function byName(resources: readonly EnvoyResource[], name: string): EnvoyResource | undefined {
  return resources.find((r) => r.name === name);
}

/** Envoy's server_names match: exact, or `*.example.com` for one or more labels before it. */
function sniMatches(names: readonly string[], sni: string): boolean {
  return names.some((name) => name === sni || (name.startsWith('*.') && sni.endsWith(name.slice(1))));
}

/** The filter chains a connection may take: with an SNI, those matching it first, then those matching any. */
function chainsFor(listener: JsonObject, sni: string | undefined): JsonObject[] {
  const chains = asObjects(listener['filter_chains']);
  if (sni === undefined) return chains;
  const names = (chain: JsonObject): string[] => {
    const list = asObject(chain['filter_chain_match'])?.['server_names'];
    return Array.isArray(list) ? list.filter((name): name is string => typeof name === 'string') : [];
  };
  const matching = chains.filter((chain) => sniMatches(names(chain), sni));
  return matching.length > 0 ? matching : chains.filter((chain) => names(chain).length === 0);
}

function httpConnectionManagerOf(listener: JsonObject, sni?: string): JsonObject | undefined {
  const api = asObject(asObject(listener['api_listener'])?.['api_listener']);
  if (api) return api;
  for (const chain of chainsFor(listener, sni)) {
    for (const filter of asObjects(chain['filters'])) {
      const typed = asObject(filter['typed_config']);
      if (typed?.['@type'] === HTTP_CONNECTION_MANAGER_TYPE) return typed;
    }
  }
  return undefined;
}

function tcpClusterOf(listener: JsonObject): string | undefined {
  for (const chain of asObjects(listener['filter_chains'])) {
    for (const filter of asObjects(chain['filters'])) {
      const typed = asObject(filter['typed_config']);
      if (typed?.['@type'] === TCP_PROXY_TYPE && typeof typed['cluster'] === 'string') return typed['cluster'];
    }
  }
  return undefined;
}

function splitAuthority(authority: string, https: boolean): { host: string; port: number } {
  const match = /^(.*):(\d+)$/.exec(authority);
  return match?.[1] && match[2] ? { host: match[1], port: Number(match[2]) } : { host: authority, port: https ? 443 : 80 };
}

/** A gateway's listener for a Gateway server port: bound where its Service sends that port (443 -> 0.0.0.0_8443). */
function gatewayListener(config: SentConfig, proxy: Proxy, port: number, push: PushContext | undefined): EnvoyResource | undefined {
  const plan = push?.gatewayFor(proxy)?.listeners.find((candidate) => candidate.servers.some((bound) => bound.server.port.number === port));
  return plan && byName(config.listeners, `${plan.bind}_${String(plan.port)}`);
}

/** The listener a request enters: by name for gRPC, by destination port for a sidecar, by Gateway server port for a gateway. */
function findListener(config: SentConfig, proxy: Proxy, authority: string, https: boolean, push: PushContext | undefined): { listener: EnvoyResource; kind: 'api' | 'http' | 'tcp' | 'virtualOutbound' } | undefined {
  const named = byName(config.listeners, authority);
  if (named) return { listener: named, kind: named.json['api_listener'] ? 'api' : 'http' };
  if (proxy.generator === 'grpc') return undefined;
  const { port } = splitAuthority(authority, https);
  const gateway = proxy.type === 'router' ? gatewayListener(config, proxy, port, push) : undefined;
  if (gateway) return { listener: gateway, kind: httpConnectionManagerOf(gateway.json) ? 'http' : 'tcp' };
  const http = byName(config.listeners, `0.0.0.0_${port}`);
  if (http) return { listener: http, kind: httpConnectionManagerOf(http.json) ? 'http' : 'tcp' };
  const tcp = config.listeners.find((l) => l.name.endsWith(`_${port}`) && l.name !== 'virtualOutbound');
  if (tcp) return { listener: tcp, kind: 'tcp' };
  const outbound = byName(config.listeners, 'virtualOutbound');
  return outbound && { listener: outbound, kind: 'virtualOutbound' };
}

/** The endpoints of a ClusterLoadAssignment, flattened with their locality. */
export function assignmentEndpoints(assignment: JsonObject | undefined): ExplainedEndpoint[] {
  const out: ExplainedEndpoint[] = [];
  for (const group of asObjects(assignment?.['endpoints'])) {
    const locality = asObject(group['locality']) ?? {};
    const where = ['region', 'zone', 'sub_zone'].map((k) => (typeof locality[k] === 'string' ? locality[k] : '')).join('/');
    for (const lb of asObjects(group['lb_endpoints'])) {
      const socket = asObject(asObject(asObject(lb['endpoint'])?.['address'])?.['socket_address']) ?? {};
      out.push({
        address: str(socket['address']),
        port: Number(socket['port_value'] ?? 0),
        locality: where,
        healthStatus: typeof lb['health_status'] === 'string' ? lb['health_status'] : 'UNKNOWN',
        weight: typeof lb['load_balancing_weight'] === 'number' ? lb['load_balancing_weight'] : 1,
      });
    }
  }
  return out;
}

function endpointsOf(config: SentConfig, cluster: JsonObject | undefined, name: string): ExplainedEndpoint[] {
  const serviceName = asObject(cluster?.['eds_cluster_config'])?.['service_name'];
  return assignmentEndpoints(byName(config.endpoints, typeof serviceName === 'string' ? serviceName : name)?.json);
}

function explainCluster(config: SentConfig, push: PushContext | undefined, name: string, weight: number | null, percent: number): ExplainedCluster {
  const resource = byName(config.clusters, name);
  const key = parseClusterName(name);
  return {
    name,
    weight,
    percent,
    sent: resource !== undefined,
    type: typeof resource?.json['type'] === 'string' ? resource.json['type'] : null,
    lbPolicy: typeof resource?.json['lb_policy'] === 'string' ? resource.json['lb_policy'] : null,
    service: key?.host ?? null,
    subset: key ? key.subset || null : null,
    rules: clusterOrigins(name, push),
    endpoints: endpointsOf(config, resource?.json, name),
  };
}

function clustersOfAction(config: SentConfig, push: PushContext | undefined, action: JsonObject): ExplainedCluster[] {
  if (typeof action['cluster'] === 'string') return [explainCluster(config, push, action['cluster'], null, 100)];
  const entries = asObjects(asObject(action['weighted_clusters'])?.['clusters']);
  const total = entries.reduce((sum, e) => sum + (typeof e['weight'] === 'number' ? e['weight'] : 0), 0);
  return entries.map((e) => {
    const weight = typeof e['weight'] === 'number' ? e['weight'] : 0;
    return explainCluster(config, push, str(e['name']), weight, total > 0 ? Math.round((weight / total) * 10000) / 100 : 0);
  });
}

function policyOf(route: JsonObject, virtualHost: JsonObject): NonNullable<Explanation['policy']> {
  const action = asObject(route['route']) ?? {};
  const perFilter = (source: JsonObject): JsonObject | undefined => asObject(asObject(source['typed_per_filter_config'])?.[FAULT_FILTER]);
  const known = new Set(['cluster', 'weighted_clusters', 'timeout', 'retry_policy', 'request_mirror_policies']);
  const other: JsonObject = Object.fromEntries(Object.entries(action).filter(([k]) => !known.has(k)));
  for (const key of ['request_headers_to_add', 'response_headers_to_add', 'request_headers_to_remove']) {
    const value: Json | undefined = route[key];
    if (value !== undefined) other[key] = value;
  }
  return {
    timeout: typeof action['timeout'] === 'string' ? action['timeout'] : null,
    retries: asObject(action['retry_policy']) ?? asObject(virtualHost['retry_policy']) ?? null,
    fault: perFilter(route) ?? perFilter(virtualHost) ?? null,
    mirrors: asObjects(action['request_mirror_policies']),
    other,
  };
}

function ruleLabel(rule: RuleRef | null): string {
  return rule ? ` (${rule.kind} ${rule.namespace}/${rule.name}${rule.httpRoute !== undefined ? ` ${rule.kind.endsWith('Route') ? 'rules' : 'http'}[${rule.httpRoute}]` : ''})` : '';
}

/**
 * Walks listener -> route configuration -> virtual host -> first matching route -> clusters ->
 * endpoints, as the proxy would with what it was sent. `push` only adds attribution.
 */
export function explainRequest(config: SentConfig, proxy: Proxy, request: RequestFacts, push?: PushContext): Explanation {
  const facts: RequestFacts = { ...request, headers: Object.fromEntries(Object.entries(request.headers).map(([k, v]) => [k.toLowerCase(), v])) };
  const base = { request: facts, listener: null, routeConfig: null, virtualHost: null, route: null, skipped: [], clusters: [], policy: null };
  const https = facts.headers[':scheme'] === 'https';
  const found = findListener(config, proxy, facts.authority, https, push);
  if (!found) {
    const names = config.listeners.map((l) => l.name).join(', ') || 'none';
    return { ...base, outcome: 'no_listener', summary: `the proxy was sent no listener for ${facts.authority} (it has: ${names})` };
  }
  // Over TLS the chain is chosen by SNI, the request's host.
  const sni = https ? splitAuthority(facts.authority, https).host : undefined;
  if (sni !== undefined && chainsFor(found.listener.json, sni).length === 0) {
    return { ...base, outcome: 'no_listener', summary: `no filter chain of listener ${found.listener.name} serves the SNI ${sni}: the proxy closes the connection` };
  }
  const hcm = httpConnectionManagerOf(found.listener.json, sni);
  const httpFilters = asObjects(hcm?.['http_filters']).map((f) => str(f['name']));
  const listener = { name: found.listener.name, kind: found.kind, httpFilters };
  if (!hcm) {
    const cluster = tcpClusterOf(found.listener.json);
    const clusters = cluster ? [explainCluster(config, push, cluster, null, 100)] : [];
    return { ...base, listener, clusters, outcome: 'tcp', summary: `TCP: listener ${found.listener.name} forwards to ${cluster ?? 'nothing'}` };
  }
  const rds = asObject(hcm['rds']);
  const routeName = typeof rds?.['route_config_name'] === 'string' ? rds['route_config_name'] : undefined;
  const inline = asObject(hcm['route_config']);
  const routeConfigJson = inline ?? (routeName !== undefined ? byName(config.routes, routeName)?.json : undefined);
  const routeConfig = { name: routeName ?? str(inline?.['name']), sent: routeConfigJson !== undefined };
  if (!routeConfigJson) {
    return { ...base, listener, routeConfig, outcome: 'no_route_config', summary: `listener ${listener.name} uses route configuration "${routeConfig.name}", which the proxy was not sent` };
  }
  const selected = selectVirtualHost(asObjects(routeConfigJson['virtual_hosts']), facts.authority);
  if (!selected) {
    return { ...base, listener, routeConfig, outcome: 'no_virtual_host', summary: `no virtual host of route configuration "${routeConfig.name}" has a domain matching ${facts.authority}: the proxy answers 404` };
  }
  const vhName = str(selected.virtualHost['name']);
  const vhHost = vhName.replace(/:\d+$/, '');
  const service = push?.serviceByHost.get(vhHost);
  const virtualHost = {
    name: vhName,
    domain: selected.domain,
    match: selected.match,
    service: service ? { kind: 'Service', namespace: service.namespace, name: service.name } : null,
  };
  const skipped: { name: string; index: number; reason: string; rule: RuleRef | null }[] = [];
  const routes = asObjects(selected.virtualHost['routes']);
  for (const [index, route] of routes.entries()) {
    const match = asObject(route['match']) ?? {};
    const name = str(route['name']);
    const rule = routeRule(route) ?? null;
    const reason = routeMismatch(match, facts);
    if (reason !== undefined) {
      skipped.push({ name, index, reason, rule });
      continue;
    }
    const matched = { name, index, match, rule };
    const action = asObject(route['route']);
    if (!action) {
      const kind = route['redirect'] ? 'a redirect' : route['direct_response'] ? 'a direct response' : 'no forwarding action';
      return { ...base, listener, routeConfig, virtualHost, route: matched, skipped, outcome: 'no_action', summary: `route "${name}"${ruleLabel(rule)} answers with ${kind}` };
    }
    const clusters = clustersOfAction(config, push, action);
    const targets = clusters.map((c) => (clusters.length > 1 ? `${c.name} (${c.percent}%)` : c.name)).join(', ');
    return {
      ...base,
      listener,
      routeConfig,
      virtualHost,
      route: matched,
      skipped,
      clusters,
      policy: policyOf(route, selected.virtualHost),
      outcome: 'routed',
      summary: `route "${name}"${ruleLabel(rule)} of virtual host ${vhName} sends it to ${targets}`,
    };
  }
  return { ...base, listener, routeConfig, virtualHost, skipped, outcome: 'no_route', summary: `no route of virtual host ${vhName} matches: the proxy answers 404` };
}
