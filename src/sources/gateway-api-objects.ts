// Kubernetes Gateway API HTTPRoute, GRPCRoute and ReferenceGrant objects, read as the API
// server's schema would admit them (with its defaults applied); what they mean is decided later.
import type { RouteParentRef } from '../model/route-status.ts';
import type { SourceRef } from '../model/service.ts';
import type { Fields, ObjectMeta } from './object-fields.ts';
import { describeType, fieldsOf, isFields, isPortNumber } from './object-fields.ts';
import { unknownFieldMessage } from './known-fields.ts';
import { checkRe2Regex } from '../model/re2.ts';
import type { ParsedObject, SourcedObject } from './parsed-object.ts';
import { objectKey, ObjectProblems, rejectedObject, requireName } from './parsed-object.ts';

export const GATEWAY_API_GROUP = 'gateway.networking.k8s.io';
/** The Gateway API's experimental group (XMesh). */
export const GATEWAY_API_X_GROUP = 'gateway.networking.x-k8s.io';

export type MeshRouteKind = 'HTTPRoute' | 'GRPCRoute';
/** Routes of the connection, not the request: they attach only to Gateway listeners (TLS, TCP). */
export type L4RouteKind = 'TLSRoute' | 'TCPRoute';
export type RouteKind = MeshRouteKind | L4RouteKind;

export function isL4RouteKind(kind: string): kind is L4RouteKind {
  return kind === 'TLSRoute' || kind === 'TCPRoute';
}

/** A parentRef or backendRef, with the API's defaults for group and kind applied. */
export type GatewayObjectRef = RouteParentRef;

export interface GatewayBackendRef extends GatewayObjectRef {
  /** 1 when unset, as the API defaults it. */
  readonly weight: number;
  readonly filters: readonly GatewayFilter[];
}

export type MatchType = 'Exact' | 'PathPrefix' | 'RegularExpression';

export interface GatewayValueMatch {
  readonly type: MatchType;
  readonly name: string;
  readonly value: string;
}

export interface GatewayRouteMatch {
  readonly path?: { readonly type: MatchType; readonly value: string };
  readonly headers: readonly GatewayValueMatch[];
  readonly queryParams: readonly GatewayValueMatch[];
  readonly method?: string;
  /** GRPCRoute: `/service/method`, either part optional. */
  readonly grpc?: { readonly type: MatchType; readonly service?: string; readonly method?: string };
}

export interface GatewayHeaderFilter {
  readonly set: readonly { readonly name: string; readonly value: string }[];
  readonly add: readonly { readonly name: string; readonly value: string }[];
  readonly remove: readonly string[];
}

export interface GatewayPathModifier {
  readonly type: 'ReplaceFullPath' | 'ReplacePrefixMatch';
  readonly value: string;
}

export type GatewayFilter =
  | { readonly type: 'RequestHeaderModifier' | 'ResponseHeaderModifier'; readonly headers: GatewayHeaderFilter }
  | { readonly type: 'RequestRedirect'; readonly scheme?: string; readonly hostname?: string; readonly port?: number; readonly statusCode: number; readonly path?: GatewayPathModifier }
  | { readonly type: 'URLRewrite'; readonly hostname?: string; readonly path?: GatewayPathModifier }
  | { readonly type: 'RequestMirror'; readonly backend: GatewayObjectRef; readonly percent?: number }
  /** A filter meshpilot does not implement (CORS, ExtensionRef, ...): the route is not accepted. */
  | { readonly type: 'Unsupported'; readonly filterType: string };

export interface GatewayRouteRule {
  readonly name?: string;
  readonly matches: readonly GatewayRouteMatch[];
  readonly filters: readonly GatewayFilter[];
  readonly backendRefs: readonly GatewayBackendRef[];
  readonly timeouts?: { readonly request?: string; readonly backendRequest?: string };
  readonly retry?: { readonly codes: readonly number[]; readonly attempts?: number; readonly backoff?: string };
  /** Set when the rule asks for something meshpilot does not implement (sessionPersistence). */
  readonly unsupported?: string;
}

export interface GatewayRouteInfo {
  readonly kind: RouteKind;
  readonly namespace: string;
  readonly name: string;
  readonly source: SourceRef;
  readonly generation?: number;
  readonly creationTimestamp?: string;
  readonly parentRefs: readonly GatewayObjectRef[];
  readonly hostnames: readonly string[];
  readonly rules: readonly GatewayRouteRule[];
}

