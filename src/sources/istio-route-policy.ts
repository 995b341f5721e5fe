// Validation of the policies on a VirtualService http route (timeout, retries, fault, mirror,
// redirect, rewrite, headers, CORS) with Istio's rules and Envoy's limits.
import { parseDuration } from '../model/duration.ts';
import type { Fields } from './object-fields.ts';
import { describeType, isFields } from './object-fields.ts';
import {
  checkBoolean,
  checkDuration,
  checkInteger,
  checkPercent,
  checkRegex,
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
const CORS_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'CONNECT', 'TRACE'];
/** Envoy's limit and Istio's: a direct response body is held in every proxy's route table. */
const KB = 1024;

function checkRetries(value: unknown, path: string, issues: IssueList): void {
  const retries = mapAt(value, path, 'retries: { attempts: 3, perTryTimeout: 2s, retryOn: "5xx,connect-failure" }', issues);
  if (!retries) return;
  checkInteger(retries['attempts'], `${path}.attempts`, issues, 0, 2_147_483_647);
  const configured = ['perTryTimeout', 'retryOn', 'retryRemoteLocalities'].filter((key) => retries[key] !== undefined);
  if ((retries['attempts'] === undefined || retries['attempts'] === 0) && configured.length > 0) {
    issues.error(path, `sets ${configured.join(' and ')} but attempts is ${retries['attempts'] === undefined ? 'unset' : '0'}, which disables retries: set attempts (e.g. attempts: 3) or remove ${configured.join(' and ')}`);
  }
  checkDuration(retries['perTryTimeout'], `${path}.perTryTimeout`, issues);
  checkDuration(retries['backoff'], `${path}.backoff`, issues);
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
    if (delay['exponentialDelay'] !== undefined) issues.error(`${path}.delay.exponentialDelay`, 'is not supported by Istio: use fixedDelay');
    else if (delay['fixedDelay'] === undefined) issues.error(`${path}.delay.fixedDelay`, 'is required: say how long to delay, e.g. fixedDelay: 5s');
    checkDuration(delay['fixedDelay'], `${path}.delay.fixedDelay`, issues);
    checkFaultPercent(delay['percentage'], `${path}.delay.percentage`, issues);
    checkInteger(delay['percent'], `${path}.delay.percent`, issues, 0, 100);
  }
  const abort = mapAt(fault['abort'], `${path}.abort`, 'abort: { httpStatus: 503, percentage: { value: 10 } }', issues);
  if (abort) {
    const http = abort['httpStatus'];
    const grpc = abort['grpcStatus'];
    if (abort['http2Error'] !== undefined) issues.error(`${path}.abort.http2Error`, 'is not supported by Istio: use httpStatus or grpcStatus');
    else if (http === undefined && grpc === undefined) {
      issues.warn(`${path}.abort`, 'has no error type, so nothing is aborted (as in Istio): say what error to return, e.g. httpStatus: 503', 'MP_RULE_WARNING');
    }
    if (http !== undefined && grpc !== undefined) issues.error(`${path}.abort`, 'has both httpStatus and grpcStatus: keep one of them');
    checkInteger(http, `${path}.abort.httpStatus`, issues, 200, 599);
    if (grpc !== undefined && (typeof grpc !== 'string' || !GRPC_STATUS_NAMES.includes(grpc))) {
      issues.error(`${path}.abort.grpcStatus`, `${describeType(grpc)} is not a gRPC status: use a name such as UNAVAILABLE or INTERNAL`);
    }
    checkFaultPercent(abort['percentage'], `${path}.abort.percentage`, issues);
  }
}

/** A fault's share of requests: 0, or 0.0001 to 100 (Envoy's finest fraction is a millionth). */
function checkFaultPercent(value: unknown, path: string, issues: IssueList): void {
  checkPercent(value, path, issues);
  const number = isFields(value) ? value['value'] : undefined;
  if (typeof number === 'number' && number > 0 && number < 0.0001) {
    issues.error(`${path}.value`, `${number} is below the smallest share Istio takes (0.0001): use 0 or at least 0.0001`);
  }
}

/**
 * Why Envoy would refuse a header value: a control character, or a "%" that neither doubles as
 * "%%" nor opens a closed %VARIABLE% / %VARIABLE(args)% (Envoy's header formatter).
 */
