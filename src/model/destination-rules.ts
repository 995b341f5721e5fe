// DestinationRules as Istio finds them: rules for one host in one namespace merge (oldest first),
// and a proxy looks in its own namespace, then the service's, then the root namespace, taking
// the most specific host (exact before `*.ns.svc.cluster.local` before `*`).
import type { DestinationRule, Rule, Subset, ValidationIssue } from './rules.ts';
import { ruleKey } from './rules.ts';
import { resolveShortName } from './service.ts';

/** Istio's default root namespace: rules there apply to every namespace. */
export const ROOT_NAMESPACE = 'istio-system';

export interface RuleStatusSink {
  set(key: string, status: { rule: Rule; issues: readonly ValidationIssue[]; applied: boolean }): unknown;
}

export interface DestinationRuleIndex {
  lookup(host: string, proxyNamespace: string, serviceNamespace: string): DestinationRule | undefined;
}

/** Whether a host pattern (`*.example.com`, `*`, or a name) covers `host`. */
export function hostMatches(pattern: string, host: string): boolean {
  if (pattern === '*') return true;
  if (pattern.startsWith('*')) return host.endsWith(pattern.slice(1));
  return pattern === host;
}

/** Exact names first, then longer (narrower) wildcards. */
function specificity(pattern: string): number {
  return pattern.startsWith('*') ? pattern.length : Number.MAX_SAFE_INTEGER;
}

export function mostSpecificMatch<T>(byPattern: ReadonlyMap<string, T>, host: string): T | undefined {
  const exact = byPattern.get(host);
  if (exact !== undefined) return exact;
  let best: [string, T] | undefined;
  for (const entry of byPattern) {
    if (!entry[0].startsWith('*') || !hostMatches(entry[0], host)) continue;
    if (!best || specificity(entry[0]) > specificity(best[0])) best = entry;
  }
  return best?.[1];
}

function visibleFrom(rule: DestinationRule, namespace: string): boolean {
  const exportTo = rule.spec.exportTo;
  if (!exportTo || exportTo.length === 0 || exportTo.includes('*')) return true;
  return exportTo.some((to) => to === namespace || (to === '.' && rule.meta.namespace === namespace));
}

/** Istio's merge: later rules add subsets the earlier ones lack; the oldest traffic policy stays. */
function merge(into: DestinationRule, rule: DestinationRule): { merged: DestinationRule; issues: ValidationIssue[] } {
  const issues: ValidationIssue[] = [];
  const subsets: Subset[] = [...(into.spec.subsets ?? [])];
  (rule.spec.subsets ?? []).forEach((subset, index) => {
    if (subsets.some((s) => s.name === subset.name)) {
      issues.push({
        code: 'MP_RULE_CONFLICT',
        severity: 'warning',
        path: `spec.subsets[${index}].name`,
        message: `subset "${subset.name}" is already defined by DestinationRule ${into.meta.namespace}/${into.meta.name}, which is older: this one is ignored; rename or remove it`,
      });
    } else {
      subsets.push(subset);
    }
  });
  if (rule.spec.trafficPolicy && into.spec.trafficPolicy) {
    issues.push({
      code: 'MP_RULE_CONFLICT',
      severity: 'warning',
      path: 'spec.trafficPolicy',
      message: `DestinationRule ${into.meta.namespace}/${into.meta.name} is older and already sets a trafficPolicy for this host: this one is ignored; merge them`,
    });
  }
  const trafficPolicy = into.spec.trafficPolicy ?? rule.spec.trafficPolicy;
  return {
    merged: { meta: into.meta, spec: { ...into.spec, subsets, ...(trafficPolicy ? { trafficPolicy } : {}) } },
    issues,
  };
}

/** Indexes rules (already sorted oldest first) by namespace and resolved host, recording each one's status. */
export function indexDestinationRules(rules: readonly DestinationRule[], status: RuleStatusSink): DestinationRuleIndex {
  const byNamespace = new Map<string, Map<string, DestinationRule>>();
  for (const rule of rules) {
    const host = resolveShortName(rule.spec.host, rule.meta.namespace);
    let hosts = byNamespace.get(rule.meta.namespace);
    if (!hosts) byNamespace.set(rule.meta.namespace, (hosts = new Map<string, DestinationRule>()));
    const earlier = hosts.get(host);
    if (!earlier) {
      hosts.set(host, { meta: rule.meta, spec: { ...rule.spec, host } });
      status.set(ruleKey(rule.meta), { rule, issues: [], applied: true });
      continue;
    }
    const { merged, issues } = merge(earlier, rule);
    hosts.set(host, merged);
    status.set(ruleKey(rule.meta), { rule, issues, applied: true });
  }
  return {
    lookup(host, proxyNamespace, serviceNamespace) {
      const order = [proxyNamespace, serviceNamespace, ROOT_NAMESPACE].filter((ns, i, all) => ns !== '' && all.indexOf(ns) === i);
      for (const namespace of order) {
        const hosts = byNamespace.get(namespace);
        if (!hosts) continue;
        const rule = mostSpecificMatch(hosts, host);
        if (rule && visibleFrom(rule, proxyNamespace || serviceNamespace)) return rule;
      }
      return undefined;
    },
  };
}