export interface ReferenceGrantInfo {
  readonly namespace: string;
  readonly name: string;
  readonly from: readonly { readonly group: string; readonly kind: string; readonly namespace: string }[];
  readonly to: readonly { readonly group: string; readonly kind: string; readonly name?: string }[];
}

/** Reads fields of one struct, reporting each field the API does not define. */
export class Reader {
  constructor(
    readonly problems: ObjectProblems,
    readonly what: string,
  ) {}

  struct(value: unknown, path: string, known: readonly string[], example: string): Fields | undefined {
    if (value === undefined || value === null) return undefined;
    if (!isFields(value)) {
      this.problems.error(path, `must be a map, got ${describeType(value)}: write e.g. ${example}`);
      return undefined;
    }
    for (const key of Object.keys(value)) {
      if (!known.includes(key)) this.problems.error(`${path}.${key}`, unknownFieldMessage(key, known, this.what));
    }
    return value;
  }

  list(value: unknown, path: string, max: number): unknown[] {
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value)) {
      this.problems.error(path, `must be a list, got ${describeType(value)}: write each entry as a list item ("- ...")`);
      return [];
    }
    if (value.length > max) this.problems.error(path, `has ${value.length} entries, more than the ${max} the API allows: split the object`);
    return value;
  }

  string(fields: Fields | undefined, key: string, path: string, required = false): string | undefined {
    const value = fields?.[key];
    if (value === undefined || value === null) {
      if (required) this.problems.error(`${path}.${key}`, 'is required');
      return undefined;
    }
    if (typeof value !== 'string') {
      this.problems.error(`${path}.${key}`, `must be a string, got ${describeType(value)}: quote it`);
      return undefined;
    }
    if (required && value === '') this.problems.error(`${path}.${key}`, 'must not be empty');
    return value;
  }

  oneOf<T extends string>(fields: Fields | undefined, key: string, path: string, allowed: readonly T[], fallback: T): T {
    const value = this.string(fields, key, path);
    if (value === undefined) return fallback;
    if (!(allowed as readonly string[]).includes(value)) {
      this.problems.error(`${path}.${key}`, `"${value}" is not one of ${allowed.join(', ')}`);
      return fallback;
    }
    return value as T;
  }

  integer(fields: Fields | undefined, key: string, path: string, min: number, max: number): number | undefined {
    const value = fields?.[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      this.problems.error(`${path}.${key}`, `must be a whole number from ${min} to ${max}, got ${describeType(value)}`);
      return undefined;
    }
    return value;
  }
}

/** The API's pattern for header names (an HTTP token). */
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$/;

function checkHeaderName(r: Reader, name: string, path: string): void {
  if (!HEADER_NAME.test(name)) r.problems.error(path, `"${name}" is not an HTTP header name: use letters, digits and "-"`);
}

/** Control characters other than tab (Istio's isValidHeaderValue). */
function hasControlCharacters(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if ((code < 0x20 && code !== 0x09) || code === 0x7f) return true;
  }
  return false;
}

/** A regex Envoy would refuse is refused here, so no proxy is sent one. */
function checkRegex(r: Reader, regex: string, path: string): void {
  const problem = checkRe2Regex(regex);
  if (problem) r.problems.error(path, `does not compile as an RE2 regex (${problem}): fix the pattern`);
}

/** Gateway API durations: 1 to 4 groups of up to 5 digits with h, m, s or ms (GEP-2257). */
const GATEWAY_DURATION = /^([0-9]{1,5}(h|m|s|ms)){1,4}$/;

function readDuration(r: Reader, fields: Fields | undefined, key: string, path: string): string | undefined {
  const value = r.string(fields, key, path);
  if (value === undefined) return undefined;
  if (!GATEWAY_DURATION.test(value)) r.problems.error(`${path}.${key}`, `"${value}" is not a Gateway API duration: write e.g. 10s, 500ms or 1m30s`);
  return value;
}