export function headerValueProblem(value: string): string | undefined {
  if (Array.from({ length: value.length }, (_, i) => value.charCodeAt(i)).some((c) => (c < 32 && c !== 9) || c === 127)) return 'has a control character (a newline?): header values are one line of text';
  let at = 0;
  while (at < value.length) {
    const percent = value.indexOf('%', at);
    if (percent < 0) return undefined;
    if (value[percent + 1] === '%') {
      at = percent + 2;
      continue;
    }
    const name = /^[A-Za-z0-9_]*/.exec(value.slice(percent + 1))?.[0] ?? '';
    const after = percent + 1 + name.length;
    const close = value[after] === '(' ? value.indexOf(')%', after) : value[after] === '%' ? after - 1 : -1;
    if (name === '' || close < 0) return 'has a "%" Envoy cannot read: write "%%" for a percent sign, or a variable as %NAME%';
    at = close + 2;
  }
  return undefined;
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
      else {
        const problem = headerValueProblem(header);
        if (problem) issues.error(`${path}.${key}.${name}`, `${JSON.stringify(header.length > 40 ? `${header.slice(0, 40)}...` : header)} ${problem}`);
      }
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
  for (const [index, origin] of mapsIn(cors['allowOrigins'], `${path}.allowOrigins`, 'string match', issues)) {
    if (['exact', 'prefix', 'regex'].every((key) => origin[key] === undefined || origin[key] === '')) {
      issues.error(`${path}.allowOrigins[${index}]`, 'matches no origin: give exact, prefix or regex a value, e.g. { exact: https://example.com }');
    }
  }
  for (const [index, method] of stringsIn(cors['allowMethods'], `${path}.allowMethods`, issues)) {
    if (!CORS_METHODS.includes(method)) issues.error(`${path}.allowMethods[${index}]`, `"${method}" is not an HTTP method: use one of ${CORS_METHODS.join(', ')}`);
  }
  for (const key of ['allowHeaders', 'exposeHeaders']) {
    for (const [index, name] of stringsIn(cors[key], `${path}.${key}`, issues)) {
      if (name !== '*' && !isHeaderName(name)) issues.error(`${path}.${key}[${index}]`, `"${name}" is not a header name: use letters, digits and hyphens`);
    }
  }
  checkDuration(cors['maxAge'], `${path}.maxAge`, issues);
  if (typeof cors['maxAge'] === 'string' && (parseDuration(cors['maxAge']) ?? 0n) % 1_000_000_000n !== 0n) {
    issues.error(`${path}.maxAge`, `"${cors['maxAge']}" is not whole seconds, which is all a CORS max age holds: round it, e.g. 24h or 90s`);
  }
  checkBoolean(cors['allowCredentials'], `${path}.allowCredentials`, issues);
}

/** As Istio: prefixRewrite replaces the matched prefix, so it takes no uri beside it and only prefix uri matches. */
function checkRedirectPrefix(redirect: Fields, matches: unknown, path: string, issues: IssueList): void {
  if (redirect['prefixRewrite'] === undefined || redirect['prefixRewrite'] === '') return;
  if (typeof redirect['prefixRewrite'] !== 'string') {
    issues.error(`${path}.prefixRewrite`, `${describeType(redirect['prefixRewrite'])} is not a path prefix: write one, e.g. prefixRewrite: /v2`);
    return;
  }
  if (redirect['uri'] !== undefined && redirect['uri'] !== '') {
    issues.error(`${path}.prefixRewrite`, 'a redirect may give only one of uri and prefixRewrite: keep uri to replace the whole path, prefixRewrite to replace the matched prefix');
  }
  const uriMatches = Array.isArray(matches) ? matches.flatMap((m) => (isFields(m) && isFields(m['uri']) ? [m['uri']] : [])) : [];
  if (uriMatches.some((uri) => uri['prefix'] === undefined)) {
    issues.error(`${path}.prefixRewrite`, 'replaces the matched prefix, so every uri match of the route must be a prefix match: use uri: { prefix: ... }, or redirect with uri');
  }
}

function checkRedirect(value: unknown, matches: unknown, path: string, issues: IssueList): void {
  const redirect = mapAt(value, path, 'redirect: { uri: /v1/bookinfo, authority: newratings.default.svc.cluster.local }', issues);
  if (!redirect) return;
  checkRedirectPrefix(redirect, matches, path, issues);
  const code = redirect['redirectCode'];
  if (code !== undefined && (typeof code !== 'number' || !REDIRECT_CODES.includes(code))) {
    issues.error(`${path}.redirectCode`, `${describeType(code)} is not a redirect code Envoy can send: use one of ${REDIRECT_CODES.join(', ')}`);
  }
  checkInteger(redirect['port'], `${path}.port`, issues, 1, 65535);
  if (['uri', 'prefixRewrite', 'authority', 'scheme', 'port', 'derivePort'].every((key) => redirect[key] === undefined || redirect[key] === '')) {
    issues.error(path, 'redirects nowhere: give it a uri, prefixRewrite, authority, scheme or port');
  }
  const scheme = redirect['scheme'];
  if (scheme !== undefined && scheme !== 'http' && scheme !== 'https') issues.error(`${path}.scheme`, `${describeType(scheme)} is not a scheme a redirect may use: write http or https`);
}

