// The Gateway API's route rules as Istio http routes, shared by routes whose parent is a Service
// (GAMMA) and routes whose parent is a Gateway: matches, filters, weights, timeouts, retries, backends
// (cross-namespace only with a ReferenceGrant), the API's precedence, and the conditions they yield.
import type { HeaderOperations, HttpMatchRequest, HttpMirrorPolicy, HttpRedirect, HttpRetry, HttpRoute, HttpRouteDestination, RuleOrigin, StringMatch, ValidationIssue } from '../model/rules.ts';
import type { Service } from '../model/service.ts';
import { serviceHostname } from '../model/service.ts';
import type { RouteCondition } from '../model/route-status.ts';
import type { GatewayFilter, GatewayHeaderFilter, GatewayObjectRef, GatewayRouteInfo, GatewayRouteMatch, GatewayRouteRule, ReferenceGrantInfo } from './gateway-api-objects.ts';
import { durationMillis, GATEWAY_API_GROUP } from './gateway-api-objects.ts';

/** A destination no cluster serves, for a backend the route may not use: requests sent to it get 500 (cluster_not_found_response_code). */
export const UNRESOLVED_BACKEND_HOST = 'unresolved-backend.gateway-api.invalid';

/** A reason the route (Accepted) or one of its references (ResolvedRefs) is not as written. */
export interface RouteProblem {
  readonly condition: 'Accepted' | 'ResolvedRefs';
  readonly reason: string;
  readonly message: string;
  readonly path: string;
}

export interface ConvertedRoute {
  readonly route: HttpRoute;
  readonly match: GatewayRouteMatch | undefined;
  readonly origin: RuleOrigin['http'][number];
  readonly order: readonly [string, string, number];
}

function escapeRegex(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');
}

/** PathPrefix matches whole path elements: `/v2` is `/v2` itself or anything under `/v2/`. */
function uriMatches(match: GatewayRouteMatch | undefined): (StringMatch | undefined)[] {
  if (match?.grpc) {
    const { type, service, method } = match.grpc;
    if (type === 'Exact') {
      if (!method) return [{ prefix: `/${service ?? ''}/` }];
      return [service ? { exact: `/${service}/${method}` } : { regex: `/[^/]+/${escapeRegex(method)}` }];
    }
    return [{ regex: `/${service ?? '[^/]+'}/${method ?? '.+'}` }];
  }
  const path = match?.path;
  if (!path) return [undefined];
  if (path.type === 'Exact') return [{ exact: path.value }];
  if (path.type === 'RegularExpression') return [{ regex: path.value }];
  const prefix = path.value.replace(/\/+$/, '');
  return prefix === '' ? [{ prefix: '/' }] : [{ exact: prefix }, { prefix: `${prefix}/` }];
}

function valueMatch(type: string, value: string): StringMatch {
  return type === 'RegularExpression' ? { regex: value } : { exact: value };
}

function istioMatches(match: GatewayRouteMatch | undefined): HttpMatchRequest[] | undefined {
  const headers = Object.fromEntries((match?.headers ?? []).map((h) => [h.name, valueMatch(h.type, h.value)]));
  const queryParams = Object.fromEntries((match?.queryParams ?? []).map((q) => [q.name, valueMatch(q.type, q.value)]));
  const rest: HttpMatchRequest = {
    ...(Object.keys(headers).length > 0 ? { headers } : {}),
    ...(Object.keys(queryParams).length > 0 ? { queryParams } : {}),
    ...(match?.method ? { method: { exact: match.method } } : {}),
  };
  const out = uriMatches(match).map((uri): HttpMatchRequest => ({ ...(uri ? { uri } : {}), ...rest }));
  return out.length === 1 && Object.keys(out[0] ?? {}).length === 0 ? undefined : out;
}

function headerOperations(filter: GatewayHeaderFilter): HeaderOperations {
  const map = (pairs: readonly { name: string; value: string }[]): Record<string, string> | undefined => {
    const out: Record<string, string> = {};
    // "Subsequent entries with an equivalent header name MUST be ignored."
    for (const { name, value } of pairs) if (!(name.toLowerCase() in out)) out[name.toLowerCase()] = value;
    return Object.keys(out).length > 0 ? out : undefined;
  };
  const set = map(filter.set);
  const add = map(filter.add);
  return { ...(set ? { set } : {}), ...(add ? { add } : {}), ...(filter.remove.length > 0 ? { remove: [...filter.remove] } : {}) };
}

