// What every object must get right before its kind is read: a kind that exists in its API
// group, metadata names Kubernetes would accept, string labels, and no misspelt top-level field.
import type { ValidationIssue } from '../model/rules.ts';
import type { KubeFields } from './known-fields.ts';
import { checkKubeFields, closest, KUBE_FIELDS } from './known-fields.ts';
import { describeType, isDns1123Label, isFields } from './object-fields.ts';

/** Real kinds of the API groups meshpilot reads from, that it does not read itself. */
const OTHER_KINDS: Readonly<Record<string, readonly string[]>> = {
  '': [
    'Binding', 'ComponentStatus', 'ConfigMap', 'Event', 'LimitRange', 'Namespace', 'Node', 'PersistentVolume', 'PersistentVolumeClaim',
    'PodTemplate', 'ReplicationController', 'ResourceQuota', 'Secret', 'ServiceAccount', 'List',
  ],
  'discovery.k8s.io': [],
  'networking.istio.io': ['EnvoyFilter', 'WorkloadGroup', 'ProxyConfig'],
  'security.istio.io': ['RequestAuthentication'],
  'telemetry.istio.io': ['Telemetry'],
  'extensions.istio.io': ['WasmPlugin'],
  'gateway.networking.k8s.io': ['UDPRoute', 'BackendTLSPolicy', 'ListenerSet', 'BackendLBPolicy'],
  // Istio 0.x routing next to Mixer's configuration kinds (templates and adapters) of Istio 1.0 to 1.4.
  'config.istio.io': [
    'DestinationPolicy', 'EgressRule', 'IngressRule', 'attributemanifest', 'rule', 'handler', 'instance', 'template', 'adapter', 'HTTPAPISpec',
    'HTTPAPISpecBinding', 'QuotaSpec', 'QuotaSpecBinding', 'apikey', 'authorization', 'bypass', 'checknothing', 'circonus', 'cloudwatch', 'denier',
    'dogstatsd', 'edge', 'fluentd', 'kubernetesenv', 'kubernetes', 'listchecker', 'listentry', 'logentry', 'memquota', 'metric', 'noop', 'opa',
    'prometheus', 'quota', 'rbac', 'redisquota', 'reportnothing', 'servicecontrol', 'servicecontrolreport', 'signalfx', 'solarwinds', 'stackdriver',
    'statsd', 'stdio', 'tracespan', 'zipkin',
  ],
};

/** Istio kinds a mesh's YAML carries that meshpilot does not implement: each one is reported. */
const ISTIO_GROUPS = new Set(['networking.istio.io', 'security.istio.io', 'telemetry.istio.io', 'extensions.istio.io', 'config.istio.io']);

/**
 * A kind meshpilot does not read: silent for the other kinds of Kubernetes' groups, MP_UNSUPPORTED
 * for a real Istio kind, an error with the closest kind for a misspelling in a group meshpilot reads.
 */
export function judgeUnreadKind(group: string, kind: string, readKinds: readonly string[]): ValidationIssue | undefined {
  const others = OTHER_KINDS[group];
  if (others === undefined) return undefined;
  if (others.includes(kind)) {
    if (!ISTIO_GROUPS.has(group)) return undefined;
    return { code: 'MP_UNSUPPORTED', severity: 'warning', path: 'kind', message: `${group} ${kind} is not implemented by meshpilot: it is not applied` };
  }
  const suggestion = closest(kind, [...readKinds, ...others]);
  const fix = suggestion ? `did you mean "${suggestion}"?` : `use one of ${[...readKinds, ...others].join(', ')}`;
  return { code: 'MP_OBJECT_INVALID', severity: 'error', path: 'kind', message: `${quoted(kind)} is not a kind of ${group || 'the core API group (v1)'}: ${fix}` };
}