/** A Gateway API duration in milliseconds (after readDuration accepted it). */
export function durationMillis(text: string): number {
  const units: Readonly<Record<string, number>> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 };
  let total = 0;
  for (const [, amount, unit] of text.matchAll(/([0-9]+)(ms|h|m|s)/g)) total += Number(amount) * (units[unit ?? 's'] ?? 0);
  return total;
}

const REF_FIELDS = ['group', 'kind', 'name', 'namespace', 'port'];

function readRef(r: Reader, value: unknown, path: string, extra: readonly string[], defaults: { group: string; kind: string }): GatewayObjectRef | undefined {
  const fields = r.struct(value, path, [...REF_FIELDS, ...extra], '{ name: reviews, port: 9080 }');
  if (!fields) {
    if (value === undefined || value === null) r.problems.error(path, 'is missing: name the object');
    return undefined;
  }
  const name = r.string(fields, 'name', path, true);
  const namespace = r.string(fields, 'namespace', path);
  const port = fields['port'];
  if (port !== undefined && !isPortNumber(port)) r.problems.error(`${path}.port`, `must be a port number 1..65535, got ${describeType(port)}`);
  const sectionName = extra.includes('sectionName') ? r.string(fields, 'sectionName', path) : undefined;
  if (name === undefined) return undefined;
  return {
    group: r.string(fields, 'group', path) ?? defaults.group,
    kind: r.string(fields, 'kind', path) ?? defaults.kind,
    name,
    ...(namespace !== undefined ? { namespace } : {}),
    ...(isPortNumber(port) ? { port } : {}),
    ...(sectionName !== undefined ? { sectionName } : {}),
  };
}

function readHeaderFilter(r: Reader, value: unknown, path: string): GatewayHeaderFilter {
  const fields = r.struct(value, path, ['set', 'add', 'remove'], '{ set: [{ name: x-env, value: canary }] }');
  const pairs = (key: 'set' | 'add'): { name: string; value: string }[] =>
    r.list(fields?.[key], `${path}.${key}`, 16).flatMap((entry, i) => {
      const pair = r.struct(entry, `${path}.${key}[${i}]`, ['name', 'value'], '{ name: x-env, value: canary }');
      const name = r.string(pair, 'name', `${path}.${key}[${i}]`, true);
      const headerValue = r.string(pair, 'value', `${path}.${key}[${i}]`, true);
      if (name !== undefined) checkHeaderName(r, name, `${path}.${key}[${i}].name`);
      // As Istio: a value with control characters would be refused by Envoy.
      if (headerValue !== undefined && hasControlCharacters(headerValue)) r.problems.error(`${path}.${key}[${i}].value`, 'contains control characters: remove them');
      return name !== undefined && headerValue !== undefined ? [{ name, value: headerValue }] : [];
    });
  const remove = r.list(fields?.['remove'], `${path}.remove`, 16).flatMap((entry, i) => {
    if (typeof entry === 'string' && entry !== '') return [entry];
    r.problems.error(`${path}.remove[${i}]`, `must be a header name, got ${describeType(entry)}`);
    return [];
  });
  return { set: pairs('set'), add: pairs('add'), remove };
}

function readPathModifier(r: Reader, value: unknown, path: string): GatewayPathModifier | undefined {
  const fields = r.struct(value, path, ['type', 'replaceFullPath', 'replacePrefixMatch'], '{ type: ReplacePrefixMatch, replacePrefixMatch: /v2 }');
  if (!fields) return undefined;
  const type = r.oneOf(fields, 'type', path, ['ReplaceFullPath', 'ReplacePrefixMatch'] as const, 'ReplaceFullPath');
  const key = type === 'ReplaceFullPath' ? 'replaceFullPath' : 'replacePrefixMatch';
  const replacement = r.string(fields, key, path, true);
  return replacement === undefined ? undefined : { type, value: replacement };
}

const FILTER_FIELDS = ['type', 'requestHeaderModifier', 'responseHeaderModifier', 'requestRedirect', 'urlRewrite', 'requestMirror', 'cors', 'extensionRef', 'externalAuth'];

