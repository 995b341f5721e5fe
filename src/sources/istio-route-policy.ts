// Validation of the policies on a VirtualService http route (timeout, retries, fault, mirror,
// redirect, rewrite, headers, CORS) with Istio's rules and Envoy's limits.
import type { Fields } from './object-fields.ts';
import { describeType, isFields } from './object-fields.ts';
import {
  checkBoolean,
  checkDuration,
  checkInteger,
  checkPercent,
  checkStringMatch,
  isHeaderName,
  IssueList,
  mapAt,
  mapsIn,
  stringsIn,
} from './istio-fields.ts';

/** Envoy's retry_on conditions (HTTP and gRPC); a number is a retriable status code. */
const RETRY_ON = new Set([
  '5xx', 'gateway-error', 'reset', 'reset-before-request', 'connect-failure', 'envoy-ratelimited', 'retriable-4xx', 'refused-stream',
  'retriable-status-codes', 'retriable-headers', 'http3-post-connect-failure',
  'cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted', 'unavailable',
]);
const GRPC_STATUS_NAMES = [
  'OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED',
];
const REDIRECT_CODES = [301, 302, 303, 307, 308];

function checkRetries(value: unknown, path: string, issues: IssueList): void {
  const retries = mapAt(value, path, 'retries: { attempts: 3, perTryTimeout: 2s, retryOn: "5xx,connect-failure" }', issues);
  if (!retries) return;
  checkInteger(retries['attempts'], `${path}.attempts`, issues, 0, 2_147_483_647);
  checkDuration(retries['perTryTimeout'], `${path}.perTryTimeout`, issues);
  checkBoolean(retries['retryRemoteLocalities'], `${path}.retryRemoteLocalities`, issues);
  const retryOn = retries['retryOn'];
  if (retryOn === undefined) return;
  if (typeof retryOn !== 'string') {
    issues.error(`${path}.retryOn`, `must be a comma-separated string, got ${describeType(retryOn)}: write e.g. "5xx,connect-failure"`);
    return;
  }
  for (const condition of retryOn.split(',').map((c) => c.trim())) {
    if (RETRY_ON.has(condition)) continue;
    if (/^\d+$/.test(condition) && Number(condition) >= 100 && Number(condition) <= 599) continue;
    issues.error(`${path}.retryOn`, `"${condition}" is not a retry condition: use Envoy's (5xx, gateway-error, reset, connect-failure, retriable-4xx, refused-stream, ...), gRPC status names (unavailable, cancelled, ...) or an HTTP status code`);
  }
}

function checkFault(value: unknown, path: string, issues: IssueList): void {
  const fault = mapAt(value, path, 'fault: { delay: { fixedDelay: 7s, percentage: { value: 100 } } }', issues);
  if (!fault) return;
  if (fault['delay'] === undefined && fault['abort'] === undefined) {
    issues.error(path, 'injects nothing: give it a delay, an abort, or both');
  }
  const delay = mapAt(fault['delay'], `${path}.delay`, 'delay: { fixedDelay: 7s, percentage: { value: 100 } }', issues);
  if (delay) {
    if (delay['fixedDelay'] === undefined) issues.error(`${path}.delay.fixedDelay`, 'is required: say how long to delay, e.g. fixedDelay: 5s');
    checkDuration(delay['fixedDelay'], `${path}.delay.fixedDelay`, issues);
    checkPercent(delay['percentage'], `${path}.delay.percentage`, issues);
    checkInteger(delay['percent'], `${path}.delay.percent`, issues, 0, 100);
  }
  const abort = mapAt(fault['abort'], `${path}.abort`, 'abort: { httpStatus: 503, percentage: { value: 10 } }', issues);
  if (abort) {
    const http = abort['httpStatus'];
    const grpc = abort['grpcStatus'];
    if (http === undefined && grpc === undefined) issues.error(`${path}.abort`, 'needs httpStatus or grpcStatus: say what error to return, e.g. httpStatus: 503');
    if (http !== undefined && grpc !== undefined) issues.error(`${path}.abort`, 'has both httpStatus and grpcStatus: keep one of them');
    checkInteger(http, `${path}.abort.httpStatus`, issues, 200, 599);
    if (grpc !== undefined && (typeof grpc !== 'string' || !GRPC_STATUS_NAMES.includes(grpc))) {
      issues.error(`${path}.abort.grpcStatus`, `${describeType(grpc)} is not a gRPC status: use a name such as UNAVAILABLE or INTERNAL`);
    }
    checkPercent(abort['percentage'], `${path}.abort.percentage`, issues);
  }
}

const HOST_REFUSED = 'Envoy does not let a route remove the host header or set it on a response: to change where a request goes, set it on the request or use rewrite.authority';

function isHostHeader(name: string): boolean {
  return name.toLowerCase() === 'host';
}

/** As Istio: a request may have its authority set through `:authority` or `host`; it becomes a host rewrite. */
export function isAuthorityHeader(name: string): boolean {
  return isHostHeader(name) || name.toLowerCase() === ':authority';
}

/** Where header operations sit: a route's request may set `:authority` or `host`, a destination's only `host` (as Istio). */
type HeaderPlace = 'route' | 'destination';