function checkDirectResponse(value: unknown, path: string, issues: IssueList): void {
  const response = mapAt(value, path, 'directResponse: { status: 503 }', issues);
  if (!response) return;
  if (response['status'] === undefined) issues.error(`${path}.status`, 'is required: give the HTTP status to answer with, e.g. status: 503');
  checkInteger(response['status'], `${path}.status`, issues, 200, 599);
  const body = isFields(response['body']) ? response['body'] : {};
  const text = typeof body['string'] === 'string' ? body['string'] : typeof body['bytes'] === 'string' ? body['bytes'] : '';
  const size = typeof body['bytes'] === 'string' ? Buffer.from(text, 'base64').length : Buffer.byteLength(text);
  if (size > 1024 * KB) issues.error(`${path}.body`, `is ${size} bytes, over the 1 MB Istio allows a direct response: serve it from a service instead`);
  else if (size > 100 * KB) issues.warn(`${path}.body`, `is ${size} bytes: Istio warns that direct responses over 100 KB weigh on every proxy's configuration`, 'MP_RULE_WARNING');
}

function checkRewrite(value: unknown, path: string, issues: IssueList): void {
  const rewrite = mapAt(value, path, 'rewrite: { uri: /v1/bookinfo }', issues);
  if (!rewrite) return;
  if (rewrite['uri'] === undefined && rewrite['authority'] === undefined && rewrite['uriRegexRewrite'] === undefined) {
    issues.error(path, 'rewrites nothing: give it uri or authority');
  }
  if (rewrite['uri'] !== undefined && rewrite['uriRegexRewrite'] !== undefined) issues.error(path, 'has both uri and uriRegexRewrite: keep one of them');
  const regex = mapAt(rewrite['uriRegexRewrite'], `${path}.uriRegexRewrite`, 'uriRegexRewrite: { match: ^/v1/(.*), rewrite: /v2/\\1 }', issues);
  for (const key of regex ? ['match', 'rewrite'] : []) {
    const operand = regex?.[key];
    if (typeof operand !== 'string' || operand === '') issues.error(`${path}.uriRegexRewrite.${key}`, `is required: give ${key === 'match' ? 'the RE2 regex to match, e.g. match: ^/v1/(.*)' : 'the replacement, e.g. rewrite: /v2/\\1'}`);
    else if (key === 'match') checkRegex(operand, `${path}.uriRegexRewrite.match`, issues);
  }
}

function checkMirrors(route: Fields, path: string, issues: IssueList): void {
  if (route['mirror'] !== undefined && route['mirrors'] !== undefined) issues.error(`${path}.mirrors`, 'cannot be used together with mirror: move the mirror into mirrors');
  const legacy = route['mirrorPercent'];
  if (legacy !== undefined) {
    checkInteger(legacy, `${path}.mirrorPercent`, issues, 0, 100);
    issues.warn(`${path}.mirrorPercent`, 'is deprecated in Istio: write mirrorPercentage: { value: ... } instead (it is honoured)', 'MP_RULE_WARNING');
  }
  for (const [index, mirror] of mapsIn(route['mirrors'], `${path}.mirrors`, 'mirror policy', issues)) {
    checkPercent(mirror['percentage'], `${path}.mirrors[${index}].percentage`, issues);
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
  checkRedirect(route['redirect'], route['match'], `${path}.redirect`, issues);
  checkRewrite(route['rewrite'], `${path}.rewrite`, issues);
  checkMirrors(route, path, issues);
  checkDirectResponse(route['directResponse'], `${path}.directResponse`, issues);
  // As Istio: a route that answers itself (redirect, directResponse) neither forwards nor faults nor rewrites.
  for (const answer of ['redirect', 'directResponse']) {
    if (route[answer] === undefined) continue;
    for (const other of ['fault', 'rewrite', ...(answer === 'directResponse' ? ['redirect'] : [])]) {
      if (route[other] !== undefined) issues.error(`${path}.${other}`, `cannot be used with ${answer}, which answers the request itself: keep one of them`);
    }
  }
}
