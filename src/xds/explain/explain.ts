// Explain: which listener, virtual host, route, cluster and endpoints a request from a proxy
// takes, walked over the resources that proxy was last sent, with the rule behind each step.
import type { MergedGateway } from '../../model/gateways.ts';
import type { PushContext } from '../../model/push-context.ts';
import type { Proxy } from '../../model/proxy.ts';
import type { RuleRef } from '../attribution.ts';
import { asObject, asObjects, clusterOrigins, routeRule, str, strings } from '../attribution.ts';
import { parseClusterName } from '../generate/names.ts';
import type { Json, JsonObject } from '../proto-json.ts';
import type { EnvoyResource } from '../resource.ts';
import { HTTP_CONNECTION_MANAGER_TYPE, TCP_PROXY_TYPE } from '../type-urls.ts';
import type { ExplainedAnswer } from './answer.ts';
import { REQUIRE_TLS_ANSWER, routeAnswer } from './answer.ts';
import type { ExplainedGatewayServer, SelectedChain } from './gateway.ts';
import { gatewayLabel, gatewayListenerName, gatewayServerFor, hostOf, requestPort, selectFilterChain } from './gateway.ts';
import type { DomainMatch, RequestFacts } from './route-match.ts';
import { routeMismatch, selectVirtualHost } from './route-match.ts';

export type { RequestFacts } from './route-match.ts';
export type { ExplainedGatewayServer } from './gateway.ts';
export type { ExplainedAnswer, ExplainedLocation } from './answer.ts';

export interface SentConfig {
  readonly listeners: readonly EnvoyResource[];
  readonly routes: readonly EnvoyResource[];
  readonly clusters: readonly EnvoyResource[];
  readonly endpoints: readonly EnvoyResource[];
}

export type ExplainOutcome = 'routed' | 'tcp' | 'no_listener' | 'no_filter_chain' | 'no_route_config' | 'no_virtual_host' | 'redirect' | 'no_route' | 'no_action';

export const EXPLAIN_OUTCOMES: readonly ExplainOutcome[] = ['routed', 'tcp', 'no_listener', 'no_filter_chain', 'no_route_config', 'no_virtual_host', 'redirect', 'no_route', 'no_action'];

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
  readonly listener: {
    readonly name: string;
    readonly kind: 'api' | 'http' | 'tcp' | 'virtualOutbound';
    readonly httpFilters: readonly string[];
    /** The filter chain taken, for a gateway: by SNI, TLS terminated or passed through. */
    readonly filterChain?: { readonly index: number; readonly serverNames: readonly string[]; readonly terminatesTls: boolean };
  } | null;
  /** For a gateway proxy: the Gateway server that made the listener and route configuration. */
  readonly gateway: ExplainedGatewayServer | null;
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
  /** What the proxy answers itself (a redirect or a direct response), when it does not forward. */
  readonly answer?: ExplainedAnswer;
}

const FAULT_FILTER = 'envoy.filters.http.fault';

function byName(resources: readonly EnvoyResource[], name: string): EnvoyResource | undefined {
  return resources.find((r) => r.name === name);
}

function httpConnectionManagerOf(listener: JsonObject, chains: readonly JsonObject[] = asObjects(listener['filter_chains'])): JsonObject | undefined {
  const api = asObject(asObject(listener['api_listener'])?.['api_listener']);
  if (api) return api;
  for (const chain of chains) {
    for (const filter of asObjects(chain['filters'])) {
      const typed = asObject(filter['typed_config']);
      if (typed?.['@type'] === HTTP_CONNECTION_MANAGER_TYPE) return typed;
    }
  }
  return undefined;
}

function tcpClusterOf(chains: readonly JsonObject[]): string | undefined {
  for (const chain of chains) {
    for (const filter of asObjects(chain['filters'])) {
      const typed = asObject(filter['typed_config']);
      if (typed?.['@type'] === TCP_PROXY_TYPE && typeof typed['cluster'] === 'string') return typed['cluster'];
    }
  }
  return undefined;
}

function splitAuthority(authority: string): { host: string; port: number } {
  const match = /^(.*):(\d+)$/.exec(authority);
  return match?.[1] && match[2] ? { host: match[1], port: Number(match[2]) } : { host: authority, port: 80 };
}

