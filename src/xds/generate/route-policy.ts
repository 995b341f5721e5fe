// The per-route policies of a VirtualService http route (retries, timeout, fault, mirror,
// headers, CORS, rewrite, redirect), as Istio writes them for Envoy, and what of each a
// proxyless gRPC client can use.
import { parseDuration, toDurationJson } from '../../model/duration.ts';
import type { CorsPolicy, Headers, HeaderOperations, HttpFaultInjection, HttpRedirect, HttpRetry, Percent } from '../../model/rules.ts';
import type { Cors_CorsPolicy, FaultAbort, FractionalPercent, HeaderValueOption, HTTPFault, RedirectAction, RedirectAction_RedirectResponseCode, Route, Route_RetryPolicy, Route_RetryPolicy_RetryHostPredicate, RouteAction, TypedAny } from '../envoy-types.generated.ts';
import { CORS_POLICY_TYPE, FAULT_TYPE, PREVIOUS_HOSTS_TYPE, PREVIOUS_PRIORITIES_TYPE } from '../type-urls.ts';
import { typed } from './common.ts';
import { stringMatcher, type NoteSink, type RouteDialect } from './route-match.ts';

export const FAULT_FILTER = 'envoy.filters.http.fault';
export const CORS_FILTER = 'envoy.filters.http.cors';

/** Istio's default when a VirtualService sets no retries. */
const DEFAULT_RETRY_ON = 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes';
const DEFAULT_ATTEMPTS = 2;

/** The retry_on conditions gRPC clients implement: gRPC status names. */
const GRPC_RETRY_CODES: ReadonlySet<string> = new Set(['cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted', 'unavailable']);
/** Envoy conditions whose gRPC counterpart is UNAVAILABLE (the call never reached a server). */
const UNAVAILABLE_LIKE: ReadonlySet<string> = new Set(['connect-failure', 'refused-stream', 'reset']);

const GRPC_STATUS_CODES: Readonly<Record<string, number>> = {
  OK: 0, CANCELLED: 1, UNKNOWN: 2, INVALID_ARGUMENT: 3, DEADLINE_EXCEEDED: 4, NOT_FOUND: 5, ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7, RESOURCE_EXHAUSTED: 8, FAILED_PRECONDITION: 9, ABORTED: 10, OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12, INTERNAL: 13, UNAVAILABLE: 14, DATA_LOSS: 15, UNAUTHENTICATED: 16,
};

export function grpcStatusNumber(name: string): number | undefined {
  return /^\d+$/.test(name) ? Number(name) : GRPC_STATUS_CODES[name.toUpperCase()];
}

/** Istio's Percent (0..100, a double) as Envoy's FractionalPercent per million; absent means 100%. */
export function fractionalPercent(percent: Percent | undefined, legacyPercent?: number): FractionalPercent {
  if (percent?.value === undefined && legacyPercent !== undefined) return { numerator: legacyPercent, denominator: 'HUNDRED' };
  return { numerator: Math.round((percent?.value ?? 100) * 10_000), denominator: 'MILLION' };
}

const PREVIOUS_HOSTS: Route_RetryPolicy_RetryHostPredicate = { name: 'envoy.retry_host_predicates.previous_hosts', typed_config: typed(PREVIOUS_HOSTS_TYPE, {}) };

/**
 * Istio's retry policy (retry.go): unset means two retries on connection-level failures, away from
 * hosts already tried unless the route hashes; `attempts` of 0 or less means none.
 */
function envoyRetryPolicy(retries: HttpRetry | undefined, hashes: boolean): Route_RetryPolicy | undefined {
  if (retries && (retries.attempts ?? 0) <= 0) return undefined;
  const policy: Route_RetryPolicy = { retry_on: DEFAULT_RETRY_ON, num_retries: retries?.attempts ?? DEFAULT_ATTEMPTS };
  const previousHosts = retries?.retryIgnorePreviousHosts ?? !hashes;
  if (previousHosts) policy['retry_host_predicate'] = [PREVIOUS_HOSTS];
  policy['host_selection_retry_max_attempts'] = '5';
  if (retries?.retryOn) {
    const conditions = retries.retryOn.split(',').map((c) => c.trim()).filter(Boolean);
    // Numeric conditions are status codes Envoy retries through "retriable-status-codes".
    const codes = conditions.filter((c) => /^\d+$/.test(c)).map(Number);
    const named = conditions.filter((c) => !/^\d+$/.test(c));
    if (codes.length > 0 && !named.includes('retriable-status-codes')) named.push('retriable-status-codes');
    policy['retry_on'] = named.join(',');
    if (codes.length > 0) policy['retriable_status_codes'] = codes;
  }
  if (retries?.perTryTimeout) policy['per_try_timeout'] = toDurationJson(retries.perTryTimeout);
  if (retries?.retryRemoteLocalities) {
    policy['retry_priority'] = {
      name: 'envoy.retry_priorities.previous_priorities',
      typed_config: typed(PREVIOUS_PRIORITIES_TYPE, { update_frequency: 2 }),
    };
  }
  if (retries?.backoff) policy['retry_back_off'] = { base_interval: toDurationJson(retries.backoff) };
  return policy;
}