function readFilter(r: Reader, value: unknown, path: string): GatewayFilter | undefined {
  const fields = r.struct(value, path, FILTER_FIELDS, '{ type: RequestHeaderModifier, requestHeaderModifier: { set: [...] } }');
  const type = r.string(fields, 'type', path, true);
  if (!fields || type === undefined) return undefined;
  if (r.what === 'GRPCRoute' && (type === 'RequestRedirect' || type === 'URLRewrite')) {
    r.problems.error(`${path}.type`, `${type} is not a GRPCRoute filter: use an HTTPRoute, or RequestHeaderModifier, ResponseHeaderModifier or RequestMirror`);
    return undefined;
  }
  switch (type) {
    case 'RequestHeaderModifier':
      return { type, headers: readHeaderFilter(r, fields['requestHeaderModifier'], `${path}.requestHeaderModifier`) };
    case 'ResponseHeaderModifier':
      return { type, headers: readHeaderFilter(r, fields['responseHeaderModifier'], `${path}.responseHeaderModifier`) };
    case 'RequestRedirect': {
      const p = `${path}.requestRedirect`;
      const redirect = r.struct(fields['requestRedirect'], p, ['scheme', 'hostname', 'port', 'statusCode', 'path'], '{ statusCode: 301 }');
      const scheme = r.oneOf(redirect, 'scheme', p, ['http', 'https', ''] as const, '');
      const hostname = r.string(redirect, 'hostname', p);
      const port = r.integer(redirect, 'port', p, 1, 65535);
      // The API defaults statusCode to 302 and admits only 301 and 302 (303, 307, 308 are extended).
      const statusCode = r.integer(redirect, 'statusCode', p, 300, 399) ?? 302;
      if (![301, 302, 303, 307, 308].includes(statusCode)) r.problems.error(`${p}.statusCode`, `${statusCode} is not 301, 302, 303, 307 or 308`);
      const modifier = readPathModifier(r, redirect?.['path'], `${p}.path`);
      return { type, statusCode, ...(scheme !== '' ? { scheme } : {}), ...(hostname ? { hostname } : {}), ...(port !== undefined ? { port } : {}), ...(modifier ? { path: modifier } : {}) };
    }
    case 'URLRewrite': {
      const p = `${path}.urlRewrite`;
      const rewrite = r.struct(fields['urlRewrite'], p, ['hostname', 'path'], '{ path: { type: ReplacePrefixMatch, replacePrefixMatch: /v2 } }');
      const hostname = r.string(rewrite, 'hostname', p);
      const modifier = readPathModifier(r, rewrite?.['path'], `${p}.path`);
      return { type, ...(hostname ? { hostname } : {}), ...(modifier ? { path: modifier } : {}) };
    }
    case 'RequestMirror': {
      const p = `${path}.requestMirror`;
      const mirror = r.struct(fields['requestMirror'], p, ['backendRef', 'percent', 'fraction'], '{ backendRef: { name: shadow, port: 80 } }');
      const backend = readRef(r, mirror?.['backendRef'], `${p}.backendRef`, [], { group: '', kind: 'Service' });
      requireServicePort(r, backend, `${p}.backendRef`);
      const fraction = r.struct(mirror?.['fraction'], `${p}.fraction`, ['numerator', 'denominator'], '{ numerator: 1, denominator: 10 }');
      const numerator = r.integer(fraction, 'numerator', `${p}.fraction`, 0, 2 ** 31 - 1);
      const denominator = r.integer(fraction, 'denominator', `${p}.fraction`, 1, 2 ** 31 - 1) ?? 100;
      const percent = r.integer(mirror, 'percent', p, 0, 100) ?? (numerator !== undefined ? (100 * numerator) / denominator : undefined);
      return backend ? { type, backend, ...(percent !== undefined ? { percent } : {}) } : undefined;
    }
    default:
      return { type: 'Unsupported', filterType: type };
  }
}

function readValueMatches(r: Reader, value: unknown, path: string, what: string): GatewayValueMatch[] {
  const seen = new Set<string>();
  return r.list(value, path, 16).flatMap((entry, i) => {
    const p = `${path}[${i}]`;
    const fields = r.struct(entry, p, ['type', 'name', 'value'], `{ name: ${what}, value: jason }`);
    const type = r.oneOf(fields, 'type', p, ['Exact', 'RegularExpression'] as const, 'Exact');
    const name = r.string(fields, 'name', p, true);
    const matchValue = r.string(fields, 'value', p, true);
    if (name === undefined || matchValue === undefined) return [];
    if (what === 'header') checkHeaderName(r, name, `${p}.name`);
    if (type === 'RegularExpression') checkRegex(r, matchValue, `${p}.value`);
    // "Subsequent entries with an equivalent name MUST be ignored"; header names are case-insensitive.
    const key = what === 'header' ? name.toLowerCase() : name;
    if (seen.has(key)) return [];
    seen.add(key);
    return [{ type, name: key, value: matchValue }];
  });
}

