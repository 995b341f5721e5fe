// Istio traffic rules as meshpilot holds them: the spec as the user wrote it (Istio's field
// names), plus where it came from. Short hosts are resolved when the PushContext is built.
import type { SourceRef } from './service.ts';

export type RuleKind = 'VirtualService' | 'DestinationRule';

export interface StringMatch {
  readonly exact?: string;
  readonly prefix?: string;
  readonly regex?: string;
}

export interface HttpMatchRequest {
  readonly name?: string;
  readonly uri?: StringMatch;
  readonly headers?: Readonly<Record<string, StringMatch>>;
}

export interface PortSelector {
  readonly number: number;
}

export interface Destination {
  readonly host: string;
  readonly subset?: string;
  readonly port?: PortSelector;
}

export interface HttpRouteDestination {
  readonly destination: Destination;
  readonly weight?: number;
}

export interface HttpRoute {
  readonly name?: string;
  readonly match?: readonly HttpMatchRequest[];
  readonly route?: readonly HttpRouteDestination[];
}

export interface VirtualServiceSpec {
  readonly hosts: readonly string[];
  readonly gateways?: readonly string[];
  readonly http?: readonly HttpRoute[];
}

export interface Subset {
  readonly name: string;
  readonly labels?: Readonly<Record<string, string>>;
}

export interface DestinationRuleSpec {
  readonly host: string;
  readonly subsets?: readonly Subset[];
}

export interface RuleMeta {
  readonly kind: RuleKind;
  readonly name: string;
  readonly namespace: string;
  readonly source: SourceRef;
  /** Creation order tiebreaker (Istio merges rules oldest first); falls back to name. */
  readonly creationTimestamp?: string;
  /** Problems that did not stop the rule from being accepted (e.g. unknown fields). */
  readonly warnings?: readonly ValidationIssue[];
}

export interface VirtualService {
  readonly meta: RuleMeta & { readonly kind: 'VirtualService' };
  readonly spec: VirtualServiceSpec;
}

export interface DestinationRule {
  readonly meta: RuleMeta & { readonly kind: 'DestinationRule' };
  readonly spec: DestinationRuleSpec;
}

export type Rule = VirtualService | DestinationRule;

/** A problem with an object, with a stable code and the path to the field. */
export interface ValidationIssue {
  readonly code: string;
  readonly severity: 'error' | 'warning';
  /** Field path inside the object, e.g. `spec.http[0].route[1].weight`. */
  readonly path: string;
  readonly message: string;
}

export function ruleKey(meta: Pick<RuleMeta, 'kind' | 'namespace' | 'name'>): string {
  return `${meta.kind}/${meta.namespace}/${meta.name}`;
}

export function isVirtualService(rule: Rule): rule is VirtualService {
  return rule.meta.kind === 'VirtualService';
}

export function isDestinationRule(rule: Rule): rule is DestinationRule {
  return rule.meta.kind === 'DestinationRule';
}