const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function nameProblem(name: string, kind: string): string | undefined {
  if (kind === 'Service') {
    return name.length <= 63 && DNS1035_LABEL.test(name) ? undefined : 'a Service name is a DNS-1035 label: at most 63 lowercase letters, digits and "-", starting with a letter';
  }
  return name.length <= 253 && DNS1123_SUBDOMAIN.test(name) ? undefined : 'a name is a DNS-1123 subdomain: lowercase letters, digits, "-" and ".", starting and ending with a letter or digit';
}

function quoted(value: string): string {
  return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
}

function checkStringMap(value: unknown, path: string, issues: ValidationIssue[]): void {
  if (value === undefined || value === null) return;
  if (!isFields(value)) {
    issues.push({ code: 'MP_OBJECT_INVALID', severity: 'error', path, message: `must be a map of strings, got ${describeType(value)}` });
    return;
  }
  for (const [key, entry] of Object.entries(value)) {
    if (typeof entry !== 'string') issues.push({ code: 'MP_OBJECT_INVALID', severity: 'error', path: `${path}.${key}`, message: `must be a string, got ${describeType(entry)}: quote it` });
  }
}

const TOP_LEVEL: Readonly<Record<string, KubeFields>> = {
  Service: KUBE_FIELDS.service,
  EndpointSlice: KUBE_FIELDS.endpointSlice,
  Endpoints: KUBE_FIELDS.endpoints,
  Pod: KUBE_FIELDS.pod,
};

/** Problems of an object's envelope: top-level fields, metadata, name, namespace, labels. */
export function checkEnvelope(object: Readonly<Record<string, unknown>>, kind: string): ValidationIssue[] {
  const issues: ValidationIssue[] = [...checkKubeFields(object, TOP_LEVEL[kind] ?? KUBE_FIELDS.istioObject, '')];
  const metadata = object['metadata'];
  if (metadata === undefined || metadata === null) return issues;
  if (!isFields(metadata)) {
    issues.push({ code: 'MP_OBJECT_INVALID', severity: 'error', path: 'metadata', message: `must be a map with name and namespace, got ${describeType(metadata)}` });
    return issues;
  }
  issues.push(...checkKubeFields(metadata, KUBE_FIELDS.metadata, 'metadata'));
  const { name, namespace } = metadata;
  if (name !== undefined && name !== null && typeof name !== 'string') {
    issues.push({ code: 'MP_OBJECT_INVALID', severity: 'error', path: 'metadata.name', message: `must be a string, got ${describeType(name)}: quote it` });
  } else if (typeof name === 'string' && name !== '') {
    const problem = nameProblem(name, kind);
    if (problem) issues.push({ code: 'MP_OBJECT_INVALID', severity: 'error', path: 'metadata.name', message: `${quoted(name)} is not a valid name: ${problem}` });
  }
  if (namespace !== undefined && namespace !== null && typeof namespace !== 'string') {
    issues.push({ code: 'MP_OBJECT_INVALID', severity: 'error', path: 'metadata.namespace', message: `must be a string, got ${describeType(namespace)}: quote it` });
  } else if (typeof namespace === 'string' && namespace !== '' && !isDns1123Label(namespace)) {
    issues.push({
      code: 'MP_OBJECT_INVALID',
      severity: 'error',
      path: 'metadata.namespace',
      message: `${quoted(namespace)} is not a valid namespace: a namespace is a DNS-1123 label (at most 63 lowercase letters, digits and "-")`,
    });
  }
  checkStringMap(metadata['labels'], 'metadata.labels', issues);
  checkStringMap(metadata['annotations'], 'metadata.annotations', issues);
  const created = metadata['creationTimestamp'];
  if (created !== undefined && created !== null && !(created instanceof Date) && (typeof created !== 'string' || Number.isNaN(Date.parse(created)))) {
    issues.push({ code: 'MP_OBJECT_INVALID', severity: 'error', path: 'metadata.creationTimestamp', message: `must be an RFC 3339 time such as 2024-01-31T12:00:00Z, got ${describeType(created)}` });
  }
  return issues;
}