/** Looks up what a route may reach: Services, and ReferenceGrants for other namespaces. */
export class BackendResolver {
  constructor(
    readonly services: ReadonlyMap<string, Service>,
    /** Undefined for mesh routes: as Istio, their backends (and mirrors) need no ReferenceGrant. */
    readonly grants: readonly ReferenceGrantInfo[] | undefined,
  ) {}

  /** The destination for a backend, or a problem (the destination then answers 500). */
  resolve(route: GatewayRouteInfo, ref: GatewayObjectRef, path: string, problems: RouteProblem[]): HttpRouteDestination['destination'] {
    const unresolved = { host: UNRESOLVED_BACKEND_HOST, port: { number: ref.port ?? 80 } };
    if (!(ref.group === '' && ref.kind === 'Service')) {
      problems.push({ condition: 'ResolvedRefs', reason: 'InvalidKind', path: `${path}.kind`, message: `${ref.group || 'core'}/${ref.kind} is not a backend meshpilot can route to: use a Service (group "", kind Service); requests to it get 500` });
      return unresolved;
    }
    const namespace = ref.namespace ?? route.namespace;
    if (namespace !== route.namespace && !this.#granted(route, namespace, ref.name)) {
      problems.push({ condition: 'ResolvedRefs', reason: 'RefNotPermitted', path: `${path}.namespace`, message: `Service ${namespace}/${ref.name} is in another namespace and no ReferenceGrant in ${namespace} lets ${route.kind}s of ${route.namespace} refer to it: add one; requests to it get 500` });
      return unresolved;
    }
    const host = serviceHostname(ref.name, namespace);
    const service = this.services.get(host);
    const port = ref.port ?? 80;
    // The destination stays: its cluster appears, and the route works, once the Service does.
    if (!service) {
      problems.push({ condition: 'ResolvedRefs', reason: 'BackendNotFound', path: `${path}.name`, message: `Service ${namespace}/${ref.name} does not exist: create it or fix the name; requests to it get 500` });
    } else if (!service.ports.some((p) => p.port === port)) {
      problems.push({ condition: 'ResolvedRefs', reason: 'BackendNotFound', path: `${path}.port`, message: `Service ${namespace}/${ref.name} has no port ${port}: use one of ${service.ports.map((p) => p.port).join(', ')}; requests to it get 500` });
    }
    return { host, port: { number: port } };
  }

  #granted(route: GatewayRouteInfo, namespace: string, name: string): boolean {
    if (this.grants === undefined) return true;
    return referenceGranted(this.grants, { kind: route.kind, namespace: route.namespace }, { group: '', kind: 'Service', namespace, name });
  }
}

/** A ReferenceGrant in the target's namespace lets objects of `from` (a Gateway API kind) refer to it. */
export function referenceGranted(
  grants: readonly ReferenceGrantInfo[],
  from: { readonly kind: string; readonly namespace: string },
  to: { readonly group: string; readonly kind: string; readonly namespace: string; readonly name: string },
): boolean {
  return grants.some(
    (grant) =>
      grant.namespace === to.namespace &&
      grant.from.some((f) => f.group === GATEWAY_API_GROUP && f.kind === from.kind && f.namespace === from.namespace) &&
      grant.to.some((t) => t.group === to.group && t.kind === to.kind && (t.name === undefined || t.name === to.name)),
  );
}

function rewriteOf(filter: Extract<GatewayFilter, { type: 'URLRewrite' }>, match: GatewayRouteMatch | undefined): HttpRoute['rewrite'] {
  const authority = filter.hostname ? { authority: filter.hostname } : {};
  if (!filter.path) return filter.hostname ? authority : undefined;
  if (filter.path.type === 'ReplaceFullPath') return { ...authority, uriRegexRewrite: { match: '/.*', rewrite: filter.path.value } };
  // The matched prefix, on element boundaries, is replaced; the rest of the path is kept.
  const prefix = match?.path?.type === 'PathPrefix' ? match.path.value.replace(/\/+$/, '') : '';
  const replacement = filter.path.value.replace(/\/+$/, '');
  return { ...authority, uriRegexRewrite: { match: `^${escapeRegex(prefix)}(/?)(.*)`, rewrite: replacement === '' ? '/\\2' : `${replacement}\\1\\2` } };
}

