// What the proxy itself answers for a route without a forwarding action: the status of a redirect
// or a direct response, and the parts of the redirect's Location the route sets.
import { asObject, str } from '../attribution.ts';
import type { JsonObject } from '../proto-json.ts';
import type { RequestFacts } from './route-match.ts';

/** The parts of a redirect's Location a route sets; a part left out keeps the request's. */
export interface ExplainedLocation {
  readonly scheme?: string;
  readonly host?: string;
  readonly port?: number;
  readonly path?: string;
}

export interface ExplainedAnswer {
  readonly kind: 'redirect' | 'direct_response';
  readonly status: number;
  readonly location: ExplainedLocation | null;
}

/** envoy.config.route.v3.RedirectAction.RedirectResponseCode; MOVED_PERMANENTLY is the proto default. */
const REDIRECT_STATUS: Readonly<Record<string, number>> = {
  MOVED_PERMANENTLY: 301,
  FOUND: 302,
  SEE_OTHER: 303,
  TEMPORARY_REDIRECT: 307,
  PERMANENT_REDIRECT: 308,
};

/** The path a redirect writes: path_redirect whole, or prefix_rewrite in place of the prefix matched. */
function redirectPath(redirect: JsonObject, match: JsonObject, facts: RequestFacts): string | undefined {
  if (typeof redirect['path_redirect'] === 'string') return redirect['path_redirect'].split('?')[0];
  if (typeof redirect['prefix_rewrite'] !== 'string') return undefined;
  const prefix = typeof match['prefix'] === 'string' ? match['prefix'] : typeof match['path_separated_prefix'] === 'string' ? match['path_separated_prefix'] : undefined;
  const bare = facts.path.split('?')[0] ?? facts.path;
  return prefix === undefined ? undefined : redirect['prefix_rewrite'] + bare.slice(prefix.length);
}

/** The proxy's own answer on a route with `redirect` or `direct_response`; undefined for any other route. */
export function routeAnswer(route: JsonObject, facts: RequestFacts): ExplainedAnswer | undefined {
  const direct = asObject(route['direct_response']);
  if (direct) return { kind: 'direct_response', status: Number(direct['status'] ?? 0), location: null };
  const redirect = asObject(route['redirect']);
  if (!redirect) return undefined;
  const code = typeof redirect['response_code'] === 'string' ? redirect['response_code'] : 'MOVED_PERMANENTLY';
  const scheme = redirect['https_redirect'] === true ? 'https' : typeof redirect['scheme_redirect'] === 'string' ? redirect['scheme_redirect'] : undefined;
  const path = redirectPath(redirect, asObject(route['match']) ?? {}, facts);
  const location: ExplainedLocation = {
    ...(scheme !== undefined ? { scheme } : {}),
    ...(typeof redirect['host_redirect'] === 'string' ? { host: str(redirect['host_redirect']) } : {}),
    ...(redirect['port_redirect'] !== undefined ? { port: Number(redirect['port_redirect']) } : {}),
    ...(path !== undefined ? { path } : {}),
  };
  return { kind: 'redirect', status: REDIRECT_STATUS[code] ?? 301, location };
}

/** A virtual host's require_tls: 301 to https, the rest of the request kept. */
export const REQUIRE_TLS_ANSWER: ExplainedAnswer = { kind: 'redirect', status: 301, location: { scheme: 'https' } };
