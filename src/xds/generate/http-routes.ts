// VirtualService http routes -> Envoy routes, shared by sidecar and proxyless gRPC route configs.
import type { PushContext, ResolvedVirtualService } from '../../model/push-context.ts';
import type { Destination, HttpDirectResponse, HttpRoute, HttpRouteDestination, Percent } from '../../model/rules.ts';
import type { Service, ServicePort } from '../../model/service.ts';
import { istioConfigMetadata } from '../attribution.ts';
import type { Any, DirectResponseAction, Route, RouteAction, RouteAction_HashPolicy, RouteAction_RequestMirrorPolicy, RouteMatch, WeightedCluster_ClusterWeight } from '../envoy-types.generated.ts';
import { effectivePolicy, routeHashPolicy } from './cluster-traffic-policy.ts';
import { clusterName, parseClusterName } from './names.ts';
import { ignoreNotes, matchApplies, routeMatch, type NoteSink, type RouteCaller, type RouteDialect } from './route-match.ts';
import {
  CORS_FILTER,
  FAULT_FILTER,
  corsConfig,
  faultConfig,
  fractionalPercent,
  authorityRewrite,
  hasHeaderOperations,
  headerFields,
  type HeaderFields,
  redirectAction,
  retryPolicy,
  timeoutFields,
} from './route-policy.ts';

export type { RouteCaller, RouteDialect } from './route-match.ts';

/** The port a destination means: the one it names, the service's only port, or the caller's port. */
function destinationPort(push: PushContext, destination: { host: string; port?: { number: number } }, callerPort: ServicePort): number {
  if (destination.port) return destination.port.number;
  const service = push.serviceByHost.get(destination.host);
  if (service?.ports.length === 1 && service.ports[0]) return service.ports[0].port;
  return callerPort.port;
}

interface Translation {
  readonly push: PushContext;
  readonly port: ServicePort;
  readonly dialect: RouteDialect;
  readonly caller: RouteCaller;
  readonly notes: NoteSink;
}

/** Istio hashes only when every destination of the route agrees on the consistent-hash policy. */
function hashPolicy(t: Translation, targets: readonly HttpRouteDestination[]): RouteAction_HashPolicy[] | undefined {
  const policies = targets.map((target) => {
    const destination = target.destination;
    const rule = t.push.destinationRuleFor(destination.host, t.caller.namespace);
    const { policy } = effectivePolicy(rule, destination.subset, destinationPort(t.push, destination, t.port));
    return policy.loadBalancer?.consistentHash;
  });
  const [first] = policies;
  if (!first || policies.some((p) => JSON.stringify(p) !== JSON.stringify(first))) return undefined;
  // What hashing gRPC lacks is the DestinationRule's to report, not the route's.
  return routeHashPolicy(first, t.dialect, ignoreNotes, '');
}

function forwardAction(t: Translation, route: HttpRoute, path: string, gatewaySemantics: boolean): RouteAction | undefined {
  const targets = route.route ?? [];
  const weighted = targets.length === 1 ? targets : targets.filter((target) => (target.weight ?? 0) > 0);
  const names = weighted.map((target) =>
    clusterName(destinationPort(t.push, target.destination, t.port), target.destination.host, target.destination.subset ?? ''),
  );
  const [first] = names;
  if (first === undefined) return undefined;
  const action: RouteAction = {};
  const envoy = t.dialect === 'envoy';
  if (names.length === 1) {
    action['cluster'] = first;
  } else {
    action['weighted_clusters'] = {
      clusters: weighted.map((target, i): WeightedCluster_ClusterWeight => ({
        name: names[i] ?? '',
        weight: target.weight ?? 0,
        ...(envoy ? headerFields(target.headers) : {}),
        ...(envoy && authorityRewrite(target.headers) !== undefined ? ({ host_rewrite_literal: authorityRewrite(target.headers) } satisfies WeightedCluster_ClusterWeight) : {}),
      })),
    };
  }
  Object.assign(action, timeoutFields(route.timeout, t.dialect));
  const hash = hashPolicy(t, weighted);
  // Istio keeps retries on the hashed host only when the route has a single destination.
  const retries = retryPolicy(route.retries, t.dialect, t.notes, path, targets.length === 1 && hash !== undefined);
  if (retries) action['retry_policy'] = retries;
  if (hash) action['hash_policy'] = hash;
  if (!envoy) return action;
  // Gateway API: a backend that does not resolve answers 500 (Istio sets the same for its routes).
  if (gatewaySemantics) action['cluster_not_found_response_code'] = 'INTERNAL_SERVER_ERROR';
  const regexRewrite = route.rewrite?.uriRegexRewrite;
  if (regexRewrite) action['regex_rewrite'] = { pattern: { regex: regexRewrite.match ?? '' }, substitution: regexRewrite.rewrite ?? '' };
  else if (route.rewrite?.uri) action['prefix_rewrite'] = route.rewrite.uri;
  // As Istio: rewrite.authority or the route's request authority header, else a single destination's host header.
  const authority = route.rewrite?.authority ?? authorityRewrite(route.headers) ?? (weighted.length === 1 ? authorityRewrite(weighted[0]?.headers) : undefined);
  if (authority) action['host_rewrite_literal'] = authority;
  const mirrors = mirrorPolicies(t, route);
  if (mirrors.length > 0) action['request_mirror_policies'] = mirrors;
  return action;
}

