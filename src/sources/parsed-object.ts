// The shapes every object takes between parsing and joining, shared by the Kubernetes converters.
import type { ErrorCode } from '../errors.ts';
import type { TlsCredential } from '../model/credentials.ts';
import type { Rule, ValidationIssue } from '../model/rules.ts';
import type { Service, SourceRef } from '../model/service.ts';
import type { ObjectWarnings, RejectedObject, SourceSnapshot } from '../model/store.ts';
import type { ObjectMeta } from './object-fields.ts';
import type { GatewayRouteInfo, ReferenceGrantInfo } from './gateway-api-objects.ts';
import type { GatewayClassInfo, GatewayInfo } from './gateway-api-gateways.ts';
import type { RouteRuleInfo } from './route-rule-objects.ts';
import type { ServiceEntryInfo, WorkloadInfo } from './service-entry-objects.ts';

export interface SourcedObject {
  readonly object: unknown;
  readonly source: SourceRef;
  /** Where in the source the object sits (`document 2`, `document 1, item 4`), to name objects without a name. */
  readonly position?: string;
}

export interface TargetRef {
  readonly kind?: string;
  readonly name: string;
  readonly namespace?: string;
}

export interface GroupEndpoint {
  readonly addresses: readonly string[];
  readonly ready: boolean;
  readonly zone?: string;
  readonly targetRef?: TargetRef;
}

export interface GroupPort {
  readonly name: string;
  /** Absent when a slice means "every port"; resolved from the Service port of the same name. */
  readonly port?: number;
}

/** Addresses that serve the same ports: a slice, or one subset of a legacy Endpoints object. */
export interface EndpointSet {
  readonly ports: readonly GroupPort[];
  readonly endpoints: readonly GroupEndpoint[];
}

/** An EndpointSlice or a legacy Endpoints object, reduced to what both say. */
export interface EndpointGroup {
  readonly namespace: string;
  readonly serviceName: string;
  readonly sets: readonly EndpointSet[];
}

export interface PodInfo {
  readonly namespace: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly ips: readonly string[];
  /** `spec.serviceAccountName`, `default` when unset (as Kubernetes sets it). */
  readonly serviceAccount: string;
  /** Finished pods keep their IP in status although it may already belong to another pod. */
  readonly running: boolean;
}

/** One object after conversion, before objects are joined (endpoints need Pods and Services). */
export type ParsedObject =
  | { readonly type: 'service'; readonly key: string; readonly source: SourceRef; readonly service: Service }
  | { readonly type: 'endpointSlice' | 'endpoints'; readonly key: string; readonly source: SourceRef; readonly group: EndpointGroup }
  | { readonly type: 'pod'; readonly key: string; readonly source: SourceRef; readonly pod: PodInfo }
  | { readonly type: 'rule'; readonly key: string; readonly source: SourceRef; readonly rule: Rule }
  | { readonly type: 'serviceEntry'; readonly key: string; readonly source: SourceRef; readonly entry: ServiceEntryInfo; readonly warnings?: readonly ValidationIssue[] }
  | { readonly type: 'workloadEntry'; readonly key: string; readonly source: SourceRef; readonly workload: WorkloadInfo; readonly warnings?: readonly ValidationIssue[] }
  | { readonly type: 'routeRule'; readonly key: string; readonly source: SourceRef; readonly routeRule: RouteRuleInfo }
  | { readonly type: 'meshRoute'; readonly key: string; readonly source: SourceRef; readonly route: GatewayRouteInfo }
  | { readonly type: 'referenceGrant'; readonly key: string; readonly source: SourceRef; readonly grant: ReferenceGrantInfo }
  | { readonly type: 'gatewayClass'; readonly key: string; readonly source: SourceRef; readonly gatewayClass: GatewayClassInfo }
  | { readonly type: 'xmesh'; readonly key: string; readonly source: SourceRef; readonly mesh: GatewayClassInfo }
  | { readonly type: 'gatewayApiGateway'; readonly key: string; readonly source: SourceRef; readonly gateway: GatewayInfo }
  | { readonly type: 'namespace'; readonly key: string; readonly source: SourceRef; readonly namespace: { readonly name: string; readonly labels: Readonly<Record<string, string>> } }
  | { readonly type: 'credential'; readonly key: string; readonly source: SourceRef; readonly credential: TlsCredential; readonly warnings?: readonly ValidationIssue[] }
  | { readonly type: 'rejected'; readonly key?: string; readonly source: SourceRef; readonly rejected: RejectedObject }
  | { readonly type: 'ignored'; readonly source: SourceRef; readonly reason: string };

export type AcceptedObject = Exclude<ParsedObject, { type: 'rejected' | 'ignored' }>;

export interface ConvertedObjects extends SourceSnapshot {
  readonly warnings: readonly ObjectWarnings[];
  /** How many objects were skipped, by reason (mostly kinds meshpilot does not read). */
  readonly ignored: Readonly<Record<string, number>>;
}

export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

export function objectKey(kind: string, namespace: string, name: string): string {
  return `${kind}/${namespace}/${name}`;
}

export function isAccepted(parsed: ParsedObject): parsed is AcceptedObject {
  return parsed.type !== 'rejected' && parsed.type !== 'ignored';
}

export class ObjectProblems {
  readonly issues: ValidationIssue[] = [];
  error(path: string, message: string, code: ErrorCode = 'MP_OBJECT_INVALID'): void {
    this.issues.push({ code, severity: 'error', path, message });
  }

  hasErrors(): boolean {
    return this.issues.some((issue) => issue.severity === 'error');
  }

  warnings(): ValidationIssue[] {
    return this.issues.filter((issue) => issue.severity === 'warning');
  }
}

export function rejectedObject(input: SourcedObject, kind: string | undefined, meta: ObjectMeta | undefined, issues: readonly ValidationIssue[]): ParsedObject {
  const position = input.position ?? 'object';
  const named = meta?.name !== undefined;
  const label = kind && meta?.name !== undefined ? `${kind} ${meta.namespace}/${meta.name}` : kind ? `${kind} in ${position}` : position;
  const rejected: RejectedObject = {
    source: input.source,
    object: label,
    ...(kind ? { kind } : {}),
    ...(meta && named ? { namespace: meta.namespace, name: meta.name } : {}),
    issues,
    keptLastGood: false,
  };
  return {
    type: 'rejected',
    source: input.source,
    rejected,
    ...(kind && meta?.name !== undefined ? { key: objectKey(kind, meta.namespace, meta.name) } : {}),
  };
}

export function requireName(meta: ObjectMeta, problems: ObjectProblems, what: string): void {
  if (meta.name === undefined) problems.error('metadata.name', `is missing: give the ${what} a name (metadata.name)`);
}