/** The listener a request enters: by name for gRPC, by destination port for a sidecar. */
function findListener(config: SentConfig, proxy: Proxy, authority: string): { listener: EnvoyResource; kind: 'api' | 'http' | 'tcp' | 'virtualOutbound' } | undefined {
  const named = byName(config.listeners, authority);
  if (named) return { listener: named, kind: named.json['api_listener'] ? 'api' : 'http' };
  if (proxy.generator === 'grpc') return undefined;
  const { port } = splitAuthority(authority);
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

interface Entered {
  readonly listener: EnvoyResource;
  readonly kind: 'api' | 'http' | 'tcp' | 'virtualOutbound';
  /** The chains a request may take: the one Envoy picked by SNI for a gateway, else all. */
  readonly chains: readonly JsonObject[];
  readonly chain: SelectedChain | null;
}


const listenerNames = (config: SentConfig): string => config.listeners.map((l) => l.name).join(', ') || 'none';

/**
 * A gateway's entry: the listener of the Gateway server on the request's port, then the filter
 * chain Envoy picks by SNI (https) or the one without SNI (http). A string says why there is none.
 */
function enterGateway(config: SentConfig, merged: MergedGateway | undefined, facts: RequestFacts): Entered | string {
  const scheme = facts.scheme ?? 'http';
  const port = requestPort(facts.authority, scheme);
  const name = gatewayListenerName(merged, port);
  const listener = byName(config.listeners, name);
  if (!listener) return `no Gateway server selecting this proxy listens on port ${String(port)} (the proxy has listeners: ${listenerNames(config)}): the connection is refused`;
  const host = hostOf(facts.authority);
  const chain = selectFilterChain(listener.json, scheme === 'https' ? host : undefined);
  if (!chain) {
    const offered = asObjects(listener.json['filter_chains']).flatMap((c) => strings(asObject(c['filter_chain_match'])?.['server_names'])).join(', ');
    return `no filter chain of listener ${name} takes ${scheme === 'https' ? `SNI ${host}` : 'a connection without SNI'} (its chains take SNI: ${offered || 'none'}): Envoy closes the connection`;
  }
  if (chain.terminatesTls && scheme !== 'https') return `listener ${name} terminates TLS on the chain it picks: a plaintext request fails the handshake (write https://)`;
  const http = httpConnectionManagerOf(listener.json, [chain.chain]) !== undefined;
  if (!chain.terminatesTls && http && scheme === 'https') return `listener ${name} serves plaintext HTTP: a TLS handshake fails (write http://)`;
  return { listener, kind: http ? 'http' : 'tcp', chains: [chain.chain], chain };
}

/**
 * Walks listener -> (filter chain) -> route configuration -> virtual host -> first matching route
 * -> clusters -> endpoints, as the proxy would with what it was sent. `push` only adds attribution.
 */
export function explainRequest(config: SentConfig, proxy: Proxy, request: RequestFacts, push?: PushContext): Explanation {
  const facts: RequestFacts = { ...request, headers: Object.fromEntries(Object.entries(request.headers).map(([k, v]) => [k.toLowerCase(), v])) };
  const base = { request: facts, listener: null, gateway: null, routeConfig: null, virtualHost: null, route: null, skipped: [], clusters: [], policy: null };
  const isGateway = proxy.type === 'router';
  const merged = isGateway ? push?.gatewayFor(proxy) : undefined;
  let found: Entered | string | undefined;
  if (isGateway) found = enterGateway(config, merged, facts);
  else {
    const plain = findListener(config, proxy, facts.authority);
    found = plain && { ...plain, chains: asObjects(plain.listener.json['filter_chains']), chain: null };
  }
  if (found === undefined) return { ...base, outcome: 'no_listener', summary: `the proxy was sent no listener for ${facts.authority} (it has: ${listenerNames(config)})` };
  const host = hostOf(facts.authority);
  if (typeof found === 'string') {
    const port = requestPort(facts.authority, facts.scheme ?? 'http');
    const name = gatewayListenerName(merged, port);
    const sent = byName(config.listeners, name);
    const gateway = gatewayServerFor(merged, name, undefined, host);
    const listener = sent ? { name, kind: 'tcp' as const, httpFilters: [] } : null;
    return { ...base, listener, gateway, outcome: sent ? 'no_filter_chain' : 'no_listener', summary: found };
  }
  const hcm = httpConnectionManagerOf(found.listener.json, found.chains);
  const httpFilters = asObjects(hcm?.['http_filters']).map((f) => str(f['name']));
  const chain = found.chain;
  const listener = { name: found.listener.name, kind: found.kind, httpFilters, ...(chain ? { filterChain: { index: chain.index, serverNames: chain.serverNames, terminatesTls: chain.terminatesTls } } : {}) };
  const rds = asObject(hcm?.['rds']);
  const routeName = typeof rds?.['route_config_name'] === 'string' ? rds['route_config_name'] : undefined;
  const gateway = isGateway ? gatewayServerFor(merged, listener.name, routeName, host) : null;
  const through = isGateway ? `, through ${gatewayLabel(gateway)}` : '';
  if (!hcm) {
    const cluster = tcpClusterOf(found.chains);
    const clusters = cluster ? [explainCluster(config, push, cluster, null, 100)] : [];
    const how = found.chain && found.chain.serverNames.length > 0 && !found.chain.terminatesTls ? `TLS passed through by SNI ${found.chain.serverNames.join(', ')}` : 'TCP';
    return { ...base, listener, gateway, clusters, outcome: 'tcp', summary: `${how}: listener ${found.listener.name} forwards to ${cluster ?? 'nothing'}${through}` };
  }
  const inline = asObject(hcm['route_config']);
  const routeConfigJson = inline ?? (routeName !== undefined ? byName(config.routes, routeName)?.json : undefined);
  const routeConfig = { name: routeName ?? str(inline?.['name']), sent: routeConfigJson !== undefined };
  const step = { ...base, listener, gateway, routeConfig };
  if (!routeConfigJson) {
    return { ...step, outcome: 'no_route_config', summary: `listener ${listener.name} uses route configuration "${routeConfig.name}", which the proxy was not sent` };
  }
  const virtualHosts = asObjects(routeConfigJson['virtual_hosts']);
  const selected = selectVirtualHost(virtualHosts, facts.authority, routeConfigJson['ignore_port_in_host_matching'] === true);
  if (!selected) {
    const summary = isGateway
      ? `no Gateway server on this port exposes host ${host} (route configuration "${routeConfig.name}" serves ${virtualHosts.flatMap((vh) => strings(vh['domains'])).join(', ') || 'no host'}): the proxy answers 404`
      : `no virtual host of route configuration "${routeConfig.name}" has a domain matching ${facts.authority}: the proxy answers 404`;
    return { ...step, outcome: 'no_virtual_host', summary };
  }
  const vhName = str(selected.virtualHost['name']);
  const service = push?.serviceByHost.get(vhName.replace(/:\d+$/, ''));
  const virtualHost = {
    name: vhName,
    domain: selected.domain,
    match: selected.match,
    service: service ? { kind: 'Service', namespace: service.namespace, name: service.name } : null,
  };
  if (selected.virtualHost['require_tls'] === 'ALL' && (facts.scheme ?? 'http') !== 'https') {
    const summary = `virtual host ${vhName} requires TLS (${gatewayLabel(gateway)} has httpsRedirect): the proxy answers 301 with location https://${host}${facts.path}`;
    return { ...step, virtualHost, outcome: 'redirect', summary, answer: REQUIRE_TLS_ANSWER };
  }
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
      const answer = routeAnswer(route, facts);
      const kind = answer ? `${answer.kind === 'redirect' ? 'a redirect' : 'a direct response'} ${String(answer.status)}` : 'no forwarding action';
      return { ...step, virtualHost, route: matched, skipped, outcome: 'no_action', summary: `route "${name}"${ruleLabel(rule)} answers with ${kind}${through}`, ...(answer ? { answer } : {}) };
    }
    const clusters = clustersOfAction(config, push, action);
    const targets = clusters.map((c) => (clusters.length > 1 ? `${c.name} (${c.percent}%)` : c.name)).join(', ');
    return {
      ...step,
      virtualHost,
      route: matched,
      skipped,
      clusters,
      policy: policyOf(route, selected.virtualHost),
      outcome: 'routed',
      summary: `route "${name}"${ruleLabel(rule)} of virtual host ${vhName} sends it to ${targets}${through}`,
    };
  }
  const summary = isGateway && routes.length === 0
    ? `no VirtualService bound to ${gatewayLabel(gateway)} serves host ${host}: the proxy answers 404`
    : `no route of virtual host ${vhName} matches: the proxy answers 404`;
  return { ...step, virtualHost, skipped, outcome: 'no_route', summary };
}
