// DestinationRules as Istio finds them: rules for one host in one namespace with the same
// exportTo merge (oldest first), and a proxy looks in its own namespace, then at what the
// service's namespace exports to it, then at what the root namespace exports to it, taking the
// most specific host (exact before `*.ns.svc.cluster.local` before `*`).
import type { DestinationRule, Rule, Subset, ValidationIssue } from './rules.ts';
import { ruleKey } from './rules.ts';
import { resolveShortName } from './service.ts';
import { EXPORT_PRIVATE, EXPORT_PUBLIC } from './visibility.ts';

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

/** One merged rule and the exportTo it was indexed with (Istio's ConsolidatedDestRule). */
interface Consolidated {
  readonly rule: DestinationRule;
  readonly exportTo: ReadonlySet<string>;
}

type ByHost = Map<string, Consolidated[]>;

function isSuperset(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  return [...b].every((v) => a.has(v));
}

/** Istio's mergeDestinationRule: a rule joins entries with the same exportTo (or one it widens); otherwise it stands alone. */
function mergeInto(byHost: ByHost, rule: DestinationRule, exportTo: ReadonlySet<string>, report: (rule: DestinationRule, issues: ValidationIssue[]) => void): void {
  const host = rule.spec.host;
  const entries = byHost.get(host);
  if (!entries) {
    byHost.set(host, [{ rule, exportTo }]);
    return;
  }
  let separately = true;
  for (const [index, entry] of entries.entries()) {
    const same = entry.exportTo.size === exportTo.size && isSuperset(exportTo, entry.exportTo);
    if (!same && !(entry.exportTo.size > 0 && isSuperset(exportTo, entry.exportTo))) {
      separately = true;
      continue;
    }
    separately = false;
    const { merged, issues } = merge(entry.rule, rule);
    entries[index] = { rule: merged, exportTo: entry.exportTo };
    report(rule, issues);
  }
  if (separately) entries.push({ rule, exportTo });
}

/** Istio picks the last rule without a workload selector among those that apply. */
function lastOf(entries: readonly Consolidated[] | undefined): DestinationRule | undefined {
  return entries?.[entries.length - 1]?.rule;
}

/**
 * Indexes rules (already sorted oldest first) as Istio's push context does, recording each
 * one's status: every namespace's rules its own proxies may use, the rules each namespace
 * exports, and the root namespace's private ones (for proxies in the root namespace).
 */
export function indexDestinationRules(
  rules: readonly DestinationRule[],
  status: RuleStatusSink,
  rootNamespace: string = ROOT_NAMESPACE,
  defaultExportTo: readonly string[] = [],
): DestinationRuleIndex {
  const local = new Map<string, ByHost>();
  const exported = new Map<string, ByHost>();
  const rootLocal: ByHost = new Map();
  const issuesByRule = new Map<string, Map<string, ValidationIssue>>();
  const report = (rule: DestinationRule, issues: ValidationIssue[]): void => {
    const seen = issuesByRule.get(ruleKey(rule.meta));
    for (const issue of issues) seen?.set(`${issue.path}:${issue.message}`, issue);
  };
  const indexIn = (byNamespace: Map<string, ByHost>, namespace: string): ByHost => {
    let byHost = byNamespace.get(namespace);
    if (!byHost) byNamespace.set(namespace, (byHost = new Map<string, Consolidated[]>()));
    return byHost;
  };
  for (const original of rules) {
    const namespace = original.meta.namespace;
    const rule: DestinationRule = { meta: original.meta, spec: { ...original.spec, host: resolveShortName(original.spec.host, namespace) } };
    issuesByRule.set(ruleKey(rule.meta), new Map());
    const exportTo = new Set(rule.spec.exportTo ?? []);
    if (exportTo.size === 0 || exportTo.has(EXPORT_PUBLIC) || exportTo.has(EXPORT_PRIVATE) || exportTo.has(namespace)) {
      mergeInto(indexIn(local, namespace), rule, exportTo, report);
    }
    // Only `.` matters in the mesh default: an unset exportTo is visible wherever the rule is found.
    const privateOnly =
      (exportTo.size === 0 && defaultExportTo.includes(EXPORT_PRIVATE)) || (exportTo.size === 1 && (exportTo.has(EXPORT_PRIVATE) || exportTo.has(namespace)));
    if (!privateOnly) mergeInto(indexIn(exported, namespace), rule, exportTo, report);
    else if (namespace === rootNamespace) mergeInto(rootLocal, rule, exportTo, report);
  }
  for (const rule of rules) {
    status.set(ruleKey(rule.meta), { rule, issues: [...(issuesByRule.get(ruleKey(rule.meta))?.values() ?? [])], applied: true });
  }
  const exportedFrom = (namespace: string, host: string, client: string): DestinationRule | undefined => {
    const byHost = exported.get(namespace);
    const entries = byHost && mostSpecificMatch(byHost, host);
    const visible = entries?.filter((e) => e.exportTo.size === 0 || e.exportTo.has(EXPORT_PUBLIC) || e.exportTo.has(client));
    return lastOf(visible);
  };
  return {
    lookup(host, proxyNamespace, serviceNamespace) {
      const own = proxyNamespace === rootNamespace ? rootLocal : local.get(proxyNamespace);
      const ownRule = own && lastOf(mostSpecificMatch(own, host));
      if (ownRule) return ownRule;
      return (serviceNamespace !== '' ? exportedFrom(serviceNamespace, host, proxyNamespace) : undefined) ?? exportedFrom(rootNamespace, host, proxyNamespace);
    },
  };
}
