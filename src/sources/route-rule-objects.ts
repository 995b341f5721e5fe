// Legacy RouteRule (`config.istio.io/v1alpha2`) objects, converted into the same rules a
// VirtualService and DestinationRule make: the RouteRules of one destination become one
// VirtualService (highest precedence first), and route `labels` become DestinationRule subsets.
import { createHash } from 'node:crypto';
import type { DestinationRule, HttpMatchRequest, HttpRoute, Rule, StringMatch, Subset, ValidationIssue, VirtualService } from '../model/rules.ts';
import { isDestinationRule } from '../model/rules.ts';
import type { SourceRef } from '../model/service.ts';
import { DEFAULT_DOMAIN_SUFFIX, resolveShortName } from '../model/service.ts';
import { checkRe2Regex } from './istio-objects.ts';
import type { Fields, ObjectMeta } from './object-fields.ts';
import { describeType, fieldsOf, isDns1123Label, isFields, isWildcardDomain, stringMap } from './object-fields.ts';
import { checkIstioFields } from './istio-schema.ts';
import type { ParsedObject, SourcedObject } from './parsed-object.ts';
import { objectKey, ObjectProblems, rejectedObject, requireName } from './parsed-object.ts';

export const LEGACY_CONFIG_GROUP = 'config.istio.io';

export interface RouteRuleTarget {
  /** FQDN of the service. */
  readonly host: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly weight?: number;
}

export interface RouteRuleInfo {
  readonly namespace: string;
  readonly name: string;
  readonly source: SourceRef;
  readonly creationTimestamp?: string;
  readonly precedence: number;
  /** FQDN of `spec.destination`: the service whose traffic this rule routes. */
  readonly host: string;
  readonly match?: HttpMatchRequest;
  readonly routes: readonly RouteRuleTarget[];
  readonly warnings: readonly ValidationIssue[];
}

/** Header names v1alpha2 used for request properties that HTTP/2 carries as pseudo-headers. */
const PSEUDO_HEADERS = new Set(['scheme', 'method', 'authority']);

/** v1alpha2's IstioService: `name` + `namespace` + `domain`, or `service` as a full name. */
function readIstioService(value: unknown, path: string, namespace: string, problems: ObjectProblems): string | undefined {
  if (!isFields(value)) {
    problems.error(path, `${value === undefined ? 'is missing' : `must be a map, got ${describeType(value)}`}: write e.g. destination: { name: reviews }`, 'MP_RULE_INVALID');
    return undefined;
  }
  const { name, service, domain } = value;
  if (typeof service === 'string' && service !== '') {
    if (!isWildcardDomain(service) || service.includes('*')) problems.error(`${path}.service`, `"${service}" is not a valid service name`, 'MP_RULE_INVALID');
    return service;
  }
  if (typeof name !== 'string' || !isDns1123Label(name)) {
    problems.error(`${path}.name`, `${name === undefined ? 'is required' : `${describeType(name)} is not a service name`}: name the Kubernetes service, e.g. name: reviews`, 'MP_RULE_INVALID');
    return undefined;
  }
  const ns = typeof value['namespace'] === 'string' && value['namespace'] !== '' ? value['namespace'] : namespace;
  const suffix = typeof domain === 'string' && domain !== '' ? domain.replace(/^svc\./, '') : DEFAULT_DOMAIN_SUFFIX;
  return resolveShortName(name, ns, suffix);
}

function readStringMatch(value: unknown, path: string, problems: ObjectProblems): StringMatch | undefined {
  const fields = fieldsOf(value);
  const present = (['exact', 'prefix', 'regex'] as const).filter((key) => fields[key] !== undefined);
  const [key] = present;
  if (!isFields(value) || present.length !== 1 || key === undefined) {
    problems.error(path, 'must have exactly one of exact, prefix or regex, e.g. { exact: jason }', 'MP_RULE_INVALID');
    return undefined;
  }
  const operand = fields[key];
  if (typeof operand !== 'string') {
    problems.error(`${path}.${key}`, `must be a string, got ${describeType(operand)}: quote it`, 'MP_RULE_INVALID');
    return undefined;
  }
  const problem = key === 'regex' ? checkRe2Regex(operand) : undefined;
  if (problem) problems.error(`${path}.regex`, `does not compile as an RE2 regex (${problem}): fix the pattern`, 'MP_RULE_INVALID');
  return { [key]: operand };
}

