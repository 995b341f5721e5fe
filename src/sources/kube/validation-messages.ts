// Istio's `status.validationMessages` for what meshpilot found wrong with an object: each problem
// as the analysis message Istio would give it (IST0101 for a missing subset, IST0106 for a schema
// error, ...), or meshpilot's own code where Istio has none. Pure: from the PushContext and an
// object's live status to the status the leader should write, if any.
import type { ErrorCode } from '../../errors.ts';
import type { PushContext } from '../../model/push-context.ts';
import type { ValidationIssue } from '../../model/rules.ts';
import type { SourceRef } from '../../model/service.ts';
import type { StatusTarget } from './kube-source.ts';

export type MessageLevel = 'ERROR' | 'WARNING' | 'INFO';

/** Istio's AnalysisMessageBase, as its status controller writes it. */
export interface ValidationMessage {
  readonly documentationUrl?: string;
  readonly level: MessageLevel;
  readonly type: { readonly code: string; readonly name?: string };
}

interface MessageType {
  readonly code: string;
  readonly name: string;
}

/** Istio's analysis messages meshpilot's problems correspond to (pkg/config/analysis/msg/messages.yaml). */
export const ISTIO_MESSAGES = {
  referencedResourceNotFound: { code: 'IST0101', name: 'ReferencedResourceNotFound' },
  schemaValidationError: { code: 'IST0106', name: 'SchemaValidationError' },
  conflictingMeshGatewayVirtualServiceHosts: { code: 'IST0109', name: 'ConflictingMeshGatewayVirtualServiceHosts' },
  conflictingSidecarWorkloadSelectors: { code: 'IST0110', name: 'ConflictingSidecarWorkloadSelectors' },
  multipleSidecarsWithoutWorkloadSelectors: { code: 'IST0111', name: 'MultipleSidecarsWithoutWorkloadSelectors' },
  mtlsPolicyConflict: { code: 'IST0113', name: 'MTLSPolicyConflict' },
  virtualServiceHostNotFoundInGateway: { code: 'IST0132', name: 'VirtualServiceHostNotFoundInGateway' },
  schemaWarning: { code: 'IST0133', name: 'SchemaWarning' },
  conflictingGateways: { code: 'IST0145', name: 'ConflictingGateways' },
  ineffectivePolicy: { code: 'IST0167', name: 'IneffectivePolicy' },
  destinationRuleSubsetNotSelectPods: { code: 'IST0173', name: 'DestinationRuleSubsetNotSelectPods' },
} as const satisfies Record<string, MessageType>;

/** Where Istio documents its messages; meshpilot's own codes are in its README's error table. */
const ISTIO_ANALYSIS_DOCS = 'https://istio.io/latest/docs/reference/config/analysis';

/** More messages than this on one object are cut (the log and /debug/configz keep every one). */
export const MAX_VALIDATION_MESSAGES = 32;

/** The Istio message for a meshpilot problem on an object of `kind`; undefined where Istio has none (meshpilot's code is written). */
export function istioMessageType(kind: string | undefined, issue: Pick<ValidationIssue, 'code' | 'path'>): MessageType | undefined {
  const byCode: Partial<Record<ErrorCode, MessageType>> = {
    MP_OBJECT_INVALID: ISTIO_MESSAGES.schemaValidationError,
    MP_RULE_INVALID: ISTIO_MESSAGES.schemaValidationError,
    MP_RULE_WARNING: ISTIO_MESSAGES.schemaWarning,
    MP_REF_UNKNOWN: ISTIO_MESSAGES.referencedResourceNotFound,
    MP_MTLS_CONFLICT: ISTIO_MESSAGES.mtlsPolicyConflict,
    MP_SIDECAR_CONFLICT: issue.path === 'spec.workloadSelector' ? ISTIO_MESSAGES.multipleSidecarsWithoutWorkloadSelectors : ISTIO_MESSAGES.conflictingSidecarWorkloadSelectors,
    MP_RULE_INEFFECTIVE:
      kind === 'DestinationRule' && issue.path.includes('subsets')
        ? ISTIO_MESSAGES.destinationRuleSubsetNotSelectPods
        : kind === 'VirtualService' && issue.path.startsWith('spec.gateways')
          ? ISTIO_MESSAGES.virtualServiceHostNotFoundInGateway
          : ISTIO_MESSAGES.ineffectivePolicy,
  };
  if (issue.code === 'MP_RULE_CONFLICT') {
    if (kind === 'Gateway') return ISTIO_MESSAGES.conflictingGateways;
    return kind === 'VirtualService' && issue.path.startsWith('spec.hosts') ? ISTIO_MESSAGES.conflictingMeshGatewayVirtualServiceHosts : undefined;
  }
  return byCode[issue.code];
}

