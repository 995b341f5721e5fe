// VirtualService match conditions -> Envoy RouteMatch, in the dialect the client understands.
import type { HttpMatchRequest, RuleMeta, StringMatch } from '../../model/rules.ts';
import type { HeaderMatcher, QueryParameterMatcher, RouteMatch, StringMatcher } from '../envoy-types.generated.ts';
import { labelsMatch } from '../../model/service.ts';

/** Which fields the client understands: full Envoy, or what every gRPC version accepts. */
export type RouteDialect = 'envoy' | 'grpc';

/** Who is calling: a match on sourceLabels or sourceNamespace only applies to some proxies. */
export interface RouteCaller {
  readonly labels: Readonly<Record<string, string>>;
  readonly namespace: string | undefined;
  /** Set for a gateway proxy: the Gateway (`namespace/name`) whose server the routes are built for. */
  readonly gateway?: string;
}

/** Receives what a gRPC client cannot do, with the rule field it comes from (and the rule, when another wrote it: a delegate). */
export type NoteSink = (path: string, message: string, rule?: Pick<RuleMeta, 'kind' | 'namespace' | 'name'>) => void;

export const ignoreNotes: NoteSink = () => undefined;

export function stringMatcher(match: StringMatch): StringMatcher {
  if (match.exact !== undefined) return { exact: match.exact };
  // Envoy refuses an empty prefix (StringMatcher.prefix has min_len 1); it means "any value".
  if (match.prefix === '') return { safe_regex: { regex: '.*' } };
  if (match.prefix !== undefined) return { prefix: match.prefix };
  return { safe_regex: { regex: match.regex ?? '' } };
}

function isEmptyMatch(match: StringMatch): boolean {
  return match.exact === undefined && match.prefix === undefined && match.regex === undefined;
}

function headerMatcher(name: string, value: StringMatch, dialect: RouteDialect, invert: boolean): HeaderMatcher {
  const inverted: HeaderMatcher = invert ? { invert_match: true } : {};
  // `{}` means "present" (or, under withoutHeaders, "absent"); so does `prefix: ""`, which any value has.
  if (isEmptyMatch(value) || value.prefix === '') return { name, present_match: true, ...inverted };
  if (dialect === 'envoy') return { name, string_match: stringMatcher(value), ...inverted };
  // gRPC clients before 1.53 (C-core) reject string_match; the older fields work in every version.
  if (value.exact !== undefined) return { name, exact_match: value.exact, ...inverted };
  if (value.prefix !== undefined) return { name, prefix_match: value.prefix, ...inverted };
  return { name, safe_regex_match: { regex: value.regex ?? '' }, ...inverted };
}

function byName<T>(record: Readonly<Record<string, T>> | undefined): [string, T][] {
  return Object.entries(record ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Whether a match can apply to this caller on this port; Istio drops the others from the proxy's config. */
export function matchApplies(match: HttpMatchRequest | undefined, port: number, caller: RouteCaller): boolean {
  if (!match) return true;
  if (match.port !== undefined && match.port !== 0 && match.port !== port) return false;
  // On a gateway a match naming gateways applies to those only, whatever its source labels (Istio's sourceMatchHTTP).
  if (caller.gateway !== undefined && match.gateways && match.gateways.length > 0) return match.gateways.includes(caller.gateway);
  if (match.sourceLabels && !labelsMatch(match.sourceLabels, caller.labels)) return false;
  if (match.sourceNamespace !== undefined && match.sourceNamespace !== caller.namespace) return false;
  if (caller.gateway === undefined && match.gateways && match.gateways.length > 0 && !match.gateways.includes('mesh')) return false;
  return true;
}

/**
 * The RouteMatch of one Istio match. Returns undefined when a gRPC client could never satisfy it
 * (query parameters do not exist in gRPC), so the route is left out for gRPC.
 */
export function routeMatch(match: HttpMatchRequest | undefined, dialect: RouteDialect, notes: NoteSink, path: string): RouteMatch | undefined {
  const out: RouteMatch = {};
  const uri = match?.uri;
  if (uri?.exact !== undefined) out['path'] = uri.exact;
  else if (uri?.regex !== undefined) out['safe_regex'] = { regex: uri.regex };
  else out['prefix'] = uri?.prefix ?? '/';
  if (match?.ignoreUriCase) out['case_sensitive'] = false;

  const headers: HeaderMatcher[] = [];
  // Istio matches method, authority and scheme as the HTTP/2 pseudo-headers.
  for (const [key, pseudo] of [['method', ':method'], ['authority', ':authority'], ['scheme', ':scheme']] as const) {
    const value = match?.[key];
    if (value) headers.push(headerMatcher(pseudo, value, dialect, false));
  }
  for (const [name, value] of byName(match?.headers)) headers.push(headerMatcher(name, value, dialect, false));
  for (const [name, value] of byName(match?.withoutHeaders)) headers.push(headerMatcher(name, value, dialect, true));
  if (headers.length > 0) out['headers'] = headers;

  const query = byName(match?.queryParams);
  if (query.length > 0) {
    if (dialect === 'grpc') {
      notes(`${path}.queryParams`, 'gRPC requests have no query parameters: this match never applies to proxyless gRPC clients and is left out for them');
      return undefined;
    }
    out['query_parameters'] = query.map(([name, value]): QueryParameterMatcher =>
      // Istio reads `exact: ""` as "the parameter is present"; `prefix: ""` is the same.
      isEmptyMatch(value) || value.exact === '' || value.prefix === '' ? { name, present_match: true } : { name, string_match: stringMatcher(value) },
    );
  }
  return out;
}
