// What Istio's VirtualService validation concludes from a rule as a whole: hosts that repeat
// (an error), routes and matches no request can reach, and legacy gateway names (warnings).
import type { Fields } from './object-fields.ts';
import { isFields } from './object-fields.ts';
import type { IssueList } from './istio-fields.ts';
import { mapsIn } from './istio-fields.ts';

/** Whether `pattern` (a host, `*` or `*.suffix`) takes every request for `host`. */
export function hostCovers(pattern: string, host: string): boolean {
  return pattern === host || pattern === '*' || (pattern.startsWith('*') && host.endsWith(pattern.slice(1)));
}

/** JSON with sorted keys, so two matches written in a different order compare equal. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (!isFields(value)) return JSON.stringify(value);
  return `{${Object.keys(value).sort().map((key) => `${JSON.stringify(key)}:${canonical(value[key])}`).join(',')}}`;
}

/** A match without its name, which does not change what it takes. */
function matchKey(match: Fields): string {
  const { name: _name, ...rest } = match;
  return canonical(rest);
}

function uriPrefix(match: Fields): string | undefined {
  const uri = match['uri'];
  return isFields(uri) && typeof uri['prefix'] === 'string' && Object.keys(uri).length === 1 ? uri['prefix'] : undefined;
}

/** An earlier prefix match that takes every request a later one would, all else equal. */
function coveredBy(earlier: Fields, later: Fields): boolean {
  const before = uriPrefix(earlier);
  const after = uriPrefix(later);
  if (before === undefined || after === undefined || before === after || !after.startsWith(before)) return false;
  const { uri: _a, name: _b, ...restBefore } = earlier;
  const { uri: _c, name: _d, ...restAfter } = later;
  return canonical(restBefore) === canonical(restAfter);
}

/** Istio's reachability analysis of one list of routes (http or tcp), as warnings. */
function analyzeRoutes(routesValue: unknown, path: string, issues: IssueList): void {
  const seen = new Map<string, number>();
  const earlierMatches: { match: Fields; route: number }[] = [];
  let catchAll: number | undefined;
  for (const [index, route] of mapsIn(routesValue, path, 'route', issues)) {
    const routePath = `${path}[${index}]`;
    const matches = Array.isArray(route['match']) ? route['match'].filter(isFields) : [];
    if (catchAll !== undefined) {
      issues.warn(routePath, `is never used: ${path}[${catchAll}] has no match and takes every request first; move this route before it`, 'MP_RULE_WARNING');
      if (matches.length === 0) continue;
      continue;
    }
    if (matches.length === 0) {
      catchAll = index;
      continue;
    }
    let repeated = 0;
    matches.forEach((match, matchIndex) => {
      const key = matchKey(match);
      const first = seen.get(key);
      const covering = earlierMatches.find((earlier) => coveredBy(earlier.match, match));
      if (first !== undefined) {
        repeated++;
        issues.warn(`${routePath}.match[${matchIndex}]`, `is never used: ${path}[${first}] has the same match and comes first; remove one`, 'MP_RULE_WARNING');
      } else if (covering) {
        issues.warn(`${routePath}.match[${matchIndex}]`, `is never used: a shorter prefix in ${path}[${covering.route}] takes its requests first; move this route before it`, 'MP_RULE_WARNING');
      }
      if (first === undefined) seen.set(key, index);
      earlierMatches.push({ match, route: index });
    });
    if (repeated === matches.length && matches.length > 1) issues.warn(routePath, `is never used: every match of it is in an earlier route`, 'MP_RULE_WARNING');
  }
}

export function analyzeVirtualService(spec: Fields, hosts: readonly (readonly [number, string])[], issues: IssueList): void {
  hosts.forEach(([index, host], position) => {
    const earlier = hosts.slice(0, position).find(([, other]) => hostCovers(other, host) || hostCovers(host, other));
    if (earlier) issues.error(`spec.hosts[${index}]`, `"${host}" overlaps "${earlier[1]}" at spec.hosts[${earlier[0]}]: a rule lists each host once; remove one`);
  });
  analyzeRoutes(spec['http'], 'spec.http', issues);
  analyzeRoutes(spec['tcp'], 'spec.tcp', issues);
  if (!Array.isArray(spec['gateways'])) return;
  spec['gateways'].forEach((gateway: unknown, index) => {
    if (typeof gateway !== 'string' || gateway.includes('/') || !gateway.includes('.')) return;
    const [name = '', namespace = ''] = gateway.split('.');
    issues.warn(`spec.gateways[${index}]`, `"${gateway}" is Istio's legacy form of a gateway name: write ${namespace}/${name}`, 'MP_RULE_WARNING');
  });
}
