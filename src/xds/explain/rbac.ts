// Envoy's RBAC evaluation over the RBAC filters a proxy was sent: would this caller be allowed,
// and by which policy. Filters run in order: LOG ones only record, a DENY that matches ends it,
// an ALLOW that matches lets the request through and one that does not denies it.
import { cidrContains, parseCidr } from '../../model/address.ts';
import { re2FullMatch } from '../../model/re2.ts';
import { asObject, asObjects } from '../attribution.ts';
import type { Json, JsonObject } from '../proto-json.ts';

/** What a caller brings: an identity (mTLS), an address, and the request. */
export interface CallerFacts {
  /** The SPIFFE ID of a client certificate (`spiffe://cluster.local/ns/default/sa/productpage`); none for plaintext. */
  readonly principal?: string;
  readonly sourceIp?: string;
  readonly destinationIp?: string;
  readonly port: number;
  readonly method?: string;
  readonly path?: string;
  readonly host?: string;
  readonly sni?: string;
  /** Lower-case names. */
  readonly headers: Readonly<Record<string, string>>;
}

export interface RbacStep {
  readonly action: string;
  /** The first policy of the filter that matched the caller, or null. */
  readonly matched: string | null;
  readonly outcome: 'logged' | 'denied' | 'allowed' | 'no match';
}

export interface RbacVerdict {
  readonly allowed: boolean;
  /** The policy that decided, or null (no filter: allowed; an ALLOW filter none of whose policies matched: denied). */
  readonly decidedBy: string | null;
  readonly steps: readonly RbacStep[];
}

