// Istio's delegate VirtualServices: a root route with `delegate: {name, namespace}` is replaced by
// the delegate's routes (a VirtualService without hosts), each with the root's match merged into
// its own and the root's policies where it sets none. A delegate route whose match no root match
// contains is left out, as is a route whose delegate is missing or not exported to the root.
import type { HttpMatchRequest, HttpRoute, StringMatch, ValidationIssue, VirtualService } from './rules.ts';
import { ruleKey } from './rules.ts';
import type { Visibility } from './visibility.ts';
import { isVisibleTo } from './visibility.ts';

/** Where a served http route was written: its rule and index in that rule's `spec.http`. */
export interface HttpRouteOrigin {
  readonly rule: VirtualService;
  readonly index: number;
}

/** A VirtualService with hosts short names resolved; delegates carry their own resolved routes. */
export interface DelegationInput {
  readonly rule: VirtualService;
  readonly http: readonly HttpRoute[];
  readonly visibility: Visibility;
}

export interface MergedRoutes {
  readonly http: readonly HttpRoute[];
  readonly origins: readonly HttpRouteOrigin[];
}

export interface DelegationResult {
  /** The routes of each root (by rule key) after merging; rules without delegation are absent. */
  readonly merged: ReadonlyMap<string, MergedRoutes>;
  /** Problems found while merging, by rule key. */
  readonly issues: ReadonlyMap<string, readonly ValidationIssue[]>;
  /** Delegates some root took routes from, by rule key. */
  readonly used: ReadonlySet<string>;
}

export function isDelegate(rule: VirtualService): boolean {
  return (rule.spec.hosts ?? []).length === 0;
}

const present = (value: string | undefined): value is string => value !== undefined && value !== '';

/** Istio's stringMatchConflict: the delegate's match must be one the root's contains. */
function stringMatchConflict(root: StringMatch | undefined, leaf: StringMatch | undefined): boolean {
  if (!root || !leaf) return false;
  if (present(root.regex) && (present(leaf.regex) || present(leaf.prefix) || present(leaf.exact))) return true;
  if (present(leaf.regex) && (present(root.regex) || present(root.prefix) || present(root.exact))) return true;
  if (present(root.exact)) return present(leaf.prefix) || leaf.exact !== root.exact;
  if (present(root.prefix)) {
    if (present(leaf.prefix)) return !leaf.prefix.startsWith(root.prefix);
    if (present(leaf.exact)) return !leaf.exact.startsWith(root.prefix);
  }
  return true;
}

function mapConflict(root: Readonly<Record<string, StringMatch>> | undefined, leaf: Readonly<Record<string, StringMatch>> | undefined): boolean {
  return Object.entries(leaf ?? {}).some(([key, value]) => stringMatchConflict(root?.[key], value));
}

/** Istio's hasConflict between one root match and one delegate match. */
function matchConflict(root: HttpMatchRequest, leaf: HttpMatchRequest): boolean {
  const keys = ['uri', 'scheme', 'method', 'authority'] as const;
  if (keys.some((key) => stringMatchConflict(root[key], leaf[key]))) return true;
  if (mapConflict(root.headers, leaf.headers) || mapConflict(root.withoutHeaders, leaf.withoutHeaders) || mapConflict(root.queryParams, leaf.queryParams)) {
    return true;
  }
  if ((root.ignoreUriCase ?? false) !== (leaf.ignoreUriCase ?? false)) return true;
  if (root.port !== undefined && leaf.port !== undefined && root.port !== leaf.port) return true;
  if (present(root.sourceNamespace) && leaf.sourceNamespace !== root.sourceNamespace) return true;
  if (Object.entries(leaf.sourceLabels ?? {}).some(([key, value]) => root.sourceLabels?.[key] !== undefined && root.sourceLabels[key] !== value)) return true;
  const [rootGateways, leafGateways] = [root.gateways ?? [], leaf.gateways ?? []];
  if (rootGateways.length > 0 && leafGateways.length > 0) return leafGateways.some((gateway) => !rootGateways.includes(gateway));
  return false;
}

function joinedName(root: string | undefined, leaf: string | undefined): string | undefined {
  if (!present(leaf)) return root;
  return present(root) ? `${root}-${leaf}` : leaf;
}

function mergeMatch(root: HttpMatchRequest, leaf: HttpMatchRequest): HttpMatchRequest {
  const name = joinedName(root.name, leaf.name);
  const merged: Record<string, unknown> = { ...leaf };
  for (const key of ['uri', 'scheme', 'method', 'authority', 'sourceNamespace', 'port'] as const) {
    if (leaf[key] === undefined && root[key] !== undefined) merged[key] = root[key];
  }
  for (const key of ['headers', 'withoutHeaders', 'queryParams', 'sourceLabels'] as const) {
    if (root[key] || leaf[key]) merged[key] = { ...root[key], ...leaf[key] };
  }
  if ((leaf.gateways ?? []).length === 0 && root.gateways) merged['gateways'] = root.gateways;
  if (name !== undefined) merged['name'] = name;
  return merged;
}