function applyFilters(route: GatewayRouteInfo, rule: GatewayRouteRule, match: GatewayRouteMatch | undefined, path: string, resolver: BackendResolver, problems: RouteProblem[]): Partial<HttpRoute> | undefined {
  let out: Partial<HttpRoute> = {};
  const mirrors: HttpMirrorPolicy[] = [];
  for (const [i, filter] of rule.filters.entries()) {
    const filterPath = `${path}.filters[${i}]`;
    switch (filter.type) {
      case 'RequestHeaderModifier':
        out = { ...out, headers: { ...out.headers, request: headerOperations(filter.headers) } };
        break;
      case 'ResponseHeaderModifier':
        out = { ...out, headers: { ...out.headers, response: headerOperations(filter.headers) } };
        break;
      case 'RequestRedirect':
        out = {
          ...out,
          redirect: {
            redirectCode: filter.statusCode,
            ...(filter.scheme ? { scheme: filter.scheme } : {}),
            ...(filter.hostname ? { authority: filter.hostname } : {}),
            ...(filter.port !== undefined ? { port: filter.port } : {}),
            ...(filter.path?.type === 'ReplaceFullPath' ? { uri: filter.path.value } : {}),
            ...(filter.path?.type === 'ReplacePrefixMatch' ? { prefixRewrite: filter.path.value } : {}),
          },
        };
        break;
      case 'URLRewrite': {
        const rewrite = rewriteOf(filter, match);
        if (rewrite) out = { ...out, rewrite };
        break;
      }
      case 'RequestMirror':
        mirrors.push({
          destination: resolver.resolve(route, filter.backend, `${filterPath}.requestMirror.backendRef`, problems),
          ...(filter.percent !== undefined ? { percentage: { value: filter.percent } } : {}),
        });
        break;
      case 'Unsupported':
        problems.push({ condition: 'Accepted', reason: 'UnsupportedValue', path: `${filterPath}.type`, message: `filter type ${filter.filterType} is not implemented by meshpilot: remove it (RequestHeaderModifier, ResponseHeaderModifier, RequestRedirect, URLRewrite and RequestMirror are)` });
        return undefined;
    }
  }
  return mirrors.length > 0 ? { ...out, mirrors } : out;
}

function backendDestinations(route: GatewayRouteInfo, rule: GatewayRouteRule, path: string, resolver: BackendResolver, problems: RouteProblem[]): HttpRouteDestination[] | undefined {
  const weighted = rule.backendRefs.map((ref, index) => ({ ref, index })).filter(({ ref }) => ref.weight > 0);
  const out: HttpRouteDestination[] = [];
  for (const { ref, index } of weighted) {
    const backendPath = `${path}.backendRefs[${index}]`;
    const headers: { request?: HeaderOperations; response?: HeaderOperations } = {};
    for (const [i, filter] of ref.filters.entries()) {
      if (filter.type === 'RequestHeaderModifier') headers.request = headerOperations(filter.headers);
      else if (filter.type === 'ResponseHeaderModifier') headers.response = headerOperations(filter.headers);
      else {
        problems.push({ condition: 'Accepted', reason: 'UnsupportedValue', path: `${backendPath}.filters[${i}].type`, message: `a backendRef filter of type ${filter.type === 'Unsupported' ? filter.filterType : filter.type} is not implemented by meshpilot: use RequestHeaderModifier or ResponseHeaderModifier` });
        return undefined;
      }
    }
    out.push({
      destination: resolver.resolve(route, ref, backendPath, problems),
      ...(weighted.length > 1 ? { weight: ref.weight } : {}),
      ...(headers.request || headers.response ? { headers } : {}),
    });
  }
  return out;
}

function seconds(text: string | undefined): string | undefined {
  const millis = text === undefined ? 0 : durationMillis(text);
  return millis > 0 ? `${millis / 1000}s` : undefined;
}