function grpcRetryPolicy(retries: HttpRetry | undefined, notes: NoteSink, path: string): Route_RetryPolicy | undefined {
  if (retries && (retries.attempts ?? 0) <= 0) return undefined;
  const conditions = (retries?.retryOn ?? DEFAULT_RETRY_ON).split(',').map((c) => c.trim()).filter(Boolean);
  const codes = new Set<string>();
  const dropped: string[] = [];
  for (const condition of conditions) {
    if (GRPC_RETRY_CODES.has(condition)) codes.add(condition);
    else if (UNAVAILABLE_LIKE.has(condition)) codes.add('unavailable');
    else if (condition !== 'retriable-status-codes' || retries?.retryOn) dropped.push(condition);
  }
  if (retries && dropped.length > 0) {
    notes(`${path}.retries.retryOn`, `gRPC retries on gRPC status codes only: ${dropped.join(', ')} ignored for proxyless gRPC (connect-failure, refused-stream and reset count as unavailable)`);
  }
  if (retries?.perTryTimeout) notes(`${path}.retries.perTryTimeout`, 'gRPC clients have no per-try timeout: ignored for proxyless gRPC');
  if (retries?.retryRemoteLocalities) notes(`${path}.retries.retryRemoteLocalities`, 'gRPC clients have no retry priorities: ignored for proxyless gRPC');
  if (retries?.retryIgnorePreviousHosts) notes(`${path}.retries.retryIgnorePreviousHosts`, 'gRPC clients have no retry host predicates: ignored for proxyless gRPC');
  // An empty retry_on would be a policy that never retries; leave it out instead.
  if (codes.size === 0) return undefined;
  const policy: Route_RetryPolicy = { retry_on: [...codes].join(','), num_retries: retries?.attempts ?? DEFAULT_ATTEMPTS };
  // gRPC backs off exponentially from base_interval (A44), as Envoy does.
  if (retries?.backoff) policy['retry_back_off'] = { base_interval: toDurationJson(retries.backoff) };
  return policy;
}

/** `hashes`: the route has a consistent-hash policy, so retries may go back to the same host. */
export function retryPolicy(retries: HttpRetry | undefined, dialect: RouteDialect, notes: NoteSink, path: string, hashes = false): Route_RetryPolicy | undefined {
  return dialect === 'envoy' ? envoyRetryPolicy(retries, hashes) : grpcRetryPolicy(retries, notes, path);
}

/** Envoy's `timeout`, or gRPC's max_stream_duration (A31); "0s" and absent both mean no timeout. */
export function timeoutFields(timeout: string | undefined, dialect: RouteDialect): Pick<RouteAction, 'timeout' | 'max_grpc_timeout' | 'max_stream_duration'> {
  const value = timeout ? toDurationJson(timeout) : '0s';
  // Istio (route.go setTimeout) lets a gRPC caller's grpc-timeout header apply, up to the route's timeout.
  if (dialect === 'envoy') return { timeout: value, max_grpc_timeout: value };
  return value === '0s' ? { timeout: '0s' } : { timeout: '0s', max_stream_duration: { max_stream_duration: value } };
}

/** The fault filter's per-route config, or undefined when the route injects nothing. */
export function faultConfig(fault: HttpFaultInjection | undefined): TypedAny<typeof FAULT_TYPE> | undefined {
  if (!fault?.delay && !fault?.abort) return undefined;
  const body: HTTPFault = {};
  if (fault.delay?.fixedDelay) {
    body['delay'] = { fixed_delay: toDurationJson(fault.delay.fixedDelay), percentage: fractionalPercent(fault.delay.percentage, fault.delay.percent) };
  }
  const grpc = fault.abort?.grpcStatus !== undefined ? grpcStatusNumber(fault.abort.grpcStatus) : undefined;
  const http = fault.abort?.httpStatus;
  // As Istio: an abort with no error type aborts nothing.
  if (fault.abort && (grpc !== undefined || http !== undefined)) {
    body['abort'] = { ...((grpc !== undefined ? { grpc_status: grpc } : { http_status: http ?? 0 }) satisfies FaultAbort), percentage: fractionalPercent(fault.abort.percentage) };
  }
  return Object.keys(body).length > 0 ? typed(FAULT_TYPE, body) : undefined;
}