/** A string field, or undefined when absent. */
function str(value: Json | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function stringMatches(matcher: JsonObject | undefined, value: string | undefined): boolean {
  if (!matcher || value === undefined) return false;
  const ignoreCase = matcher['ignore_case'] === true;
  const [subject, fold] = ignoreCase ? [value.toLowerCase(), (s: string) => s.toLowerCase()] : [value, (s: string) => s];
  const exact = str(matcher['exact']);
  if (exact !== undefined) return subject === fold(exact);
  const prefix = str(matcher['prefix']);
  if (prefix !== undefined) return subject.startsWith(fold(prefix));
  const suffix = str(matcher['suffix']);
  if (suffix !== undefined) return subject.endsWith(fold(suffix));
  const contains = str(matcher['contains']);
  if (contains !== undefined) return subject.includes(fold(contains));
  const regex = str(asObject(matcher['safe_regex'])?.['regex']);
  return regex !== undefined && re2FullMatch(regex, value);
}

function headerValue(name: string, facts: CallerFacts): string | undefined {
  const lower = name.toLowerCase();
  if (lower === ':method') return facts.method;
  if (lower === ':authority' || lower === 'host') return facts.host;
  if (lower === ':path') return facts.path;
  return facts.headers[lower];
}

function headerMatches(header: JsonObject, facts: CallerFacts): boolean {
  const value = headerValue(str(header['name']) ?? '', facts);
  const matched = header['present_match'] === true ? value !== undefined : stringMatches(asObject(header['string_match']), value);
  return header['invert_match'] === true ? !matched : matched;
}

function inRange(range: Json | undefined, ip: string | undefined): boolean {
  const block = asObject(range);
  const length = block?.['prefix_len'];
  const cidr = block && parseCidr(`${str(block['address_prefix']) ?? ''}/${typeof length === 'number' ? String(length) : '0'}`);
  return cidr !== undefined && ip !== undefined && cidrContains(cidr, ip);
}

function pathOnly(path: string | undefined): string | undefined {
  return path?.split('?')[0];
}

/** The field names of Envoy's Permission and Principal combinators: and, or, not, and the list inside a set. */
type SetNames = readonly [string, string, string, string];
const PERMISSION_SET: SetNames = ['and_rules', 'or_rules', 'not_rule', 'rules'];
const PRINCIPAL_SET: SetNames = ['and_ids', 'or_ids', 'not_id', 'ids'];

/** any / and / or / not of a Permission or Principal; undefined for a leaf. */
function combination(node: JsonObject, facts: CallerFacts, [and, or, not, list]: SetNames, matches: (node: JsonObject, facts: CallerFacts) => boolean): boolean | undefined {
  if (node['any'] === true) return true;
  const all = asObject(node[and]);
  if (all) return asObjects(all[list]).every((n) => matches(n, facts));
  const some = asObject(node[or]);
  if (some) return asObjects(some[list]).some((n) => matches(n, facts));
  const negated = asObject(node[not]);
  return negated ? !matches(negated, facts) : undefined;
}

/** One Permission: what the request asks for. */
export function permissionMatches(permission: JsonObject, facts: CallerFacts): boolean {
  const combined = combination(permission, facts, PERMISSION_SET, permissionMatches);
  if (combined !== undefined) return combined;
  const header = asObject(permission['header']);
  if (header) return headerMatches(header, facts);
  const urlPath = asObject(permission['url_path']);
  if (urlPath) return stringMatches(asObject(urlPath['path']), pathOnly(facts.path));
  if (permission['destination_port'] !== undefined) return Number(permission['destination_port']) === facts.port;
  if (permission['destination_ip'] !== undefined) return inRange(permission['destination_ip'], facts.destinationIp);
  if (permission['requested_server_name'] !== undefined) return stringMatches(asObject(permission['requested_server_name']), facts.sni ?? '');
  return false;
}

/** One Principal: who the caller is. */
export function principalMatches(principal: JsonObject, facts: CallerFacts): boolean {
  const combined = combination(principal, facts, PRINCIPAL_SET, principalMatches);
  if (combined !== undefined) return combined;
  const authenticated = asObject(principal['authenticated']);
  // Without a client certificate there is no principal: `authenticated` never matches plaintext.
  if (authenticated) return facts.principal !== undefined && (authenticated['principal_name'] === undefined || stringMatches(asObject(authenticated['principal_name']), facts.principal));
  if (principal['direct_remote_ip'] !== undefined) return inRange(principal['direct_remote_ip'], facts.sourceIp);
  if (principal['remote_ip'] !== undefined) return inRange(principal['remote_ip'], facts.sourceIp);
  const header = asObject(principal['header']);
  if (header) return headerMatches(header, facts);
  const urlPath = asObject(principal['url_path']);
  if (urlPath) return stringMatches(asObject(urlPath['path']), pathOnly(facts.path));
  return false;
}

/** The first policy (in the order sent) whose permissions and principals both match. */
function firstMatch(rules: JsonObject, facts: CallerFacts): string | null {
  for (const [name, value] of Object.entries(asObject(rules['policies']) ?? {})) {
    const policy = asObject(value);
    if (!policy) continue;
    if (asObjects(policy['permissions']).some((p) => permissionMatches(p, facts)) && asObjects(policy['principals']).some((p) => principalMatches(p, facts))) return name;
  }
  return null;
}

/** Runs `rbacRules` (each filter's `rules`: action and policies) in order, as Envoy's filters do. */
export function evaluateRbac(rbacRules: readonly JsonObject[], facts: CallerFacts): RbacVerdict {
  const steps: RbacStep[] = [];
  for (const rules of rbacRules) {
    const action = str(rules['action']) ?? 'ALLOW';
    const matched = firstMatch(rules, facts);
    if (action === 'LOG') {
      steps.push({ action, matched, outcome: matched ? 'logged' : 'no match' });
      continue;
    }
    if (action === 'DENY') {
      steps.push({ action, matched, outcome: matched ? 'denied' : 'no match' });
      if (matched) return { allowed: false, decidedBy: matched, steps };
      continue;
    }
    steps.push({ action, matched, outcome: matched ? 'allowed' : 'denied' });
    if (!matched) return { allowed: false, decidedBy: null, steps };
  }
  const allowedBy = steps.findLast((s) => s.outcome === 'allowed')?.matched ?? null;
  return { allowed: true, decidedBy: allowedBy, steps };
}