/** `mirror` then each of `mirrors`, as Istio lists them; a 0% mirror is left out. */
function mirrorPolicies(t: Translation, route: HttpRoute): RouteAction_RequestMirrorPolicy[] {
  const all: { destination: Destination; percentage: Percent | undefined; legacy?: number }[] = [];
  if (route.mirror) all.push({ destination: route.mirror, percentage: route.mirrorPercentage, legacy: route.mirrorPercent });
  for (const mirror of route.mirrors ?? []) if (mirror.destination) all.push({ destination: mirror.destination, percentage: mirror.percentage });
  return all
    .filter(({ percentage, legacy }) => (percentage?.value ?? legacy ?? 100) > 0)
    .map(({ destination, percentage, legacy }): RouteAction_RequestMirrorPolicy => ({
      cluster: clusterName(destinationPort(t.push, destination, t.port), destination.host, destination.subset ?? ''),
      runtime_fraction: { default_value: fractionalPercent(percentage, legacy) },
      trace_sampled: false,
    }));
}

/** Istio's tracing span name: `host:port/path` for one destination, else `rule:port/path`. */
function routeOperation(match: RouteMatch, action: RouteAction | undefined, ruleName: string, port: number): string {
  const regex = match['safe_regex'];
  const path =
    typeof match['prefix'] === 'string' ? `${match['prefix']}*` : typeof match['path'] === 'string' ? match['path'] : (regex?.regex ?? '/*');
  const key = typeof action?.['cluster'] === 'string' ? parseClusterName(action['cluster']) : undefined;
  return key ? `${key.host}:${String(key.port)}${path}` : `${ruleName}:${String(port)}${path}`;
}

/** Istio's fixed response: status and an inline string or (base64) bytes. */
function directResponseAction(response: HttpDirectResponse): DirectResponseAction {
  const out: DirectResponseAction = { status: response.status };
  if (response.body?.string !== undefined) out['body'] = { inline_string: response.body.string };
  else if (response.body?.bytes !== undefined) out['body'] = { inline_bytes: response.body.bytes };
  return out;
}

/** What of a route a gRPC client cannot use, noted once per route. */
function noteGrpcGaps(route: HttpRoute, notes: NoteSink, path: string): void {
  if (route.mirror) notes(`${path}.mirror`, 'gRPC clients do not mirror traffic: ignored for proxyless gRPC');
  if (route.mirrors?.length) notes(`${path}.mirrors`, 'gRPC clients do not mirror traffic: ignored for proxyless gRPC');
  if (route.rewrite) notes(`${path}.rewrite`, 'gRPC clients cannot rewrite the method path or authority: ignored for proxyless gRPC');
  if (route.corsPolicy) notes(`${path}.corsPolicy`, 'CORS is for browsers: ignored for proxyless gRPC');
  if (hasHeaderOperations(route.headers) || (route.route ?? []).some((d) => hasHeaderOperations(d.headers))) {
    notes(`${path}.headers`, 'gRPC clients do not add or remove headers by route: ignored for proxyless gRPC');
  }
}