/** Istio's retries for a rule's `retry`: connection failures always, plus the codes it lists. */
function retriesOf(rule: GatewayRouteRule): HttpRetry | undefined {
  if (!rule.retry) return undefined;
  const attempts = rule.retry.attempts ?? 2;
  const backoff = seconds(rule.retry.backoff);
  const perTryTimeout = seconds(rule.timeouts?.backendRequest);
  return {
    attempts,
    ...(attempts > 0 ? { retryOn: ['connect-failure', 'refused-stream', 'unavailable', 'cancelled', ...rule.retry.codes.map(String)].join(',') } : {}),
    ...(backoff ? { backoff } : {}),
    ...(perTryTimeout ? { perTryTimeout } : {}),
  };
}

/** As Istio: backendRequest is the per-try timeout with retries, else the route timeout in place of request. */
function timeoutOf(rule: GatewayRouteRule): string | undefined {
  return seconds(rule.retry ? rule.timeouts?.request : (rule.timeouts?.backendRequest ?? rule.timeouts?.request));
}

/** One Istio http route per Gateway API match (Istio splits them so each sorts on its own). */
function convertRule(route: GatewayRouteInfo, rule: GatewayRouteRule, ruleIndex: number, resolver: BackendResolver, problems: RouteProblem[]): ConvertedRoute[] | undefined {
  const path = `spec.rules[${ruleIndex}]`;
  if (rule.unsupported) {
    problems.push({ condition: 'Accepted', reason: 'UnsupportedValue', path: `${path}.${rule.unsupported}`, message: `${rule.unsupported} is not implemented by meshpilot: remove it` });
    return undefined;
  }
  const matches: (GatewayRouteMatch | undefined)[] = rule.matches.length > 0 ? [...rule.matches] : [undefined];
  const out: ConvertedRoute[] = [];
  for (const match of matches) {
    const filtered = applyFilters(route, rule, match, path, resolver, problems);
    if (!filtered) return undefined;
    const destinations = backendDestinations(route, rule, path, resolver, problems);
    if (!destinations) return undefined;
    const timeout = timeoutOf(rule);
    const retries = retriesOf(rule);
    const body: HttpRoute =
      filtered.redirect !== undefined
        ? filtered
        : destinations.length === 0
          ? // "If all backends have weight 0 (or there are none), requests get 500."
            { ...filtered, directResponse: { status: 500 } }
          : { ...filtered, route: destinations, ...(timeout ? { timeout } : {}), ...(retries ? { retries } : {}) };
    for (const [istioMatch, redirect] of redirectsPerMatch(istioMatches(match), body.redirect)) {
      out.push({
        route: { name: rule.name ?? `${route.namespace}.${route.name}.${ruleIndex}`, ...(istioMatch ? { match: istioMatch } : {}), ...body, ...(redirect ? { redirect } : {}) },
        match,
        origin: { kind: route.kind, namespace: route.namespace, name: route.name, rule: ruleIndex },
        order: [route.creationTimestamp ?? '', `${route.namespace}/${route.name}`, ruleIndex],
      });
    }
  }
  return out;
}

/**
 * A redirect's ReplacePrefixMatch swaps the matched prefix, which is `/v2` for the exact half of a
 * PathPrefix match and `/v2/` for the other: each half gets its own route and its own prefix.
 */
function redirectsPerMatch(matches: HttpMatchRequest[] | undefined, redirect: HttpRedirect | undefined): [HttpMatchRequest[] | undefined, HttpRedirect | undefined][] {
  if (redirect?.prefixRewrite === undefined) return [[matches, redirect]];
  const replacement = redirect.prefixRewrite.replace(/\/+$/, '');
  return (matches ?? [{}]).map((m) => [[m], { ...redirect, prefixRewrite: m.uri?.exact !== undefined ? replacement || '/' : `${replacement}/` }]);
}

