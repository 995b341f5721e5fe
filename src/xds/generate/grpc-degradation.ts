// What of a rule proxyless gRPC clients do not get, found by running the same gRPC translation
// the generators use with a note collector, so the report never drifts from what is sent.
import type { PushContext } from '../../model/push-context.ts';
import type { Rule, ValidationIssue } from '../../model/rules.ts';
import { isAuthorizationPolicy, isDestinationRule, isPeerAuthentication, isVirtualService, ruleKey } from '../../model/rules.ts';
import { authorizationNotes } from './authz.ts';
import { resolveShortName } from '../../model/service.ts';
import { hostMatches } from '../../model/destination-rules.ts';
import { clusterWithPolicy } from './cluster.ts';
import { effectivePolicy, routeHashPolicy } from './cluster-traffic-policy.ts';
import { buildHttpRoutes } from './http-routes.ts';
import { outboundTargets } from './outbound.ts';
import type { NoteSink } from './route-match.ts';

function collector(rule: Rule): { notes: NoteSink; issues: () => ValidationIssue[] } {
  const seen = new Map<string, ValidationIssue>();
  return {
    notes: (path, message, from) => {
      // A root's delegated routes are the delegate's to report.
      if (from && ruleKey({ kind: from.kind, namespace: from.namespace, name: from.name }) !== ruleKey(rule.meta)) return;
      seen.set(`${path}\n${message}`, { code: 'MP_GRPC_DEGRADED', severity: 'warning', path, message });
    },
    issues: () => [...seen.values()],
  };
}

function virtualServiceNotes(push: PushContext, rule: Rule, notes: NoteSink): void {
  for (const [host, vs] of push.virtualServiceByHost) {
    if (vs.rule !== rule && !vs.origins?.some((origin) => origin.rule === rule)) continue;
    const service = push.serviceByHost.get(host);
    if (!service) continue;
    for (const port of service.ports) buildHttpRoutes(push, vs, service, port, 'grpc', { labels: {}, namespace: rule.meta.namespace }, notes);
  }
}

function destinationRuleNotes(push: PushContext, rule: Rule, notes: NoteSink): void {
  if (!isDestinationRule(rule)) return;
  const host = resolveShortName(rule.spec.host, rule.meta.namespace);
  for (const target of outboundTargets(push)) {
    if (!hostMatches(host, target.service.hostname)) continue;
    clusterWithPolicy(push, target, rule.meta.namespace, 'grpc', notes);
    const { policy, path } = effectivePolicy(push.destinationRuleFor(target.service.hostname, rule.meta.namespace), target.subset?.name, target.port.port);
    routeHashPolicy(policy.loadBalancer?.consistentHash, 'grpc', notes, path);
  }
}

/** gRPC servers pick a filter chain by address alone: a PERMISSIVE port cannot take both mTLS and plaintext. */
function peerAuthenticationNotes(rule: Rule, notes: NoteSink): void {
  if (!isPeerAuthentication(rule)) return;
  const message =
    'proxyless gRPC servers cannot tell mTLS from plaintext: a PERMISSIVE gRPC server is served STRICT when its workload has an identity (security.istio.io/tlsMode: istio), plaintext otherwise';
  if (rule.spec.mtls?.mode === 'PERMISSIVE') notes('spec.mtls.mode', message);
  for (const [port, setting] of Object.entries(rule.spec.portLevelMtls ?? {})) if (setting.mode === 'PERMISSIVE') notes(`spec.portLevelMtls.${port}.mode`, message);
}

/** Warnings (code MP_GRPC_DEGRADED) for each part of `rule` proxyless gRPC clients get degraded or not at all. */
export function grpcDegradations(push: PushContext, rule: Rule): readonly ValidationIssue[] {
  return push.memo(`grpc-degradations:${ruleKey(rule.meta)}`, () => {
    const { notes, issues } = collector(rule);
    if (isVirtualService(rule)) virtualServiceNotes(push, rule, notes);
    else if (isPeerAuthentication(rule)) peerAuthenticationNotes(rule, notes);
    else if (isAuthorizationPolicy(rule)) authorizationNotes(rule, 'grpc', notes);
    else destinationRuleNotes(push, rule, notes);
    return issues();
  });
}
