// EndpointSlices, legacy Endpoints and Pods, and the join that turns them into model endpoints
// carrying the labels of the Pod behind each address.
import type { Endpoint, Service } from '../model/service.ts';
import { serviceHostname } from '../model/service.ts';
import type { Fields, ObjectMeta } from './object-fields.ts';
import type { KubeFields } from './known-fields.ts';
import { checkKubeFields, KUBE_FIELDS } from './known-fields.ts';
import { describeType, fieldsOf, isFields, isIpAddress, isPortNumber, stringField } from './object-fields.ts';
import type { EndpointGroup, EndpointSet, GroupEndpoint, GroupPort, ParsedObject, PodInfo, SourcedObject, TargetRef } from './parsed-object.ts';
import { objectKey, ObjectProblems, rejectedObject, requireName } from './parsed-object.ts';

export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
/** The service account Kubernetes gives a Pod that names none. */
export const DEFAULT_SERVICE_ACCOUNT = 'default';

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function isDns1123Subdomain(value: string): boolean {
  return value.length <= 253 && DNS1123_SUBDOMAIN.test(value);
}

/** The maps of a list field, each checked against its Kubernetes fields; a non-list or non-map entry is an error. */
function entriesOf(value: unknown, path: string, fields: KubeFields, problems: ObjectProblems): [number, Fields][] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    problems.error(path, `must be a list, got ${describeType(value)}: write each entry as a list item ("- ...")`);
    return [];
  }
  const out: [number, Fields][] = [];
  value.forEach((entry: unknown, index) => {
    if (!isFields(entry)) {
      problems.error(`${path}[${index}]`, `must be a map (${fields.what}), got ${describeType(entry)}`);
      return;
    }
    problems.issues.push(...checkKubeFields(entry, fields, `${path}[${index}]`));
    out.push([index, entry]);
  });
  return out;
}

function checkAddress(address: unknown, path: string, problems: ObjectProblems): address is string {
  if (typeof address === 'string' && isIpAddress(address)) return true;
  problems.error(path, `${describeType(address)} is not an IP address: write the endpoint's IPv4 or IPv6 address`);
  return false;
}

function readTargetRef(value: unknown, path: string, problems: ObjectProblems): TargetRef | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isFields(value)) {
    problems.error(path, `must be a map naming an object, got ${describeType(value)}`);
    return undefined;
  }
  problems.issues.push(...checkKubeFields(value, KUBE_FIELDS.objectReference, path));
  const name = stringField(value, 'name');
  if (name === undefined) return undefined;
  const kind = stringField(value, 'kind');
  const namespace = stringField(value, 'namespace');
  return { name, ...(kind !== undefined ? { kind } : {}), ...(namespace ? { namespace } : {}) };
}

function readGroupPorts(value: unknown, path: string, problems: ObjectProblems): GroupPort[] {
  const ports: GroupPort[] = [];
  for (const [index, portFields] of entriesOf(value, path, KUBE_FIELDS.endpointPort, problems)) {
    const port = portFields['port'];
    if (port !== undefined && port !== null && !isPortNumber(port)) {
      problems.error(`${path}[${index}].port`, `must be a port number 1..65535, got ${describeType(port)}: fix the endpoint port`);
      continue;
    }
    ports.push({ name: stringField(portFields, 'name') ?? '', ...(isPortNumber(port) ? { port } : {}) });
  }
  return ports;
}

