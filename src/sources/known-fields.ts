// Unknown field names: the message that names them with a spelling hint, and the Kubernetes
// field lists of the parts of objects meshpilot reads.
import type { ErrorCode } from '../errors.ts';
import type { ValidationIssue } from '../model/rules.ts';
import type { Fields } from './object-fields.ts';

export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

/** The closest of `candidates` to `word` (case-insensitively, at most 2 edits away). */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: [string, number] | undefined;
  for (const candidate of candidates) {
    const distance = editDistance(candidate.toLowerCase(), word.toLowerCase());
    if (distance <= 2 && (!best || distance < best[1])) best = [candidate, distance];
  }
  return best?.[0];
}

export function unknownFieldMessage(key: string, known: readonly string[], what: string): string {
  const suggestion = closest(key, known);
  const fix = suggestion ? `did you mean "${suggestion}"?` : `remove it (fields of ${what}: ${known.join(', ')})`;
  return `unknown field "${JSON.stringify(key).slice(1, -1).slice(0, 40)}" in ${what}: ${fix}`;
}

/**
 * Kubernetes fields of the parts meshpilot reads. `strict` parts have fixed fields, so any other
 * is an error; in parts Kubernetes still extends (metadata, Service spec, Pod status) only a
 * misspelling of a known field is, so a newer cluster's fields pass.
 */
export interface KubeFields {
  readonly what: string;
  readonly known: readonly string[];
  readonly strict: boolean;
}

export const KUBE_FIELDS = {
  metadata: {
    what: 'metadata',
    strict: false,
    known: [
      'name', 'generateName', 'namespace', 'selfLink', 'uid', 'resourceVersion', 'generation', 'creationTimestamp', 'deletionTimestamp',
      'deletionGracePeriodSeconds', 'labels', 'annotations', 'ownerReferences', 'finalizers', 'managedFields', 'clusterName', 'initializers',
    ],
  },
  istioObject: { what: 'an Istio object', strict: true, known: ['apiVersion', 'kind', 'metadata', 'spec', 'status'] },
  service: { what: 'a Service', strict: false, known: ['apiVersion', 'kind', 'metadata', 'spec', 'status'] },
  secret: { what: 'a Secret', strict: false, known: ['apiVersion', 'kind', 'metadata', 'type', 'data', 'stringData', 'immutable'] },
  serviceSpec: {
    what: 'a Service spec',
    strict: false,
    known: [
      'ports', 'selector', 'clusterIP', 'clusterIPs', 'type', 'externalIPs', 'sessionAffinity', 'loadBalancerIP', 'loadBalancerSourceRanges', 'externalName',
      'externalTrafficPolicy', 'healthCheckNodePort', 'publishNotReadyAddresses', 'sessionAffinityConfig', 'topologyKeys', 'ipFamily', 'ipFamilies',
      'ipFamilyPolicy', 'allocateLoadBalancerNodePorts', 'loadBalancerClass', 'internalTrafficPolicy', 'trafficDistribution',
    ],
  },
  servicePort: { what: 'a Service port', strict: true, known: ['name', 'protocol', 'appProtocol', 'port', 'targetPort', 'nodePort'] },
  endpointSlice: { what: 'an EndpointSlice', strict: false, known: ['apiVersion', 'kind', 'metadata', 'addressType', 'endpoints', 'ports'] },
  sliceEndpoint: {
    what: 'an endpoint',
    strict: true,
    known: ['addresses', 'conditions', 'hostname', 'targetRef', 'deprecatedTopology', 'topology', 'nodeName', 'zone', 'hints'],
  },
  endpointConditions: { what: 'endpoint conditions', strict: true, known: ['ready', 'serving', 'terminating'] },
  endpointPort: { what: 'an endpoint port', strict: true, known: ['name', 'protocol', 'port', 'appProtocol'] },
  objectReference: { what: 'a targetRef', strict: true, known: ['apiVersion', 'fieldPath', 'kind', 'name', 'namespace', 'resourceVersion', 'uid'] },
  endpoints: { what: 'an Endpoints object', strict: false, known: ['apiVersion', 'kind', 'metadata', 'subsets'] },
  endpointSubset: { what: 'an Endpoints subset', strict: true, known: ['addresses', 'notReadyAddresses', 'ports'] },
  endpointAddress: { what: 'an endpoint address', strict: true, known: ['ip', 'hostname', 'nodeName', 'targetRef'] },
  pod: { what: 'a Pod', strict: false, known: ['apiVersion', 'kind', 'metadata', 'spec', 'status'] },
  podStatus: {
    what: 'a Pod status',
    strict: false,
    known: [
      'phase', 'conditions', 'message', 'reason', 'nominatedNodeName', 'hostIP', 'hostIPs', 'podIP', 'podIPs', 'startTime', 'initContainerStatuses',
      'containerStatuses', 'qosClass', 'ephemeralContainerStatuses', 'resize', 'resourceClaimStatuses', 'observedGeneration', 'extendedResourceClaimStatus',
    ],
  },
  podIp: { what: 'a Pod IP', strict: true, known: ['ip'] },
} as const satisfies Record<string, KubeFields>;

/** Errors for the unknown fields of one part of a Kubernetes object (see KubeFields). */
export function checkKubeFields(fields: Fields, spec: KubeFields, path: string, code: ErrorCode = 'MP_OBJECT_INVALID'): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  for (const key of Object.keys(fields)) {
    if (spec.known.includes(key)) continue;
    if (!spec.strict && closest(key, spec.known) === undefined) continue;
    issues.push({ code, severity: 'error', path: path ? `${path}.${key}` : key, message: unknownFieldMessage(key, spec.known, spec.what) });
  }
  return issues;
}