function pathRank(match: GatewayRouteMatch | undefined): [number, number] {
  if (!match) return [-1, 0];
  if (match.grpc) return [match.grpc.type === 'Exact' ? (match.grpc.method ? 3 : 2) : 1, (match.grpc.service ?? '').length + (match.grpc.method ?? '').length];
  const path = match.path;
  if (!path) return [-1, 0];
  const rank = path.type === 'Exact' ? 3 : path.type === 'PathPrefix' ? 2 : 1;
  // As Istio: a prefix is compared without its trailing "/", except "/" itself.
  return [rank, path.type === 'PathPrefix' && path.value !== '/' ? path.value.replace(/\/+$/, '').length : path.value.length];
}

export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Oldest route first, then namespace/name, then the rule's position. */
function compareOrder(a: ConvertedRoute, b: ConvertedRoute): number {
  return compareText(a.order[0], b.order[0]) || compareText(a.order[1], b.order[1]) || a.order[2] - b.order[2];
}

/**
 * The Gateway API's precedence (as Istio sorts it): Exact path, then the longest prefix, then
 * regex; a method match; more header matches; more query matches; then the oldest route, its
 * namespace/name, and the rule's position. Matchless rules go last.
 */
export function compareMeshRoutes(a: ConvertedRoute, b: ConvertedRoute): number {
  const [ra, la] = pathRank(a.match);
  const [rb, lb] = pathRank(b.match);
  if (ra !== rb) return rb - ra;
  if (la !== lb) return lb - la;
  const ma = a.match?.method !== undefined ? 1 : 0;
  const mb = b.match?.method !== undefined ? 1 : 0;
  if (ma !== mb) return mb - ma;
  const ha = a.match?.headers.length ?? 0;
  const hb = b.match?.headers.length ?? 0;
  if (ha !== hb) return hb - ha;
  const qa = a.match?.queryParams.length ?? 0;
  const qb = b.match?.queryParams.length ?? 0;
  if (qa !== qb) return qb - qa;
  return compareOrder(a, b);
}

export function routeConditions(route: GatewayRouteInfo, problems: readonly RouteProblem[]): RouteCondition[] {
  const generation = route.generation !== undefined ? { observedGeneration: route.generation } : {};
  const accepted = problems.find((p) => p.condition === 'Accepted');
  const unresolved = problems.filter((p) => p.condition === 'ResolvedRefs');
  const [firstUnresolved] = unresolved;
  return [
    accepted
      ? { type: 'Accepted', status: 'False', reason: accepted.reason, message: accepted.message, ...generation }
      : { type: 'Accepted', status: 'True', reason: 'Accepted', message: 'Route was valid', ...generation },
    firstUnresolved
      ? { type: 'ResolvedRefs', status: 'False', reason: firstUnresolved.reason, message: unresolved.map((p) => p.message).join('; '), ...generation }
      : { type: 'ResolvedRefs', status: 'True', reason: 'ResolvedRefs', message: 'All references resolved', ...generation },
  ];
}

export function asIssue(problem: RouteProblem): ValidationIssue {
  const code = problem.reason === 'BackendNotFound' || problem.reason === 'NoMatchingParent' ? 'MP_REF_UNKNOWN' : 'MP_RULE_INVALID';
  const severity = problem.condition === 'Accepted' ? 'error' : 'warning';
  return { code, severity, path: problem.path, message: `${problem.condition}=False (${problem.reason}): ${problem.message}` };
}

export interface RouteRulesConversion {
  /** One Istio http route per match of every rule that converted. */
  readonly converted: readonly ConvertedRoute[];
  /** What stops the route (Accepted) or a backend (ResolvedRefs), each once. */
  readonly problems: readonly RouteProblem[];
  /** A rule asks for something meshpilot does not implement: the route is not served. */
  readonly hardError: boolean;
}

/** Every rule of a route, converted once whatever its parents are. */
export function convertRouteRules(route: GatewayRouteInfo, resolver: BackendResolver): RouteRulesConversion {
  const found: RouteProblem[] = [];
  const converted: ConvertedRoute[] = [];
  let hardError = false;
  for (const [index, rule] of route.rules.entries()) {
    const result = convertRule(route, rule, index, resolver, found);
    if (!result) hardError = true;
    else converted.push(...result);
  }
  // A rule with several matches is converted once per match: each problem counts once.
  const problems = found.filter((p, i) => found.findIndex((q) => q.path === p.path && q.reason === p.reason) === i);
  return { converted, problems, hardError };
}