/** Each delegate match with every root match that contains it; undefined when one fits none. */
function mergeMatches(root: readonly HttpMatchRequest[] | undefined, leaf: readonly HttpMatchRequest[] | undefined): HttpMatchRequest[] | undefined {
  if (!root || root.length === 0) return leaf ? [...leaf] : [];
  if (!leaf || leaf.length === 0) return [...root];
  const out: HttpMatchRequest[] = [];
  for (const sub of leaf) {
    const fitting = root.filter((match) => !matchConflict(match, sub));
    if (fitting.length === 0) return undefined;
    out.push(...fitting.map((match) => mergeMatch(match, sub)));
  }
  return out;
}

/** Policies a delegate route takes from its root when it sets none itself (Istio's mergeHTTPRoute). */
const INHERITED = ['rewrite', 'directResponse', 'timeout', 'retries', 'fault', 'mirror', 'mirrorPercent', 'mirrorPercentage', 'corsPolicy', 'mirrors', 'headers'] as const;

/** The delegate route under its root, or undefined when its match conflicts with the root's. */
export function mergeHttpRoute(root: HttpRoute, leaf: HttpRoute): HttpRoute | undefined {
  const match = mergeMatches(root.match, leaf.match);
  if (!match) return undefined;
  const merged: Record<string, unknown> = { ...leaf };
  delete merged['match'];
  if (match.length > 0) merged['match'] = match;
  const name = joinedName(root.name, leaf.name);
  if (name !== undefined) merged['name'] = name;
  for (const key of INHERITED) if (leaf[key] === undefined && root[key] !== undefined) merged[key] = root[key];
  return merged;
}

function describe(rule: VirtualService): string {
  return `VirtualService ${rule.meta.namespace}/${rule.meta.name}`;
}

/** Merges every root's delegates as Istio does when it builds its merged VirtualServices. */
export function mergeDelegates(rules: readonly DelegationInput[]): DelegationResult {
  const byName = new Map(rules.map((input) => [`${input.rule.meta.namespace}/${input.rule.meta.name}`, input]));
  const merged = new Map<string, MergedRoutes>();
  const issues = new Map<string, ValidationIssue[]>();
  const used = new Set<string>();
  const warn = (rule: VirtualService, issue: ValidationIssue): void => {
    const key = ruleKey(rule.meta);
    issues.set(key, [...(issues.get(key) ?? []), issue]);
  };
  for (const root of rules) {
    if (isDelegate(root.rule) || !root.http.some((route) => route.delegate)) continue;
    const http: HttpRoute[] = [];
    const origins: HttpRouteOrigin[] = [];
    root.http.forEach((route, index) => {
      const ref = route.delegate;
      if (!ref) {
        http.push(route);
        origins.push({ rule: root.rule, index });
        return;
      }
      const path = `spec.http[${index}].delegate`;
      const namespace = ref.namespace !== undefined && ref.namespace !== '' ? ref.namespace : root.rule.meta.namespace;
      const delegate = byName.get(`${namespace}/${ref.name}`);
      const leftOut = 'this route is left out until it is';
      if (!delegate || !isDelegate(delegate.rule)) {
        const why = delegate ? `${describe(delegate.rule)} has hosts, so it is a root, not a delegate` : `VirtualService ${namespace}/${ref.name} does not exist`;
        warn(root.rule, { code: 'MP_REF_UNKNOWN', severity: 'warning', path, message: `${why}: ${leftOut} (a delegate is a VirtualService without hosts)` });
        return;
      }
      if (!isVisibleTo(delegate.visibility, root.rule.meta.namespace)) {
        warn(root.rule, {
          code: 'MP_REF_UNKNOWN',
          severity: 'warning',
          path,
          message: `${describe(delegate.rule)} is not exported to namespace ${root.rule.meta.namespace}: ${leftOut}; add ${root.rule.meta.namespace} to its exportTo`,
        });
        return;
      }
      used.add(ruleKey(delegate.rule.meta));
      const { delegate: _ref, ...rootRoute } = route;
      delegate.http.forEach((leaf, leafIndex) => {
        const mergedRoute = mergeHttpRoute(rootRoute, leaf);
        if (!mergedRoute) {
          warn(root.rule, {
            code: 'MP_RULE_CONFLICT',
            severity: 'warning',
            path,
            message: `http[${leafIndex}] of ${describe(delegate.rule)} matches requests this route's match does not: that route is left out; narrow its match to one inside this route's`,
          });
          return;
        }
        http.push(mergedRoute);
        origins.push({ rule: delegate.rule, index: leafIndex });
      });
    });
    merged.set(ruleKey(root.rule.meta), { http, origins });
  }
  return { merged, issues, used };
}