export function parseEndpointSlice(input: SourcedObject, object: Fields, kind: string, meta: ObjectMeta): ParsedObject {
  const serviceName = meta.labels[SERVICE_NAME_LABEL];
  // Slices without the label belong to no Service (custom controllers); nothing can route to them.
  if (serviceName === undefined) return { type: 'ignored', source: input.source, reason: `EndpointSlice without ${SERVICE_NAME_LABEL} label` };
  // FQDN slices name DNS hosts, which EDS cannot serve as addresses.
  if (stringField(object, 'addressType') === 'FQDN') return { type: 'ignored', source: input.source, reason: 'EndpointSlice with addressType FQDN' };
  const problems = new ObjectProblems();
  requireName(meta, problems, 'EndpointSlice');
  const addressType = object['addressType'];
  if (addressType !== undefined && addressType !== 'IPv4' && addressType !== 'IPv6') {
    problems.error('addressType', `${describeType(addressType)} is not an address type: use IPv4, IPv6 or FQDN`);
  }
  const ports = readGroupPorts(object['ports'], 'ports', problems);
  const endpoints: GroupEndpoint[] = [];
  for (const [index, endpoint] of entriesOf(object['endpoints'], 'endpoints', KUBE_FIELDS.sliceEndpoint, problems)) {
    const addresses = endpoint['addresses'];
    if (!Array.isArray(addresses) || addresses.length === 0) {
      problems.error(`endpoints[${index}].addresses`, `must be a list of IP addresses, got ${describeType(addresses)}: list the endpoint's addresses`);
      continue;
    }
    if (!addresses.every((address: unknown, i) => checkAddress(address, `endpoints[${index}].addresses[${i}]`, problems))) continue;
    const zone = stringField(endpoint, 'zone') ?? stringField(fieldsOf(endpoint['topology']), 'topology.kubernetes.io/zone');
    const targetRef = readTargetRef(endpoint['targetRef'], `endpoints[${index}].targetRef`, problems);
    const conditions = endpoint['conditions'];
    if (conditions !== undefined && conditions !== null && !isFields(conditions)) problems.error(`endpoints[${index}].conditions`, `must be a map, got ${describeType(conditions)}`);
    const ready = fieldsOf(conditions)['ready'];
    if (isFields(conditions)) problems.issues.push(...checkKubeFields(conditions, KUBE_FIELDS.endpointConditions, `endpoints[${index}].conditions`));
    if (ready !== undefined && ready !== null && typeof ready !== 'boolean') problems.error(`endpoints[${index}].conditions.ready`, `must be true or false, got ${describeType(ready)}`);
    endpoints.push({
      addresses,
      ready: ready !== false,
      ...(zone !== undefined ? { zone } : {}),
      ...(targetRef ? { targetRef } : {}),
    });
  }
  if (problems.hasErrors() || meta.name === undefined) return rejectedObject(input, kind, meta, problems.issues);
  const group: EndpointGroup = { namespace: meta.namespace, serviceName, sets: [{ ports, endpoints }] };
  return { type: 'endpointSlice', key: objectKey(kind, meta.namespace, meta.name), source: input.source, group };
}

export function parseLegacyEndpoints(input: SourcedObject, object: Fields, kind: string, meta: ObjectMeta): ParsedObject {
  const problems = new ObjectProblems();
  requireName(meta, problems, 'Endpoints object');
  const sets: EndpointSet[] = [];
  for (const [subsetIndex, subset] of entriesOf(object['subsets'], 'subsets', KUBE_FIELDS.endpointSubset, problems)) {
    const ports = readGroupPorts(subset['ports'], `subsets[${subsetIndex}].ports`, problems);
    const endpoints: GroupEndpoint[] = [];
    for (const [field, ready] of [['addresses', true], ['notReadyAddresses', false]] as const) {
      for (const [index, address] of entriesOf(subset[field], `subsets[${subsetIndex}].${field}`, KUBE_FIELDS.endpointAddress, problems)) {
        const ip = address['ip'];
        if (ip === undefined || ip === '') {
          problems.error(`subsets[${subsetIndex}].${field}[${index}].ip`, 'is missing: give each address its ip');
          continue;
        }
        if (!checkAddress(ip, `subsets[${subsetIndex}].${field}[${index}].ip`, problems)) continue;
        const targetRef = readTargetRef(address['targetRef'], `subsets[${subsetIndex}].${field}[${index}].targetRef`, problems);
        endpoints.push({ addresses: [ip], ready, ...(targetRef ? { targetRef } : {}) });
      }
    }
    sets.push({ ports, endpoints });
  }
  if (problems.hasErrors() || meta.name === undefined) return rejectedObject(input, kind, meta, problems.issues);
  const group: EndpointGroup = { namespace: meta.namespace, serviceName: meta.name, sets };
  return { type: 'endpoints', key: objectKey(kind, meta.namespace, meta.name), source: input.source, group };
}