export function validationMessage(kind: string | undefined, issue: ValidationIssue): ValidationMessage {
  const istio = istioMessageType(kind, issue);
  const level: MessageLevel = issue.severity === 'error' ? 'ERROR' : 'WARNING';
  if (!istio) return { level, type: { code: issue.code } };
  return { documentationUrl: `${ISTIO_ANALYSIS_DOCS}/${istio.code.toLowerCase()}/`, level, type: { code: istio.code, name: istio.name } };
}

/** What one push says about one Kubernetes object. */
export interface ObjectFindings {
  /** The generation the findings are about (undefined: the object is served and has no generation). */
  readonly generation: number | undefined;
  readonly messages: readonly ValidationMessage[];
}

/** Every Kubernetes object the push knows of, by API path, with its messages (errors first) from its newest generation. */
export function findingsByLocation(push: PushContext): Map<string, ObjectFindings> {
  const found = new Map<string, { generation: number | undefined; issues: { kind: string | undefined; issue: ValidationIssue }[] }>();
  const add = (source: SourceRef, kind: string | undefined, issues: readonly ValidationIssue[]): void => {
    if (source.origin !== 'kube') return;
    const entry = found.get(source.location);
    const generation = source.generation;
    // A rejected edit and the last good version it keeps share a path: the newer one speaks.
    if (!entry || (generation ?? 0) > (entry.generation ?? 0)) {
      found.set(source.location, { generation, issues: issues.map((issue) => ({ kind, issue })) });
    } else if (generation === entry.generation) {
      entry.issues.push(...issues.map((issue) => ({ kind, issue })));
    }
  };
  for (const { rule, issues } of push.ruleStatus.values()) add(rule.meta.source, rule.meta.kind, [...(rule.meta.warnings ?? []), ...issues]);
  for (const rejected of push.rejected) add(rejected.source, rejected.kind, rejected.issues);
  for (const warned of push.objectWarnings) add(warned.source, warned.kind, warned.issues);
  for (const service of push.services) add(service.source, undefined, []);
  const out = new Map<string, ObjectFindings>();
  for (const [location, { generation, issues }] of found) {
    const ordered = [...issues.filter((i) => i.issue.severity === 'error'), ...issues.filter((i) => i.issue.severity !== 'error')];
    out.set(location, { generation, messages: ordered.slice(0, MAX_VALIDATION_MESSAGES).map(({ kind, issue }) => validationMessage(kind, issue)) });
  }
  return out;
}

/** JSON with object keys sorted: the API server hands back maps in its own key order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) =>
    typeof inner === 'object' && inner !== null && !Array.isArray(inner) ? Object.fromEntries(Object.entries(inner).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : inner,
  );
}

function liveMessages(status: StatusTarget['status']): unknown[] {
  const messages = status?.['validationMessages'];
  return Array.isArray(messages) ? messages : [];
}

/** Istio's schema takes observedGeneration as an integer or a string. */
function liveObservedGeneration(status: StatusTarget['status']): number | undefined {
  const value = status?.['observedGeneration'];
  const generation = typeof value === 'string' ? Number(value) : value;
  return typeof generation === 'number' && Number.isFinite(generation) ? generation : undefined;
}

/**
 * The status to write for `target`, or undefined when there is nothing to write: the push is
 * about another generation than the object's (a newer push will come), the object has no
 * messages and shows none, or it shows exactly these messages for its generation already.
 * Other status fields (other controllers' conditions) are kept.
 */
export function statusToWrite(target: StatusTarget, findings: ObjectFindings | undefined): Record<string, unknown> | undefined {
  if (findings?.generation !== undefined && target.generation !== undefined && findings.generation !== target.generation) return undefined;
  const messages = findings?.messages ?? [];
  const live = liveMessages(target.status);
  if (messages.length === 0 && live.length === 0) return undefined;
  const observed = target.generation ?? liveObservedGeneration(target.status);
  if (canonicalJson(messages) === canonicalJson(live) && liveObservedGeneration(target.status) === observed) return undefined;
  const { validationMessages: _previous, ...others } = target.status ?? {};
  return { ...others, ...(observed !== undefined ? { observedGeneration: observed } : {}), ...(messages.length > 0 ? { validationMessages: messages } : {}) };
}
