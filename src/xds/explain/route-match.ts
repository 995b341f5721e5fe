// Envoy's request matching, for explain: virtual host domains, route path/header/query
// matchers. Pure functions over the proto3 JSON the proxy was sent.
import type { Json, JsonObject } from '../proto-json.ts';
import { asObject, asObjects, str, strings } from '../attribution.ts';
import { re2FullMatch } from '../../model/re2.ts';

export interface RequestFacts {
  readonly authority: string;
  /** `:path`, with any query string. */
  readonly path: string;
  readonly method: string;
  /** `http` or `https` as the client dials; `http` when absent. */
  readonly scheme?: string;
  /** Lower-case names; pseudo-headers (`:method`, `:authority`, `:path`) are added by the matcher. */
  readonly headers: Readonly<Record<string, string>>;
}

export type DomainMatch = 'exact' | 'suffix' | 'prefix' | 'any';

/**
 * Envoy's virtual host selection: an exact domain, then the longest `*.suffix` wildcard, then
 * the longest `prefix*` wildcard, then `*`. Case-insensitive; with `ignorePort` (the route
 * configuration's ignore_port_in_host_matching) the authority's port is dropped first.
 */
export function selectVirtualHost(virtualHosts: readonly JsonObject[], authority: string, ignorePort = false): { virtualHost: JsonObject; domain: string; match: DomainMatch } | undefined {
  const host = (ignorePort ? authority.replace(/:\d+$/, '') : authority).toLowerCase();
  let best: { virtualHost: JsonObject; domain: string; match: DomainMatch; rank: number; length: number } | undefined;
  const consider = (virtualHost: JsonObject, domain: string, match: DomainMatch, rank: number, length: number): void => {
    if (!best || rank < best.rank || (rank === best.rank && length > best.length)) best = { virtualHost, domain, match, rank, length };
  };
  for (const virtualHost of virtualHosts) {
    const domains = strings(virtualHost['domains']);
    for (const domain of domains) {
      const d = domain.toLowerCase();
      if (d === '*') consider(virtualHost, domain, 'any', 3, 0);
      else if (d.startsWith('*') && host.endsWith(d.slice(1)) && host.length > d.length - 1) consider(virtualHost, domain, 'suffix', 1, d.length);
      else if (d.endsWith('*') && host.startsWith(d.slice(0, -1)) && host.length > d.length - 1) consider(virtualHost, domain, 'prefix', 2, d.length);
      else if (d === host) consider(virtualHost, domain, 'exact', 0, d.length);
    }
  }
  return best && { virtualHost: best.virtualHost, domain: best.domain, match: best.match };
}

/** RE2 full match in linear time, as Envoy's `safe_regex` matches. */
function fullMatch(regex: string, value: string): boolean {
  return re2FullMatch(regex, value);
}

function regexOf(value: Json | undefined): string | undefined {
  const regex = asObject(value)?.['regex'];
  return typeof regex === 'string' ? regex : undefined;
}

/** envoy.type.matcher.v3.StringMatcher */
export function stringMatches(matcher: JsonObject, value: string): boolean {
  const ignoreCase = matcher['ignore_case'] === true;
  const v = ignoreCase ? value.toLowerCase() : value;
  const norm = (s: Json | undefined): string => (typeof s === 'string' ? (ignoreCase ? s.toLowerCase() : s) : '');
  if (matcher['exact'] !== undefined) return v === norm(matcher['exact']);
  if (matcher['prefix'] !== undefined) return v.startsWith(norm(matcher['prefix']));
  if (matcher['suffix'] !== undefined) return v.endsWith(norm(matcher['suffix']));
  if (matcher['contains'] !== undefined) return v.includes(norm(matcher['contains']));
  const regex = regexOf(matcher['safe_regex']);
  return regex !== undefined ? fullMatch(regex, value) : false;
}

function headerValue(facts: RequestFacts, name: string): string | undefined {
  const lower = name.toLowerCase();
  if (lower === ':method') return facts.method;
  if (lower === ':authority' || lower === 'host') return facts.authority;
  if (lower === ':path') return facts.path;
  if (lower === ':scheme') return facts.headers[':scheme'] ?? facts.scheme ?? 'http';
  return facts.headers[lower];
}