export function parsePod(input: SourcedObject, object: Fields, kind: string, meta: ObjectMeta): ParsedObject {
  if (meta.name === undefined) {
    const problems = new ObjectProblems();
    requireName(meta, problems, 'Pod');
    return rejectedObject(input, kind, meta, problems.issues);
  }
  const problems = new ObjectProblems();
  const statusValue = object['status'];
  if (statusValue !== undefined && statusValue !== null && !isFields(statusValue)) problems.error('status', `must be a map, got ${describeType(statusValue)}`);
  const status = fieldsOf(statusValue);
  problems.issues.push(...checkKubeFields(status, KUBE_FIELDS.podStatus, 'status'));
  const ips = new Set<string>();
  const podIp = status['podIP'];
  if (podIp !== undefined && podIp !== null && podIp !== '' && checkAddress(podIp, 'status.podIP', problems)) ips.add(podIp);
  for (const [index, entry] of entriesOf(status['podIPs'], 'status.podIPs', KUBE_FIELDS.podIp, problems)) {
    if (checkAddress(entry['ip'], `status.podIPs[${index}].ip`, problems)) ips.add(entry['ip']);
  }
  const phase = status['phase'];
  if (phase !== undefined && phase !== null && (typeof phase !== 'string' || !['Pending', 'Running', 'Succeeded', 'Failed', 'Unknown'].includes(phase))) {
    problems.error('status.phase', `${describeType(phase)} is not a Pod phase: Pending, Running, Succeeded, Failed or Unknown`);
  }
  const spec = fieldsOf(object['spec']);
  const serviceAccount = spec['serviceAccountName'] ?? spec['serviceAccount'];
  if (serviceAccount !== undefined && serviceAccount !== null && (typeof serviceAccount !== 'string' || (serviceAccount !== '' && !isDns1123Subdomain(serviceAccount)))) {
    problems.error('spec.serviceAccountName', `${describeType(serviceAccount)} is not a service account name: use the name of a ServiceAccount in the pod's namespace`);
  }
  if (problems.hasErrors()) return rejectedObject(input, kind, meta, problems.issues);
  const pod: PodInfo = {
    namespace: meta.namespace,
    name: meta.name,
    labels: meta.labels,
    ips: [...ips],
    serviceAccount: typeof serviceAccount === 'string' && serviceAccount !== '' ? serviceAccount : DEFAULT_SERVICE_ACCOUNT,
    running: phase !== 'Succeeded' && phase !== 'Failed',
  };
  return { type: 'pod', key: objectKey(kind, meta.namespace, meta.name), source: input.source, pod };
}

export interface PodIndex {
  byName: Map<string, PodInfo>;
  /** `namespace/ip` to the one running pod with that IP; undefined when several share it (hostNetwork). */
  byIp: Map<string, PodInfo | undefined>;
}

export function indexPods(pods: readonly PodInfo[]): PodIndex {
  const byName = new Map<string, PodInfo>();
  const byIp = new Map<string, PodInfo | undefined>();
  for (const pod of pods) {
    byName.set(`${pod.namespace}/${pod.name}`, pod);
    if (!pod.running) continue;
    for (const ip of pod.ips) {
      const key = `${pod.namespace}/${ip}`;
      byIp.set(key, byIp.has(key) ? undefined : pod);
    }
  }
  return { byName, byIp };
}

interface WorkloadOf {
  readonly labels: Readonly<Record<string, string>>;
  readonly workload?: string;
  readonly serviceAccount?: string;
}

function workloadOf(endpoint: GroupEndpoint, address: string, namespace: string, pods: PodIndex): WorkloadOf {
  const ref = endpoint.targetRef;
  if (ref && (ref.kind === undefined || ref.kind === 'Pod')) {
    const podNamespace = ref.namespace ?? namespace;
    const workload = `${podNamespace}/${ref.name}`;
    const pod = pods.byName.get(workload);
    return { labels: pod?.labels ?? {}, workload, ...(pod ? { serviceAccount: pod.serviceAccount } : {}) };
  }
  if (ref) return { labels: {} };
  const pod = pods.byIp.get(`${namespace}/${address}`);
  return pod ? { labels: pod.labels, workload: `${pod.namespace}/${pod.name}`, serviceAccount: pod.serviceAccount } : { labels: {} };
}

export function endpointsOfGroup(group: EndpointGroup, services: ReadonlyMap<string, Service>, pods: PodIndex): Endpoint[] {
  const hostname = serviceHostname(group.serviceName, group.namespace);
  const service = services.get(hostname);
  const out: Endpoint[] = [];
  for (const part of group.sets) {
    for (const slicePort of part.ports) {
      // A slice port without a number stands for the Service port of the same name.
      const servicePort = service?.ports.find((candidate) => candidate.name === slicePort.name);
      const port = slicePort.port ?? (typeof servicePort?.targetPort === 'number' ? servicePort.targetPort : undefined);
      if (port === undefined) continue;
      for (const endpoint of part.endpoints) {
        for (const address of endpoint.addresses) {
          const { labels, workload, serviceAccount } = workloadOf(endpoint, address, group.namespace, pods);
          out.push({
            serviceHostname: hostname,
            servicePortName: slicePort.name,
            address,
            port,
            labels,
            ...(endpoint.zone !== undefined ? { locality: { zone: endpoint.zone } } : {}),
            ready: endpoint.ready,
            ...(workload !== undefined ? { workload } : {}),
            ...(serviceAccount !== undefined ? { serviceAccount } : {}),
          });
        }
      }
    }
  }
  return out;
}

export function endpointIdentity(endpoint: Endpoint): string {
  return `${endpoint.serviceHostname}|${endpoint.servicePortName}|${endpoint.address}|${endpoint.port}`;
}

/** Joins converted objects into a snapshot: endpoints get Pod labels and Service ports; output is sorted. */