function readMatch(value: unknown, problems: ObjectProblems): HttpMatchRequest | undefined {
  if (value === undefined || value === null) return undefined;
  const match = fieldsOf(value);
  const request = match['request'];
  const headersValue = fieldsOf(request)['headers'];
  for (const [path, part] of [['spec.match', value], ['spec.match.request', request], ['spec.match.request.headers', headersValue]] as const) {
    if (part !== undefined && part !== null && !isFields(part)) problems.error(path, `must be a map, got ${describeType(part)}: write e.g. match: { request: { headers: { cookie: { regex: "^(.*?;)?(user=jason)(;.*)?$" } } } }`, 'MP_RULE_INVALID');
  }
  if (match['source'] !== undefined) {
    problems.error('spec.match.source', 'matching on the calling service is not converted: write a VirtualService with match sourceLabels instead', 'MP_RULE_INVALID');
  }
  const headers: Record<string, StringMatch> = {};
  let uri: StringMatch | undefined;
  for (const [name, entry] of Object.entries(fieldsOf(fieldsOf(match['request'])['headers']))) {
    const converted = readStringMatch(entry, `spec.match.request.headers.${name}`, problems);
    if (!converted) continue;
    const lower = name.toLowerCase();
    if (lower === 'uri') uri = converted;
    else headers[PSEUDO_HEADERS.has(lower) ? `:${lower}` : lower] = converted;
  }
  if (!uri && Object.keys(headers).length === 0) return undefined;
  return { ...(uri ? { uri } : {}), ...(Object.keys(headers).length > 0 ? { headers } : {}) };
}

function readRoutes(spec: Fields, host: string | undefined, namespace: string, problems: ObjectProblems): RouteRuleTarget[] {
  const value = spec['route'];
  if (value === undefined || value === null) return host ? [{ host, labels: {} }] : [];
  if (!Array.isArray(value)) {
    problems.error('spec.route', `must be a list, got ${describeType(value)}: write route: [{ labels: { version: v1 }, weight: 100 }]`, 'MP_RULE_INVALID');
    return [];
  }
  const routes: RouteRuleTarget[] = [];
  let total = 0;
  value.forEach((entry: unknown, index) => {
    const path = `spec.route[${index}]`;
    if (!isFields(entry)) problems.error(path, `must be a map, got ${describeType(entry)}: write e.g. { labels: { version: v1 }, weight: 100 }`, 'MP_RULE_INVALID');
    const route = fieldsOf(entry);
    const target = route['destination'] === undefined ? host : readIstioService(route['destination'], `${path}.destination`, namespace, problems);
    const labels = route['labels'];
    if (labels !== undefined && (!isFields(labels) || !Object.values(labels).every((v) => typeof v === 'string'))) {
      problems.error(`${path}.labels`, 'must be a map of label to string value, e.g. labels: { version: v1 }', 'MP_RULE_INVALID');
    }
    const weight = route['weight'];
    if (weight !== undefined && (typeof weight !== 'number' || !Number.isInteger(weight) || weight < 0 || weight > 100)) {
      problems.error(`${path}.weight`, `must be a whole number from 0 to 100, got ${describeType(weight)}`, 'MP_RULE_INVALID');
      return;
    }
    total += typeof weight === 'number' ? weight : value.length === 1 ? 100 : 0;
    if (target) routes.push({ host: target, labels: stringMap(labels), ...(typeof weight === 'number' ? { weight } : {}) });
  });
  if (value.length > 0 && total !== 100 && routes.length === value.length) {
    problems.error('spec.route', `weights sum to ${total}, expected 100: give each route its share of traffic so they add up to 100`, 'MP_RULE_INVALID');
  }
  return routes;
}