/** As Istio: `:authority` or `host` set on a request is a host rewrite, never a header to add. */
function isAuthority(name: string): boolean {
  const lower = name.toLowerCase();
  return lower === 'host' || lower === ':authority';
}

function headerOptions(operations: HeaderOperations | undefined, skipAuthority: boolean): HeaderValueOption[] {
  const out: HeaderValueOption[] = [];
  const sorted = (r: Readonly<Record<string, string>> | undefined): [string, string][] =>
    Object.entries(r ?? {})
      .filter(([key]) => !(skipAuthority && isAuthority(key)))
      .sort(([a], [b]) => (a < b ? -1 : 1));
  for (const [key, value] of sorted(operations?.set)) out.push({ header: { key, value }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' });
  for (const [key, value] of sorted(operations?.add)) out.push({ header: { key, value }, append_action: 'APPEND_IF_EXISTS_OR_ADD' });
  return out;
}

/** The authority a route's or destination's request headers rewrite to (`host_rewrite_literal`), if any. */
export function authorityRewrite(headers: Headers | undefined): string | undefined {
  for (const operations of [headers?.request?.set, headers?.request?.add]) {
    const found = Object.entries(operations ?? {}).find(([key]) => isAuthority(key));
    if (found) return found[1];
  }
  return undefined;
}

/** The header manipulation fields a Route and a weighted ClusterWeight share. */
export type HeaderFields = Pick<Route, 'request_headers_to_add' | 'request_headers_to_remove' | 'response_headers_to_add' | 'response_headers_to_remove'>;

/** request/response header manipulation fields of a Route or a weighted ClusterWeight. */
export function headerFields(headers: Headers | undefined): HeaderFields {
  const out: HeaderFields = {};
  const requestAdd = headerOptions(headers?.request, true);
  const responseAdd = headerOptions(headers?.response, false);
  if (requestAdd.length > 0) out['request_headers_to_add'] = requestAdd;
  if (headers?.request?.remove?.length) out['request_headers_to_remove'] = [...headers.request.remove];
  if (responseAdd.length > 0) out['response_headers_to_add'] = responseAdd;
  if (headers?.response?.remove?.length) out['response_headers_to_remove'] = [...headers.response.remove];
  return out;
}

export function hasHeaderOperations(headers: Headers | undefined): boolean {
  return Object.keys(headerFields(headers)).length > 0 || authorityRewrite(headers) !== undefined;
}

export function corsConfig(cors: CorsPolicy): TypedAny<typeof CORS_POLICY_TYPE> {
  const body: Cors_CorsPolicy = {};
  if (cors.allowOrigins?.length) {
    body['allow_origin_string_match'] = cors.allowOrigins.map(stringMatcher);
  }
  if (cors.allowMethods?.length) body['allow_methods'] = cors.allowMethods.join(',');
  if (cors.allowHeaders?.length) body['allow_headers'] = cors.allowHeaders.join(',');
  if (cors.exposeHeaders?.length) body['expose_headers'] = cors.exposeHeaders.join(',');
  if (cors.maxAge) body['max_age'] = String((parseDuration(cors.maxAge) ?? 0n) / 1_000_000_000n);
  if (cors.allowCredentials !== undefined) body['allow_credentials'] = cors.allowCredentials;
  return typed(CORS_POLICY_TYPE, body);
}

const REDIRECT_CODES: Readonly<Record<number, RedirectAction_RedirectResponseCode>> = {
  301: 'MOVED_PERMANENTLY',
  302: 'FOUND',
  303: 'SEE_OTHER',
  307: 'TEMPORARY_REDIRECT',
  308: 'PERMANENT_REDIRECT',
};

export function redirectAction(redirect: HttpRedirect): RedirectAction {
  const out: RedirectAction = {};
  if (redirect.prefixRewrite) out['prefix_rewrite'] = redirect.prefixRewrite;
  else if (redirect.uri) out['path_redirect'] = redirect.uri;
  if (redirect.authority) out['host_redirect'] = redirect.authority;
  if (redirect.port) out['port_redirect'] = redirect.port;
  if (redirect.scheme) out['scheme_redirect'] = redirect.scheme;
  const code = REDIRECT_CODES[redirect.redirectCode ?? 301];
  if (code && code !== 'MOVED_PERMANENTLY') out['response_code'] = code;
  return out;
}

export function isRedirectCode(code: number): boolean {
  return code in REDIRECT_CODES;
}