function translateRoute(root: Translation, vs: ResolvedVirtualService, route: HttpRoute, index: number): Route[] {
  // A route merged from a delegate is attributed to the delegate that wrote it (notes included).
  const origin = vs.origins?.[index] ?? { rule: vs.rule, index };
  const t: Translation = {
    ...root,
    notes: (path, message) => {
      root.notes(path, message, origin.rule.meta);
    },
  };
  // A rule converted from a Gateway API route is attributed to that route and its rule.
  const convertedFrom = vs.rule.meta.origin?.http[index];
  const path = convertedFrom ? `spec.rules[${convertedFrom.rule}]` : `spec.http[${origin.index}]`;
  if (route.redirect && t.dialect === 'grpc') {
    t.notes(`${path}.redirect`, 'gRPC clients cannot follow HTTP redirects: this route is left out for proxyless gRPC');
    return [];
  }
  if (route.directResponse && t.dialect === 'grpc') {
    t.notes(`${path}.directResponse`, 'gRPC clients cannot be given a fixed HTTP response: this route is left out for proxyless gRPC');
    return [];
  }
  if (t.dialect === 'grpc') noteGrpcGaps(route, t.notes, path);
  const matches = route.match && route.match.length > 0 ? route.match.map((m, i) => [m, i] as const) : [[undefined, 0] as const];
  const applicable = matches.filter(([match]) => matchApplies(match, t.port.port, t.caller));
  if (applicable.length === 0) return [];

  const body: Route = {};
  if (route.redirect) {
    body['redirect'] = redirectAction(route.redirect);
  } else if (route.directResponse) {
    body['direct_response'] = directResponseAction(route.directResponse);
  } else {
    const action = forwardAction(t, route, path, vs.rule.meta.origin !== undefined);
    if (!action) return [];
    body['route'] = action;
  }
  const perFilter: Record<string, Any> = {};
  const fault = faultConfig(route.fault);
  if (fault) perFilter[FAULT_FILTER] = fault;
  if (route.corsPolicy && t.dialect === 'envoy') perFilter[CORS_FILTER] = corsConfig(route.corsPolicy);
  if (Object.keys(perFilter).length > 0) body['typed_per_filter_config'] = perFilter;
  if (t.dialect === 'envoy') {
    // A single destination's header operations apply to the whole route.
    const single = route.route?.length === 1 ? route.route[0]?.headers : undefined;
    Object.assign(body, mergeHeaderFields(headerFields(route.headers), headerFields(single)));
  }

  const out: Route[] = [];
  for (const [match, i] of applicable) {
    const matchJson = routeMatch(match, t.dialect, t.notes, `${path}.match[${i}]`);
    if (!matchJson) continue;
    const operation = routeOperation(matchJson, body['route'], vs.rule.meta.name, t.port.port);
    out.push({
      name: route.name ?? match?.name ?? `${origin.rule.meta.namespace}/${origin.rule.meta.name}/http[${origin.index}]`,
      match: matchJson,
      ...body,
      ...(t.dialect === 'envoy' ? ({ decorator: { operation } } satisfies Route) : {}),
      // Which rule and http route produced this route, as Istio records it (explain, NACK attribution).
      metadata: convertedFrom ? istioConfigMetadata(convertedFrom, convertedFrom.rule) : istioConfigMetadata(origin.rule.meta, origin.index),
    });
  }
  return out;
}

/** `a` with `b`'s fields after it: lists both set are joined, in the order `b` has them. */
function mergeHeaderFields(a: HeaderFields, b: HeaderFields): HeaderFields {
  const out: HeaderFields = { ...a };
  const joined = <T>(first: readonly T[] | undefined, second: readonly T[] | undefined): readonly T[] | undefined => (first && second ? [...first, ...second] : second);
  for (const key of Object.keys(b)) {
    if (key === 'request_headers_to_add' || key === 'response_headers_to_add') out[key] = joined(out[key], b[key]);
    else if (key === 'request_headers_to_remove' || key === 'response_headers_to_remove') out[key] = joined(out[key], b[key]);
  }
  return out;
}

/** A service without a VirtualService: all of it, with Istio's default retries and its DestinationRule's hashing. */
function defaultRoute(t: Translation, service: Service): Route {
  const hash = hashPolicy(t, [{ destination: { host: service.hostname, port: { number: t.port.port } } }]);
  // Istio's default route keeps the previous-hosts predicate even when it hashes.
  const retries = retryPolicy(undefined, t.dialect, t.notes, '');
  return {
    name: 'default',
    match: { prefix: '/' },
    ...(t.dialect === 'envoy' ? ({ decorator: { operation: `${service.hostname}:${String(t.port.port)}/*` } } satisfies Route) : {}),
    route: {
      cluster: clusterName(t.port.port, service.hostname),
      ...timeoutFields(undefined, t.dialect),
      ...(retries ? ({ retry_policy: retries } satisfies RouteAction) : {}),
      ...(hash ? ({ hash_policy: hash } satisfies RouteAction) : {}),
    },
  };
}

const ANY_CALLER: RouteCaller = { labels: {}, namespace: undefined };

/**
 * The routes of one service port: its VirtualService's http routes in order, else the default
 * route. As Istio's sidecar routes, a VirtualService none of whose routes apply here (each matches
 * another port or other callers) leaves the port its default route.
 */
export function buildHttpRoutes(
  push: PushContext,
  vs: ResolvedVirtualService | undefined,
  service: Service,
  port: ServicePort,
  dialect: RouteDialect,
  caller: RouteCaller = ANY_CALLER,
  notes: NoteSink = () => undefined,
): Route[] {
  const t: Translation = { push, port, dialect, caller, notes };
  const routes = vs?.http.flatMap((route, index) => translateRoute(t, vs, route, index)) ?? [];
  return routes.length > 0 ? routes : [defaultRoute(t, service)];
}

/** A VirtualService's http routes as heard on `port` (a gateway server's port), for `caller`. */
export function buildVirtualServiceRoutes(push: PushContext, vs: ResolvedVirtualService, port: ServicePort, caller: RouteCaller): Route[] {
  const t: Translation = { push, port, dialect: 'envoy', caller, notes: () => undefined };
  return vs.http.flatMap((route, index) => translateRoute(t, vs, route, index));
}