export function parseRouteRule(input: SourcedObject, object: Fields, kind: string, meta: ObjectMeta): ParsedObject {
  const problems = new ObjectProblems();
  requireName(meta, problems, 'RouteRule');
  const spec = fieldsOf(object['spec']);
  // Fields RouteRule had that are not converted are reported (MP_UNSUPPORTED), never silently dropped.
  problems.issues.push(...checkIstioFields(object['spec'], 'RouteRule', 'spec', 'MP_RULE_INVALID'));
  const host = readIstioService(spec['destination'], 'spec.destination', meta.namespace, problems);
  const precedence = spec['precedence'] ?? 0;
  if (typeof precedence !== 'number' || !Number.isInteger(precedence)) {
    problems.error('spec.precedence', `must be a whole number (higher is matched first), got ${describeType(precedence)}`, 'MP_RULE_INVALID');
  }
  const match = readMatch(spec['match'], problems);
  const routes = readRoutes(spec, host, meta.namespace, problems);
  if (problems.hasErrors() || meta.name === undefined || host === undefined || typeof precedence !== 'number') {
    return rejectedObject(input, kind, meta, problems.issues);
  }
  const warnings: ValidationIssue[] = problems.warnings();
  const routeRule: RouteRuleInfo = {
    namespace: meta.namespace,
    name: meta.name,
    source: input.source,
    ...(meta.creationTimestamp !== undefined ? { creationTimestamp: meta.creationTimestamp } : {}),
    precedence,
    host,
    ...(match ? { match } : {}),
    routes,
    warnings,
  };
  return { type: 'routeRule', key: objectKey(kind, meta.namespace, meta.name), source: input.source, routeRule };
}

function sameLabels(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => a[key] === b[key]);
}

/** A DNS-label subset name from labels: `version: canary_version` -> `version-canary-version`. */
function subsetNameFor(labels: Readonly<Record<string, string>>, taken: ReadonlySet<string>): string {
  const words = Object.keys(labels).sort().flatMap((key) => [key, labels[key] ?? '']).join('-');
  let name = words.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/-+/g, '-').replace(/^-|-$/g, '').slice(0, 50);
  if (name === '' || taken.has(name)) {
    name = `${name || 'subset'}-${createHash('sha256').update(JSON.stringify(labels)).digest('hex').slice(0, 8)}`;
  }
  return name;
}

function byPrecedence(a: RouteRuleInfo, b: RouteRuleInfo): number {
  if (a.precedence !== b.precedence) return b.precedence - a.precedence;
  const at = a.creationTimestamp ?? '';
  const bt = b.creationTimestamp ?? '';
  if (at !== bt) return at < bt ? -1 : 1;
  const ak = `${a.namespace}/${a.name}`;
  const bk = `${b.namespace}/${b.name}`;
  return ak < bk ? -1 : ak > bk ? 1 : 0;
}

/** The subsets each host needs, reusing a DestinationRule's subset when it has the same labels. */
class SubsetPlanner {
  readonly #byHost = new Map<string, Subset[]>();
  readonly #added = new Map<string, Subset[]>();

  constructor(existing: ReadonlyMap<string, DestinationRule>) {
    for (const [host, rule] of existing) this.#byHost.set(host, [...(rule.spec.subsets ?? [])]);
  }

  subsetFor(host: string, labels: Readonly<Record<string, string>>): string | undefined {
    if (Object.keys(labels).length === 0) return undefined;
    const subsets = this.#byHost.get(host) ?? [];
    const found = subsets.find((s) => sameLabels(s.labels ?? {}, labels));
    if (found) return found.name;
    const subset: Subset = { name: subsetNameFor(labels, new Set(subsets.map((s) => s.name))), labels };
    this.#byHost.set(host, [...subsets, subset]);
    this.#added.set(host, [...(this.#added.get(host) ?? []), subset]);
    return subset.name;
  }

