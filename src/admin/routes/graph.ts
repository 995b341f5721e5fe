// /debug/graphz: the service graph the routing rules draw — which service's traffic goes to
// which subset, under which match and weight — plus which proxies call which services.
import type { FastifyInstance } from 'fastify';
import type { PushContext } from '../../model/push-context.ts';
import type { HttpMatchRequest, StringMatch } from '../../model/rules.ts';
import { asObject, asObjects, routeRule, str, strings, type RuleRef } from '../../xds/attribution.ts';
import { parseClusterName, parseHostPort } from '../../xds/generate/names.ts';
import { resolveTargetHost } from '../../xds/generate/targets.ts';
import type { XdsConnection } from '../../xds/server/connection.ts';
import type { JsonObject } from '../../xds/proto-json.ts';
import { LISTENER_TYPE, ROUTE_TYPE, TCP_PROXY_TYPE } from '../../xds/type-urls.ts';
import { ruleRef } from '../schemas.ts';
import type { AdminViews } from '../views.ts';

interface GraphNode {
  readonly id: string;
  readonly kind: 'proxy' | 'gateway' | 'service' | 'subset';
  readonly label: string;
  readonly detail: string;
}

interface GraphEdge {
  readonly from: string;
  readonly to: string;
  readonly kind: 'calls' | 'enters' | 'routes';
  readonly percent: number | null;
  readonly match: string | null;
  readonly rule: { kind: string; namespace: string; name: string; httpRoute?: number } | null;
}

const graphz = {
  type: 'object',
  properties: {
    nodes: {
      type: 'array',
      items: { type: 'object', properties: { id: { type: 'string' }, kind: { type: 'string' }, label: { type: 'string' }, detail: { type: 'string' } } },
    },
    edges: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          from: { type: 'string' },
          to: { type: 'string' },
          kind: { type: 'string', enum: ['calls', 'enters', 'routes'], description: 'enters: a gateway routes outside traffic for these hosts to the service' },
          percent: { type: ['number', 'null'] },
          match: { type: ['string', 'null'] },
          rule: { type: ['object', 'null'], properties: ruleRef.properties },
        },
      },
    },
  },
} as const;

function describeString(match: StringMatch): string {
  if (match.exact !== undefined) return `= ${match.exact}`;
  if (match.prefix !== undefined) return `^= ${match.prefix}`;
  return `~ ${match.regex ?? ''}`;
}

function describeMatch(match: HttpMatchRequest): string {
  const parts: string[] = [];
  if (match.uri) parts.push(`uri ${describeString(match.uri)}`);
  for (const [name, value] of Object.entries(match.headers ?? {})) parts.push(`${name} ${describeString(value)}`);
  return parts.join(', ') || 'any';
}

function serviceLabel(push: PushContext, host: string): string {
  const service = push.serviceByHost.get(host);
  return service ? `${service.name}.${service.namespace}` : host;
}


/** The clusters a route (single, weighted) or a tcp_proxy (single, weighted) forwards to. */
function forwardedTo(action: JsonObject | undefined): string[] {
  if (typeof action?.['cluster'] === 'string') return [action['cluster']];
  return asObjects(asObject(action?.['weighted_clusters'])?.['clusters']).map((c) => str(c['name']));
}

/**
 * Where a gateway lets outside traffic in: each service a route it was sent reaches, with the
 * rule behind the route and the hosts it serves, and each service its TCP and TLS passthrough
 * chains forward to, with their SNI names.
 */
function gatewayEdges(push: PushContext, connection: XdsConnection, from: string): GraphEdge[] {
  const edges = new Map<string, GraphEdge>();
  const add = (cluster: string, hosts: readonly string[], rule: RuleRef | null): void => {
    const host = parseClusterName(cluster)?.host;
    if (!host || !push.serviceByHost.has(host)) return;
    const key = `${host}|${rule ? `${rule.namespace}/${rule.name}` : ''}`;
    const match = [...new Set([...(edges.get(key)?.match?.split(', ') ?? []), ...hosts])].join(', ');
    edges.set(key, { from, to: `service:${host}`, kind: 'enters', percent: null, match, rule: rule && { kind: rule.kind, namespace: rule.namespace, name: rule.name } });
  };
  for (const config of connection.watches.get(ROUTE_TYPE)?.sent?.resources ?? []) {
    for (const virtualHost of asObjects(config.json['virtual_hosts'])) {
      for (const route of asObjects(virtualHost['routes'])) {
        for (const cluster of forwardedTo(asObject(route['route']))) add(cluster, strings(virtualHost['domains']), routeRule(route) ?? null);
      }
    }
  }
  for (const listener of connection.watches.get(LISTENER_TYPE)?.sent?.resources ?? []) {
    for (const chain of asObjects(listener.json['filter_chains'])) {
      const sni = strings(asObject(chain['filter_chain_match'])?.['server_names']);
      for (const filter of asObjects(chain['filters'])) {
        const typed = asObject(filter['typed_config']);
        if (typed?.['@type'] !== TCP_PROXY_TYPE) continue;
        for (const cluster of forwardedTo(typed)) add(cluster, sni.length > 0 ? sni : [`TCP ${listener.name}`], null);
      }
    }
  }
  return [...edges.values()];
}

