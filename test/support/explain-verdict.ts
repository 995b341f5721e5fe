// Whether what a real request met agrees with meshpilot's explain of it over the config the proxy
// was sent: the pod that answered backs a cluster explain names, or the proxy's own answer
// (a redirect, a direct response, a 404, a refused connection) is the one explain gives.
import type { Explanation } from '../../src/xds/explain/explain.ts';

/** What came back for one request. */
export interface ObservedResponse {
  readonly status?: number;
  readonly location?: string;
  /** The echo backend that answered: its pod (and namespace, when it says). */
  readonly pod?: string;
  readonly namespace?: string;
  /** No response at all (refused, reset, timed out). */
  readonly error?: string;
  /** The client followed redirects: a redirect's own answer was not seen. */
  readonly followedRedirects?: boolean;
}

export type Verdict = { readonly kind: 'agreed' } | { readonly kind: 'disagreed'; readonly why: string } | { readonly kind: 'not checked'; readonly reason: string };

/** The addresses of the pods that may answer for each cluster explain names; undefined when unknown. */
export type BackingPods = (cluster: Explanation['clusters'][number]) => readonly string[] | undefined;

const DEFAULT_PORT: Readonly<Record<string, number>> = { http: 80, https: 443 };

/** The parts of a Location that explain says the redirect sets, each compared with what came back. */
function locationMismatch(expected: NonNullable<Explanation['answer']>['location'], location: string | undefined): string | undefined {
  if (!expected) return undefined;
  if (location === undefined || location === '') return 'no Location header came back';
  let url: URL;
  try {
    url = new URL(location);
  } catch {
    return `Location ${location} is not an absolute URL`;
  }
  const scheme = url.protocol.replace(/:$/, '');
  const got = { scheme, host: url.hostname, port: url.port === '' ? DEFAULT_PORT[scheme] : Number(url.port), path: url.pathname };
  for (const part of ['scheme', 'host', 'port', 'path'] as const) {
    const want = expected[part];
    if (want !== undefined && String(want).toLowerCase() !== String(got[part]).toLowerCase()) return `Location ${part} is ${String(got[part])}, explain's redirect sets ${String(want)}`;
  }
  return undefined;
}

export function judge(explanation: Explanation, observed: ObservedResponse, backing: BackingPods, podAddress: string | undefined): Verdict {
  const outcome = explanation.outcome;
  const refused = outcome === 'no_listener' || outcome === 'no_filter_chain';
  if (observed.error !== undefined || observed.status === undefined) {
    return refused ? { kind: 'agreed' } : { kind: 'not checked', reason: 'no response (the connection failed or timed out) where explain has the proxy take the request' };
  }
  const status = observed.status;
  if (refused) return { kind: 'disagreed', why: `explain says the connection is refused (${outcome}), the proxy answered ${String(status)}` };
  if (outcome === 'no_route_config') return { kind: 'not checked', reason: 'the route configuration the listener names was not sent' };
  if (outcome === 'no_virtual_host' || outcome === 'no_route') return status === 404 ? { kind: 'agreed' } : { kind: 'disagreed', why: `explain says 404 (${outcome}), the proxy answered ${String(status)}` };
  if (outcome === 'redirect' || outcome === 'no_action') {
    const answer = explanation.answer;
    if (!answer) return { kind: 'not checked', reason: 'a route without a forwarding action, redirect or direct response' };
    if (answer.kind === 'redirect' && observed.followedRedirects === true) return { kind: 'not checked', reason: 'the client followed the redirect explain gives' };
    if (status !== answer.status) return { kind: 'disagreed', why: `explain says the proxy answers ${String(answer.status)} (${answer.kind}), it answered ${String(status)}` };
    const wrongLocation = answer.kind === 'redirect' ? locationMismatch(answer.location, observed.location) : undefined;
    return wrongLocation ? { kind: 'disagreed', why: wrongLocation } : { kind: 'agreed' };
  }
  // routed or tcp: an upstream of a cluster explain names answered, or the proxy found none.
  const clusters = explanation.clusters.filter((c) => c.percent > 0);
  if (observed.pod === undefined || observed.pod === '') {
    if (status === 500 && clusters.some((c) => !c.sent)) return { kind: 'agreed' };
    if (status === 503 && clusters.some((c) => c.sent && c.endpoints.length === 0)) return { kind: 'agreed' };
    if (status === 504 && explanation.policy?.timeout) return { kind: 'agreed' };
    return { kind: 'disagreed', why: `explain sends it to ${clusters.map((c) => c.name).join(', ') || 'no cluster'}, the proxy answered ${String(status)} without a backend` };
  }
  if (podAddress === undefined) return { kind: 'not checked', reason: 'the answering pod is not one this cluster runs' };
  const sets = clusters.map((c) => ({ name: c.name, pods: backing(c) }));
  if (sets.some((s) => s.pods?.includes(podAddress) === true)) return { kind: 'agreed' };
  if (sets.some((s) => s.pods === undefined)) return { kind: 'not checked', reason: `a cluster explain names has no endpoints it can read (not EDS, no Service behind it): ${sets.filter((s) => s.pods === undefined).map((s) => s.name).join(', ')}` };
  return { kind: 'disagreed', why: `pod ${observed.namespace ?? ''}/${observed.pod} (${podAddress}) answered; it backs none of ${sets.map((s) => s.name).join(', ') || 'no cluster'}` };
}