  added(): ReadonlyMap<string, readonly Subset[]> {
    return this.#added;
  }
}

/** `routerule-reviews` for a service in the rules' namespace, `routerule-reviews-shop` for one in `shop`. */
function ruleName(host: string, namespace: string): string {
  const local = host.endsWith(`.${namespace}.svc.${DEFAULT_DOMAIN_SUFFIX}`) ? host.slice(0, host.indexOf('.')) : host.replace(`.svc.${DEFAULT_DOMAIN_SUFFIX}`, '');
  return `routerule-${local.replace(/[^a-z0-9-]+/g, '-')}`.slice(0, 253);
}

/**
 * All rules once RouteRules are converted: one VirtualService per destination host, and the
 * subsets the routes' labels need, added to the host's DestinationRule or to a new one.
 */
export function convertRouteRules(routeRules: readonly RouteRuleInfo[], rules: readonly Rule[]): Rule[] {
  if (routeRules.length === 0) return [...rules];
  const destinationRules = new Map<string, DestinationRule>();
  for (const rule of rules.filter(isDestinationRule)) {
    const host = resolveShortName(rule.spec.host, rule.meta.namespace);
    if (!destinationRules.has(host)) destinationRules.set(host, rule);
  }
  const planner = new SubsetPlanner(destinationRules);
  const byHost = new Map<string, RouteRuleInfo[]>();
  for (const routeRule of [...routeRules].sort(byPrecedence)) byHost.set(routeRule.host, [...(byHost.get(routeRule.host) ?? []), routeRule]);

  const virtualServices: VirtualService[] = [];
  for (const [host, group] of byHost) {
    const http = group.map((routeRule): HttpRoute => ({
      name: `${routeRule.namespace}/${routeRule.name}`,
      ...(routeRule.match ? { match: [routeRule.match] } : {}),
      route: routeRule.routes.map((target) => {
        const subset = planner.subsetFor(target.host, target.labels);
        return {
          destination: { host: target.host, ...(subset !== undefined ? { subset } : {}) },
          ...(target.weight !== undefined && routeRule.routes.length > 1 ? { weight: target.weight } : {}),
        };
      }),
    }));
    const [first] = group;
    if (!first) continue;
    const timestamps = group.map((r) => r.creationTimestamp).filter((t): t is string => t !== undefined).sort();
    virtualServices.push({
      meta: {
        kind: 'VirtualService',
        name: ruleName(host, first.namespace),
        namespace: first.namespace,
        source: first.source,
        ...(timestamps[0] !== undefined ? { creationTimestamp: timestamps[0] } : {}),
        warnings: group.flatMap((r) => r.warnings.map((w) => ({ ...w, message: `RouteRule ${r.namespace}/${r.name}: ${w.message}` }))),
      },
      spec: { hosts: [host], http },
    });
  }

  const out: Rule[] = rules.map((rule) => {
    if (!isDestinationRule(rule)) return rule;
    const host = resolveShortName(rule.spec.host, rule.meta.namespace);
    const added = destinationRules.get(host) === rule ? planner.added().get(host) : undefined;
    return added ? { ...rule, spec: { ...rule.spec, subsets: [...(rule.spec.subsets ?? []), ...added] } } : rule;
  });
  for (const [host, subsets] of planner.added()) {
    if (destinationRules.has(host)) continue;
    const owner = byHost.get(host)?.[0] ?? routeRules.find((r) => r.routes.some((t) => t.host === host));
    if (!owner) continue;
    out.push({
      meta: { kind: 'DestinationRule', name: ruleName(host, owner.namespace), namespace: owner.namespace, source: owner.source },
      spec: { host, subsets },
    });
  }
  return [...out, ...virtualServices];
}