/** envoy.config.route.v3.HeaderMatcher, with invert_match and treat_missing_header_as_empty. */
export function headerMatches(matcher: JsonObject, facts: RequestFacts): boolean {
  const name = typeof matcher['name'] === 'string' ? matcher['name'] : '';
  let value = headerValue(facts, name);
  if (value === undefined && matcher['treat_missing_header_as_empty'] === true) value = '';
  const invert = matcher['invert_match'] === true;
  let matched: boolean;
  if (matcher['present_match'] !== undefined) matched = (value !== undefined) === (matcher['present_match'] === true);
  else if (value === undefined) return invert;
  else if (matcher['exact_match'] !== undefined) matched = value === matcher['exact_match'];
  else if (matcher['prefix_match'] !== undefined) matched = value.startsWith(str(matcher['prefix_match']));
  else if (matcher['suffix_match'] !== undefined) matched = value.endsWith(str(matcher['suffix_match']));
  else if (matcher['contains_match'] !== undefined) matched = value.includes(str(matcher['contains_match']));
  else if (matcher['safe_regex_match'] !== undefined) matched = fullMatch(regexOf(matcher['safe_regex_match']) ?? '', value);
  else if (matcher['string_match'] !== undefined) matched = stringMatches(asObject(matcher['string_match']) ?? {}, value);
  else if (matcher['range_match'] !== undefined) {
    const range = asObject(matcher['range_match']) ?? {};
    const n = Number(value);
    matched = /^-?\d+$/.test(value) && n >= Number(range['start'] ?? 0) && n < Number(range['end'] ?? 0);
  } else matched = true; // no value matcher: the header only has to be present
  return invert ? !matched : matched;
}

function queryParams(path: string): Map<string, string> {
  const q = path.indexOf('?');
  const out = new Map<string, string>();
  if (q < 0) return out;
  for (const [k, v] of new URLSearchParams(path.slice(q + 1))) if (!out.has(k)) out.set(k, v);
  return out;
}

/** Why a route's match does not take the request, or undefined when it does. */
export function routeMismatch(match: JsonObject, facts: RequestFacts): string | undefined {
  const caseSensitive = asObject(match['case_sensitive'])?.['value'] !== false && match['case_sensitive'] !== false;
  const fold = (s: string): string => (caseSensitive ? s : s.toLowerCase());
  const fullPath = facts.path;
  const bare = fullPath.split('?')[0] ?? fullPath;
  if (typeof match['prefix'] === 'string') {
    if (!fold(fullPath).startsWith(fold(match['prefix']))) return `path ${fullPath} does not start with prefix ${match['prefix']}`;
  } else if (typeof match['path'] === 'string') {
    if (fold(bare) !== fold(match['path'])) return `path ${bare} is not exactly ${match['path']}`;
  } else if (match['safe_regex'] !== undefined) {
    const regex = regexOf(match['safe_regex']) ?? '';
    if (!fullMatch(regex, bare)) return `path ${bare} does not match regex ${regex}`;
  } else if (typeof match['path_separated_prefix'] === 'string') {
    const prefix = match['path_separated_prefix'];
    if (!(bare === prefix || bare.startsWith(`${prefix}/`))) return `path ${bare} is not under ${prefix}`;
  }
  if (match['grpc'] !== undefined && !(facts.headers['content-type'] ?? '').startsWith('application/grpc')) {
    return 'the route matches only gRPC requests (content-type application/grpc)';
  }
  for (const header of asObjects(match['headers'])) {
    if (!headerMatches(header, facts)) {
      const name = str(header['name']);
      const got = headerValue(facts, name);
      return `header ${name} ${got === undefined ? 'is absent' : `is "${got}"`}, the route wants ${JSON.stringify(header)}`;
    }
  }
  const params = queryParams(fullPath);
  for (const param of asObjects(match['query_parameters'])) {
    const name = str(param['name']);
    const value = params.get(name);
    const stringMatch = asObject(param['string_match']);
    const ok = param['present_match'] === true ? value !== undefined : value !== undefined && (!stringMatch || stringMatches(stringMatch, value));
    if (!ok) return `query parameter ${name} ${value === undefined ? 'is absent' : `is "${value}"`}`;
  }
  return undefined;
}