const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'] as const;

function readMatch(r: Reader, kind: RouteKind, value: unknown, path: string): GatewayRouteMatch | undefined {
  const known = kind === 'HTTPRoute' ? ['path', 'headers', 'queryParams', 'method'] : ['method', 'headers'];
  const fields = r.struct(value, path, known, '{ path: { type: PathPrefix, value: /api } }');
  if (!fields) return undefined;
  const headers = readValueMatches(r, fields['headers'], `${path}.headers`, 'header');
  if (kind === 'GRPCRoute') {
    const m = r.struct(fields['method'], `${path}.method`, ['type', 'service', 'method'], '{ service: helloworld.Greeter, method: SayHello }');
    if (!m) return { headers, queryParams: [] };
    const type = r.oneOf(m, 'type', `${path}.method`, ['Exact', 'RegularExpression'] as const, 'Exact');
    const service = r.string(m, 'service', `${path}.method`);
    const method = r.string(m, 'method', `${path}.method`);
    if (!service && !method) r.problems.error(`${path}.method`, 'needs service, method or both');
    if (type === 'RegularExpression') checkRegex(r, `/${service ?? '[^/]+'}/${method ?? '.+'}`, `${path}.method`);
    return { headers, queryParams: [], grpc: { type, ...(service ? { service } : {}), ...(method ? { method } : {}) } };
  }
  const pathFields = r.struct(fields['path'], `${path}.path`, ['type', 'value'], '{ type: PathPrefix, value: /api }');
  // The API defaults a match's path to PathPrefix "/".
  const pathType = r.oneOf(pathFields, 'type', `${path}.path`, ['Exact', 'PathPrefix', 'RegularExpression'] as const, 'PathPrefix');
  const pathValue = r.string(pathFields, 'value', `${path}.path`) ?? '/';
  if (pathType !== 'RegularExpression' && !pathValue.startsWith('/')) r.problems.error(`${path}.path.value`, `"${pathValue}" must be an absolute path, starting with "/"`);
  if (pathType === 'RegularExpression') checkRegex(r, pathValue, `${path}.path.value`);
  const method = r.oneOf(fields, 'method', path, [...HTTP_METHODS, ''] as const, '');
  return {
    path: { type: pathType, value: pathValue },
    headers,
    queryParams: readValueMatches(r, fields['queryParams'], `${path}.queryParams`, 'query parameter'),
    ...(method !== '' ? { method } : {}),
  };
}

/** The API's rule: a reference to a Service names its port. */
function requireServicePort(r: Reader, ref: GatewayObjectRef | undefined, path: string): void {
  if (ref && ref.group === '' && ref.kind === 'Service' && ref.port === undefined) {
    r.problems.error(`${path}.port`, 'is required when the backend is a Service: write the Service port, e.g. port: 9080');
  }
}

const DEFAULT_HTTP_MATCH: GatewayRouteMatch = { path: { type: 'PathPrefix', value: '/' }, headers: [], queryParams: [] };

function readBackend(r: Reader, value: unknown, path: string): GatewayBackendRef | undefined {
  const ref = readRef(r, value, path, ['weight', 'filters'], { group: '', kind: 'Service' });
  const fields = fieldsOf(value);
  const weight = r.integer(fields, 'weight', path, 0, 1_000_000) ?? 1;
  const filters = r.list(fields['filters'], `${path}.filters`, 16).flatMap((filter, i) => readFilter(r, filter, `${path}.filters[${i}]`) ?? []);
  requireServicePort(r, ref, path);
  return ref ? { ...ref, weight, filters } : undefined;
}

