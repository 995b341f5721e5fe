// VirtualService http routes -> Envoy routes, shared by sidecar and proxyless gRPC route configs.
import type { PushContext, ResolvedVirtualService } from '../../model/push-context.ts';
import type { HttpMatchRequest, HttpRoute, HttpRouteDestination, StringMatch } from '../../model/rules.ts';
import type { Service, ServicePort } from '../../model/service.ts';
import { istioConfigMetadata } from '../attribution.ts';
import type { JsonObject } from '../proto-json.ts';
import { clusterName } from './names.ts';

/** Istio sets no route timeout unless the VirtualService asks for one. */
const NO_TIMEOUT = '0s';

function stringMatcher(match: StringMatch): JsonObject {
  if (match.exact !== undefined) return { exact: match.exact };
  if (match.prefix !== undefined) return { prefix: match.prefix };
  return { safe_regex: { regex: match.regex ?? '' } };
}

/** Which header-matcher fields the client understands. */
export type RouteDialect = 'envoy' | 'grpc';

function headerMatcher(name: string, value: StringMatch, dialect: RouteDialect): JsonObject {
  if (dialect === 'envoy') return { name, string_match: stringMatcher(value) };
  // gRPC clients before 1.53 (C-core) reject string_match; the older fields work in every version.
  if (value.exact !== undefined) return { name, exact_match: value.exact };
  if (value.prefix !== undefined) return { name, prefix_match: value.prefix };
  return { name, safe_regex_match: { regex: value.regex ?? '' } };
}

function routeMatch(match: HttpMatchRequest | undefined, dialect: RouteDialect): JsonObject {
  const out: JsonObject = {};
  const uri = match?.uri;
  if (uri?.exact !== undefined) out['path'] = uri.exact;
  else if (uri?.regex !== undefined) out['safe_regex'] = { regex: uri.regex };
  else out['prefix'] = uri?.prefix ?? '/';
  const headers = Object.entries(match?.headers ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (headers.length > 0) {
    out['headers'] = headers.map(([name, value]) => headerMatcher(name, value, dialect));
  }
  return out;
}

/** The port a destination means: the one it names, the service's only port, or the caller's port. */
function destinationPort(push: PushContext, target: HttpRouteDestination, callerPort: ServicePort): number {
  if (target.destination.port) return target.destination.port.number;
  const service = push.serviceByHost.get(target.destination.host);
  if (service?.ports.length === 1 && service.ports[0]) return service.ports[0].port;
  return callerPort.port;
}

function routeAction(push: PushContext, route: HttpRoute, port: ServicePort): JsonObject | undefined {
  const targets = route.route ?? [];
  const weighted = targets.length === 1 ? targets : targets.filter((t) => (t.weight ?? 0) > 0);
  const names = weighted.map((t) => clusterName(destinationPort(push, t, port), t.destination.host, t.destination.subset ?? ''));
  const [first] = names;
  if (first === undefined) return undefined;
  if (names.length === 1) return { cluster: first, timeout: NO_TIMEOUT };
  return {
    weighted_clusters: { clusters: weighted.map((t, i) => ({ name: names[i] ?? '', weight: t.weight ?? 0 })) },
    timeout: NO_TIMEOUT,
  };
}

export function defaultRoute(service: Service, port: ServicePort): JsonObject {
  return {
    name: 'default',
    match: { prefix: '/' },
    route: { cluster: clusterName(port.port, service.hostname), timeout: NO_TIMEOUT },
  };
}

/** The routes of one service port: its VirtualService's http routes in order, else the default route. */
export function buildHttpRoutes(
  push: PushContext,
  vs: ResolvedVirtualService | undefined,
  service: Service,
  port: ServicePort,
  dialect: RouteDialect,
): JsonObject[] {
  if (!vs) return [defaultRoute(service, port)];
  const routes: JsonObject[] = [];
  vs.http.forEach((route, index) => {
    const action = routeAction(push, route, port);
    if (!action) return;
    const matches: (HttpMatchRequest | undefined)[] = route.match && route.match.length > 0 ? [...route.match] : [undefined];
    for (const match of matches) {
      routes.push({
        name: route.name ?? match?.name ?? `${vs.rule.meta.namespace}/${vs.rule.meta.name}/http[${index}]`,
        match: routeMatch(match, dialect),
        route: action,
        metadata: istioConfigMetadata(vs.rule.meta, index),
      });
    }
  });
  return routes;
}