/** Services a proxy calls: the targets a gRPC client subscribed to; a sidecar may call any. */
function calledHosts(push: PushContext, connection: XdsConnection): string[] {
  const names = connection.watches.get(LISTENER_TYPE)?.names ?? [];
  return names.flatMap((name) => {
    const target = parseHostPort(name);
    const resolved = target && resolveTargetHost(push, target.host, target.port, connection.proxy?.namespace);
    return resolved ? [resolved.service.hostname] : [];
  });
}

export function buildGraph(push: PushContext, connections: readonly XdsConnection[]): { nodes: GraphNode[]; edges: GraphEdge[] } {
  const nodes = new Map<string, GraphNode>();
  const edges: GraphEdge[] = [];
  const subsetNode = (host: string, subset: string | undefined): string => {
    const id = `subset:${host}|${subset ?? ''}`;
    if (!nodes.has(id)) {
      const labels = push.destinationRuleByHost.get(host)?.spec.subsets?.find((s) => s.name === subset)?.labels ?? {};
      const detail = subset ? Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(',') || 'no labels' : 'every endpoint';
      nodes.set(id, { id, kind: 'subset', label: `${serviceLabel(push, host)} ${subset ?? '(all)'}`, detail });
    }
    return id;
  };
  for (const service of push.services) {
    nodes.set(`service:${service.hostname}`, { id: `service:${service.hostname}`, kind: 'service', label: `${service.name}.${service.namespace}`, detail: service.hostname });
  }
  for (const service of push.services) {
    const from = `service:${service.hostname}`;
    const vs = push.virtualServiceByHost.get(service.hostname);
    if (!vs) {
      edges.push({ from, to: subsetNode(service.hostname, undefined), kind: 'routes', percent: 100, match: 'no VirtualService', rule: null });
      continue;
    }
    vs.http.forEach((http, index) => {
      const targets = http.route ?? [];
      const total = targets.length === 1 ? 1 : targets.reduce((sum, t) => sum + (t.weight ?? 0), 0);
      const match = http.match && http.match.length > 0 ? http.match.map(describeMatch).join(' or ') : 'default';
      for (const target of targets) {
        const weight = targets.length === 1 ? 1 : (target.weight ?? 0);
        if (weight === 0) continue;
        edges.push({
          from,
          to: subsetNode(target.destination.host, target.destination.subset),
          kind: 'routes',
          percent: total > 0 ? Math.round((weight / total) * 10000) / 100 : 0,
          match,
          rule: { kind: vs.rule.meta.kind, namespace: vs.rule.meta.namespace, name: vs.rule.meta.name, httpRoute: index },
        });
      }
    });
  }
  for (const connection of connections) {
    if (!connection.proxy) continue;
    const id = `proxy:${connection.proxy.id}`;
    if (connection.proxy.type === 'router' && connection.proxy.generator !== 'grpc') {
      const gateways = push.gatewayFor(connection.proxy)?.gatewayNames ?? [];
      const detail = gateways.length > 0 ? `gateway: ${gateways.join(', ')}` : 'gateway: no Gateway selects it';
      nodes.set(id, { id, kind: 'gateway', label: connection.proxy.podName ?? connection.proxy.id, detail });
      edges.push(...gatewayEdges(push, connection, id));
      continue;
    }
    const hosts = connection.proxy.generator === 'grpc' ? calledHosts(push, connection) : [];
    const detail = connection.proxy.generator === 'grpc' ? 'proxyless gRPC' : 'Envoy sidecar: may call any service';
    nodes.set(id, { id, kind: 'proxy', label: connection.proxy.podName ?? connection.proxy.id, detail });
    for (const host of new Set(hosts)) edges.push({ from: id, to: `service:${host}`, kind: 'calls', percent: null, match: null, rule: null });
  }
  return { nodes: [...nodes.values()], edges };
}

export function registerGraphRoutes(app: FastifyInstance, views: AdminViews): void {
  app.get('/debug/graphz', {
    schema: { summary: 'Service graph from the routing rules: service -> subset edges with match and weight, proxy -> service calls, gateway -> service entries', response: { 200: graphz } },
    handler: () => {
      const push = views.currentPush();
      return push ? buildGraph(push, views.connections()) : { nodes: [], edges: [] };
    },
  });
}