/** The API's own rule (its CRD's validation): a ReplacePrefixMatch needs exactly one match, a PathPrefix one. */
function requirePrefixMatch(r: Reader, matches: readonly GatewayRouteMatch[], filters: readonly GatewayFilter[], path: string): void {
  const [only] = matches;
  if (matches.length === 1 && only?.path?.type === 'PathPrefix') return;
  for (const [i, filter] of filters.entries()) {
    if ((filter.type === 'RequestRedirect' || filter.type === 'URLRewrite') && filter.path?.type === 'ReplacePrefixMatch') {
      r.problems.error(`${path}.filters[${i}]`, `${filter.type} with ReplacePrefixMatch needs the rule to have exactly one match, with a PathPrefix path: split the rule, or use ReplaceFullPath`);
    }
  }
}

function readRule(r: Reader, kind: RouteKind, value: unknown, path: string): GatewayRouteRule | undefined {
  const known = isL4RouteKind(kind) ? ['name', 'backendRefs'] : ['name', 'matches', 'filters', 'backendRefs', ...(kind === 'HTTPRoute' ? ['timeouts', 'retry', 'sessionPersistence'] : ['sessionPersistence'])];
  const fields = r.struct(value, path, known, '{ backendRefs: [{ name: reviews, port: 9080 }] }');
  if (!fields) return undefined;
  const name = r.string(fields, 'name', path);
  const timeouts = r.struct(fields['timeouts'], `${path}.timeouts`, ['request', 'backendRequest'], '{ request: 10s }');
  const request = readDuration(r, timeouts, 'request', `${path}.timeouts`);
  const backendRequest = readDuration(r, timeouts, 'backendRequest', `${path}.timeouts`);
  const retryFields = r.struct(fields['retry'], `${path}.retry`, ['codes', 'attempts', 'backoff'], '{ attempts: 3, codes: [503], backoff: 100ms }');
  const codes = r.list(retryFields?.['codes'], `${path}.retry.codes`, 64).flatMap((code, i) => {
    if (typeof code === 'number' && Number.isInteger(code) && code >= 400 && code <= 599) return [code];
    r.problems.error(`${path}.retry.codes[${i}]`, `must be an HTTP status code from 400 to 599, got ${describeType(code)}`);
    return [];
  });
  const attempts = r.integer(retryFields, 'attempts', `${path}.retry`, 0, 2 ** 31 - 1);
  const backoff = readDuration(r, retryFields, 'backoff', `${path}.retry`);
  // The API defaults an HTTPRoute rule's matches to one PathPrefix "/" match.
  const matches = kind === 'HTTPRoute' && fields['matches'] === undefined ? [DEFAULT_HTTP_MATCH] : r.list(fields['matches'], `${path}.matches`, 64).flatMap((m, i) => readMatch(r, kind, m, `${path}.matches[${i}]`) ?? []);
  const filters = r.list(fields['filters'], `${path}.filters`, 16).flatMap((f, i) => readFilter(r, f, `${path}.filters[${i}]`) ?? []);
  requirePrefixMatch(r, matches, filters, path);
  return {
    ...(name !== undefined ? { name } : {}),
    matches,
    filters,
    backendRefs: r.list(fields['backendRefs'], `${path}.backendRefs`, 16).flatMap((b, i) => readBackend(r, b, `${path}.backendRefs[${i}]`) ?? []),
    ...(request !== undefined || backendRequest !== undefined ? { timeouts: { ...(request ? { request } : {}), ...(backendRequest ? { backendRequest } : {}) } } : {}),
    ...(retryFields ? { retry: { codes, ...(attempts !== undefined ? { attempts } : {}), ...(backoff ? { backoff } : {}) } } : {}),
    ...(fields['sessionPersistence'] !== undefined ? { unsupported: 'sessionPersistence' } : {}),
  };
}

export function generationOf(object: Fields): number | undefined {
  const generation = fieldsOf(object['metadata'])['generation'];
  return typeof generation === 'number' && Number.isInteger(generation) ? generation : undefined;
}