function checkHeaderOperations(value: unknown, path: string, issues: IssueList, authority: HeaderPlace | undefined): void {
  const operations = mapAt(value, path, 'request: { set: { x-version: v2 } }', issues);
  if (!operations) return;
  for (const key of ['set', 'add']) {
    const entries = mapAt(operations[key], `${path}.${key}`, `${key}: { x-version: v2 }`, issues);
    for (const [name, header] of Object.entries(entries ?? {})) {
      const rewritesAuthority = authority !== undefined && (isHostHeader(name) || (authority === 'route' && isAuthorityHeader(name)));
      if (rewritesAuthority) {
        // Istio turns it into host_rewrite_literal.
      } else if (!isHeaderName(name) || name.startsWith(':')) {
        issues.error(`${path}.${key}.${name}`, `"${name}" is not a header Envoy lets a route set: use letters, digits and hyphens, no pseudo-headers${authority === 'destination' ? ' (a destination rewrites the authority with host)' : ''}`);
      } else if (isHostHeader(name)) issues.error(`${path}.${key}.${name}`, HOST_REFUSED);
      if (typeof header !== 'string') issues.error(`${path}.${key}.${name}`, `must be a string, got ${describeType(header)}: quote it`);
    }
  }
  for (const [index, name] of stringsIn(operations['remove'], `${path}.remove`, issues)) {
    if (!isHeaderName(name)) issues.error(`${path}.remove[${index}]`, `"${name}" is not a valid header name: use letters, digits and hyphens`);
    else if (isHostHeader(name)) issues.error(`${path}.remove[${index}]`, HOST_REFUSED);
  }
}

export function checkHeaders(value: unknown, path: string, issues: IssueList, place: HeaderPlace): void {
  const headers = mapAt(value, path, 'headers: { request: { set: { x-version: v2 } } }', issues);
  if (!headers) return;
  checkHeaderOperations(headers['request'], `${path}.request`, issues, place);
  checkHeaderOperations(headers['response'], `${path}.response`, issues, undefined);
}

/** As Istio: the authority is rewritten in one place only, rewrite.authority or one request header. */
function checkAuthorityOnce(route: Fields, path: string, issues: IssueList): void {
  const places: string[] = [];
  const rewrite = route['rewrite'];
  if (isFields(rewrite) && typeof rewrite['authority'] === 'string' && rewrite['authority'] !== '') places.push(`${path}.rewrite.authority`);
  const request = isFields(route['headers']) ? route['headers']['request'] : undefined;
  for (const key of ['set', 'add']) {
    const entries = isFields(request) ? request[key] : undefined;
    if (isFields(entries)) for (const name of Object.keys(entries)) if (isAuthorityHeader(name)) places.push(`${path}.headers.request.${key}.${name}`);
  }
  const [first, second] = places;
  if (first !== undefined && second !== undefined) issues.error(second, `the authority is already rewritten by ${first}: rewrite it in one place only`);
}

function checkCors(value: unknown, path: string, issues: IssueList): void {
  const cors = mapAt(value, path, 'corsPolicy: { allowOrigins: [{ exact: https://example.com }] }', issues);
  if (!cors) return;
  for (const [index, origin] of mapsIn(cors['allowOrigins'], `${path}.allowOrigins`, 'string match', issues)) {
    checkStringMatch(origin, `${path}.allowOrigins[${index}]`, true, issues);
  }
  for (const key of ['allowMethods', 'allowHeaders', 'exposeHeaders']) stringsIn(cors[key], `${path}.${key}`, issues);
  checkDuration(cors['maxAge'], `${path}.maxAge`, issues);
  checkBoolean(cors['allowCredentials'], `${path}.allowCredentials`, issues);
}

function checkRedirect(value: unknown, path: string, issues: IssueList): void {
  const redirect = mapAt(value, path, 'redirect: { uri: /v1/bookinfo, authority: newratings.default.svc.cluster.local }', issues);
  if (!redirect) return;
  const code = redirect['redirectCode'];
  if (code !== undefined && (typeof code !== 'number' || !REDIRECT_CODES.includes(code))) {
    issues.error(`${path}.redirectCode`, `${describeType(code)} is not a redirect code Envoy can send: use one of ${REDIRECT_CODES.join(', ')}`);
  }
  checkInteger(redirect['port'], `${path}.port`, issues, 1, 65535);
}

function checkRewrite(value: unknown, path: string, issues: IssueList): void {
  const rewrite = mapAt(value, path, 'rewrite: { uri: /v1/bookinfo }', issues);
  if (!rewrite) return;
  if (rewrite['uri'] === undefined && rewrite['authority'] === undefined && rewrite['uriRegexRewrite'] === undefined) {
    issues.error(path, 'rewrites nothing: give it uri or authority');
  }
}

/** Everything on an http route besides its matches and destinations. */
export function checkHttpRoutePolicies(route: Fields, path: string, issues: IssueList): void {
  checkDuration(route['timeout'], `${path}.timeout`, issues, { allowZero: true });
  checkRetries(route['retries'], `${path}.retries`, issues);
  checkFault(route['fault'], `${path}.fault`, issues);
  checkPercent(route['mirrorPercentage'], `${path}.mirrorPercentage`, issues);
  if (route['mirrorPercentage'] !== undefined && route['mirror'] === undefined) {
    issues.error(`${path}.mirrorPercentage`, 'has no mirror to apply to: add mirror: { host: <service> } or remove it');
  }
  checkHeaders(route['headers'], `${path}.headers`, issues, 'route');
  checkAuthorityOnce(route, path, issues);
  checkCors(route['corsPolicy'], `${path}.corsPolicy`, issues);
  checkRedirect(route['redirect'], `${path}.redirect`, issues);
  checkRewrite(route['rewrite'], `${path}.rewrite`, issues);
  if (route['redirect'] !== undefined && route['rewrite'] !== undefined) {
    issues.error(`${path}.rewrite`, 'a route cannot both redirect and rewrite: keep one of them');
  }
  if (route['directResponse'] !== undefined && isFields(route['directResponse'])) {
    checkInteger(route['directResponse']['status'], `${path}.directResponse.status`, issues, 200, 599);
  }
}
