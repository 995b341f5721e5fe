// Istio's AuthorizationPolicy: which policies apply to a workload (root namespace: the whole mesh;
// a namespace: its workloads; a selector: the workloads it picks), and which attributes exist.
import type { Proxy } from './proxy.ts';
import type { AuthorizationAction, AuthorizationPolicy, Rule, ValidationIssue } from './rules.ts';
import { ruleKey } from './rules.ts';
import { labelsMatch } from './service.ts';
import type { WorkloadIndex } from './workload-labels.ts';

export const AUTHORIZATION_ACTIONS: readonly AuthorizationAction[] = ['ALLOW', 'DENY', 'AUDIT', 'CUSTOM'];

/** Source fields meshpilot cannot enforce, and why. */
export const UNENFORCEABLE_SOURCE_FIELDS: Readonly<Record<string, string>> = {
  requestPrincipals: 'request principals come from a JWT checked by RequestAuthentication, which meshpilot does not implement',
  notRequestPrincipals: 'request principals come from a JWT checked by RequestAuthentication, which meshpilot does not implement',
  serviceAccounts: 'is not implemented by meshpilot (write the principal instead: cluster.local/ns/NAMESPACE/sa/NAME)',
  notServiceAccounts: 'is not implemented by meshpilot (write notPrincipals instead)',
  trustDomains: 'is not implemented by meshpilot (write principals of that trust domain instead)',
  notTrustDomains: 'is not implemented by meshpilot (write notPrincipals instead)',
};

/** `when` keys (by prefix) meshpilot cannot enforce, and why. */
export const UNENFORCEABLE_CONDITIONS: readonly (readonly [string, string])[] = [
  ['request.auth.', 'JWT claims are checked by RequestAuthentication, which meshpilot does not implement'],
  ['experimental.', 'experimental attributes are not implemented by meshpilot'],
  ['source.trustDomain', 'the caller\'s trust domain is not implemented by meshpilot (match source.principal instead)'],
];

const EXACT_KEYS = new Set([
  'source.ip', 'remote.ip', 'source.namespace', 'source.principal', 'source.trustDomain', 'destination.ip', 'destination.port', 'connection.sni',
  'request.auth.principal', 'request.auth.audiences', 'request.auth.presenter',
]);

/** The header a `request.headers[name]` key names, or undefined for any other key. */
export function headerOfKey(key: string): string | undefined {
  const match = /^request\.headers\[([^\]]+)\]$/.exec(key);
  return match?.[1];
}

/** Why `key` is not an attribute Istio knows (the `when` keys of Istio's authorization), or undefined. */
export function conditionKeyProblem(key: string): string | undefined {
  if (EXACT_KEYS.has(key) || headerOfKey(key) !== undefined) return undefined;
  if (/^request\.auth\.claims(\[[^\]]+\])+$/.test(key) || /^experimental\.envoy\.filters\.[\w.]+\[[^\]]+\]$/.test(key)) return undefined;
  if (key.startsWith('request.headers')) return `"${key}" names no header: write request.headers[x-user] (the header name in brackets)`;
  return `"${key}" is not an attribute of Istio's authorization: use source.ip, remote.ip, source.namespace, source.principal, request.headers[NAME], destination.ip, destination.port, connection.sni or request.auth.*`;
}

/** The action a policy takes: ALLOW when unset. */
export function actionOf(policy: AuthorizationPolicy): AuthorizationAction {
  return policy.spec.action ?? 'ALLOW';
}

export type PolicyScope = 'mesh' | 'namespace' | 'workload';

export interface AppliedPolicy {
  readonly policy: AuthorizationPolicy;
  /** Why it applies: a root namespace policy without selector, a namespace one, or one whose selector picks the workload. */
  readonly scope: PolicyScope;
}

export interface AuthorizationIndex {
  readonly size: number;
  /** The policies that apply to `proxy`'s workload, oldest first; empty for gateways and proxies without a namespace. */
  forProxy(proxy: Pick<Proxy, 'type' | 'namespace' | 'labels' | 'ipAddresses'>): readonly AppliedPolicy[];
}

export interface AuthorizationStatusSink {
  set(key: string, status: { rule: Rule; issues: readonly ValidationIssue[]; applied: boolean }): unknown;
}

function selectorOf(policy: AuthorizationPolicy): Readonly<Record<string, string>> | undefined {
  const labels = policy.spec.selector?.matchLabels;
  return labels && Object.keys(labels).length > 0 ? labels : undefined;
}

/** A policy attached by targetRef(s) applies to waypoints and gateways, never to a sidecar. */
function attachedToTargets(policy: AuthorizationPolicy): boolean {
  return policy.spec.targetRef !== undefined || (policy.spec.targetRefs?.length ?? 0) > 0;
}

/** Indexes policies (sorted oldest first) by namespace and records each one's status. */
export function indexAuthorizationPolicies(
  policies: readonly AuthorizationPolicy[],
  rootNamespace: string,
  workloads: WorkloadIndex,
  status: AuthorizationStatusSink,
): AuthorizationIndex {
  const byNamespace = new Map<string, AuthorizationPolicy[]>();
  let size = 0;
  for (const policy of policies) {
    const applied = !attachedToTargets(policy);
    status.set(ruleKey(policy.meta), { rule: policy, issues: [], applied });
    if (!applied) continue;
    const list = byNamespace.get(policy.meta.namespace);
    if (list) list.push(policy);
    else byNamespace.set(policy.meta.namespace, [policy]);
    size++;
  }
  return {
    size,
    forProxy(proxy) {
      if (size === 0 || proxy.type === 'router' || proxy.namespace === undefined) return [];
      const namespaces = proxy.namespace === rootNamespace ? [rootNamespace] : [rootNamespace, proxy.namespace];
      const out: AppliedPolicy[] = [];
      let labels: Readonly<Record<string, string>> | undefined;
      for (const namespace of namespaces) {
        for (const policy of byNamespace.get(namespace) ?? []) {
          const selector = selectorOf(policy);
          if (!selector) {
            out.push({ policy, scope: namespace === rootNamespace ? 'mesh' : 'namespace' });
            continue;
          }
          labels ??= workloads.labelsOf(proxy);
          // A selector in the root namespace picks matching workloads in every namespace, as in Istio.
          if (Object.keys(labels).length > 0 && labelsMatch(selector, labels)) out.push({ policy, scope: 'workload' });
        }
      }
      return out;
    },
  };
}