/** An HTTPRoute, GRPCRoute, TLSRoute or TCPRoute, with the API's defaults applied. */
export function parseMeshRoute(input: SourcedObject, object: Fields, kind: string, meta: ObjectMeta): ParsedObject {
  const routeKind: RouteKind = kind === 'GRPCRoute' || isL4RouteKind(kind) ? kind : 'HTTPRoute';
  const problems = new ObjectProblems();
  requireName(meta, problems, routeKind);
  const r = new Reader(problems, routeKind);
  const spec = r.struct(object['spec'], 'spec', routeKind === 'TCPRoute' ? ['parentRefs', 'rules'] : ['parentRefs', 'hostnames', 'rules'], '{ parentRefs: [...], rules: [...] }');
  if (!spec) problems.error('spec', 'is missing: add spec with parentRefs and rules');
  const parentRefs = r.list(spec?.['parentRefs'], 'spec.parentRefs', 32).flatMap((ref, i) =>
    readRef(r, ref, `spec.parentRefs[${i}]`, ['sectionName'], { group: GATEWAY_API_GROUP, kind: 'Gateway' }) ?? [],
  );
  const hostnames = r.list(spec?.['hostnames'], 'spec.hostnames', 16).flatMap((h, i) => {
    if (typeof h === 'string' && h !== '') return [h];
    problems.error(`spec.hostnames[${i}]`, `must be a hostname, got ${describeType(h)}`);
    return [];
  });
  const rulesValue = spec?.['rules'];
  if (isL4RouteKind(routeKind) && (rulesValue === undefined || rulesValue === null)) problems.error('spec.rules', 'is required: write rules: [{ backendRefs: [{ name: <Service>, port: <port> }] }]');
  // The API defaults rules to one rule sending everything to no backend.
  const rules = rulesValue === undefined ? [{ matches: routeKind === 'HTTPRoute' ? [DEFAULT_HTTP_MATCH] : [], filters: [], backendRefs: [] }] : r.list(rulesValue, 'spec.rules', 16).flatMap((rule, i) => readRule(r, routeKind, rule, `spec.rules[${i}]`) ?? []);
  if (problems.hasErrors() || meta.name === undefined) return rejectedObject(input, routeKind, meta, problems.issues);
  const generation = generationOf(object);
  const route: GatewayRouteInfo = {
    kind: routeKind,
    namespace: meta.namespace,
    name: meta.name,
    source: input.source,
    ...(generation !== undefined ? { generation } : {}),
    ...(meta.creationTimestamp !== undefined ? { creationTimestamp: meta.creationTimestamp } : {}),
    parentRefs,
    hostnames,
    rules,
  };
  return { type: 'meshRoute', key: objectKey(routeKind, meta.namespace, meta.name), source: input.source, route };
}

export function parseReferenceGrant(input: SourcedObject, object: Fields, kind: string, meta: ObjectMeta): ParsedObject {
  const problems = new ObjectProblems();
  requireName(meta, problems, 'ReferenceGrant');
  const r = new Reader(problems, 'ReferenceGrant');
  const spec = r.struct(object['spec'], 'spec', ['from', 'to'], '{ from: [...], to: [...] }');
  const from = r.list(spec?.['from'], 'spec.from', 16).flatMap((entry, i) => {
    const f = r.struct(entry, `spec.from[${i}]`, ['group', 'kind', 'namespace'], '{ group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: shop }');
    const group = r.string(f, 'group', `spec.from[${i}]`);
    const fromKind = r.string(f, 'kind', `spec.from[${i}]`, true);
    const namespace = r.string(f, 'namespace', `spec.from[${i}]`, true);
    return fromKind !== undefined && namespace !== undefined ? [{ group: group ?? '', kind: fromKind, namespace }] : [];
  });
  const to = r.list(spec?.['to'], 'spec.to', 16).flatMap((entry, i) => {
    const t = r.struct(entry, `spec.to[${i}]`, ['group', 'kind', 'name'], '{ group: "", kind: Service }');
    const group = r.string(t, 'group', `spec.to[${i}]`);
    const toKind = r.string(t, 'kind', `spec.to[${i}]`, true);
    const name = r.string(t, 'name', `spec.to[${i}]`);
    return toKind !== undefined ? [{ group: group ?? '', kind: toKind, ...(name ? { name } : {}) }] : [];
  });
  if (from.length === 0) problems.error('spec.from', 'is required: list who may refer to objects in this namespace');
  if (to.length === 0) problems.error('spec.to', 'is required: list what they may refer to, e.g. { group: "", kind: Service }');
  if (problems.hasErrors() || meta.name === undefined) return rejectedObject(input, kind, meta, problems.issues);
  return { type: 'referenceGrant', key: objectKey(kind, meta.namespace, meta.name), source: input.source, grant: { namespace: meta.namespace, name: meta.name, from, to } };
}
