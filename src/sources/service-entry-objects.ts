// Istio ServiceEntry and WorkloadEntry objects: services outside Kubernetes (or VMs inside the
// mesh) become model Services with a resolution, and their workloads become endpoints. Pure.
import { canonicalIp } from '../model/address.ts';
import type { Endpoint, Locality, Protocol, Service, ServicePort, ServiceResolution, SourceRef } from '../model/service.ts';
import { labelsMatch, selectProtocol } from '../model/service.ts';
import type { PodIndex } from './kube-endpoints.ts';
import type { Fields, ObjectMeta } from './object-fields.ts';
import { describeType, fieldsOf, isCidr, isDns1123Label, isFields, isIpAddress, isPortNumber, isWildcardDomain, stringMap } from './object-fields.ts';
import { checkIstioFields } from './istio-schema.ts';
import { checkExportTo } from './istio-fields.ts';
import type { ParsedObject, SourcedObject } from './parsed-object.ts';
import { objectKey, ObjectProblems, rejectedObject, requireName } from './parsed-object.ts';

/** A workload that is not a Pod: a WorkloadEntry object, or one of a ServiceEntry's `endpoints`. */
export interface WorkloadInfo {
  readonly namespace: string;
  /** `namespace/name` of a WorkloadEntry object; absent for inline endpoints. */
  readonly workload?: string;
  readonly address: string;
  /** Port name of the ServiceEntry to the port this workload listens on. */
  readonly ports: Readonly<Record<string, number>>;
  readonly labels: Readonly<Record<string, string>>;
  readonly locality?: Locality;
  readonly weight?: number;
  /** The workload's service account (its identity for mTLS), in its namespace. */
  readonly serviceAccount?: string;
}

export interface ServiceEntryInfo {
  readonly namespace: string;
  readonly name: string;
  readonly source: SourceRef;
  readonly creationTimestamp?: string;
  readonly services: readonly Service[];
  readonly resolution: ServiceResolution;
  readonly endpoints: readonly WorkloadInfo[];
  /** Labels of the WorkloadEntries and Pods (same namespace) that back the hosts. */
  readonly workloadSelector?: Readonly<Record<string, string>>;
}

const RESOLUTIONS: readonly ServiceResolution[] = ['NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN'];
const LOCATIONS = ['MESH_EXTERNAL', 'MESH_INTERNAL'];
const PROTOCOLS: Readonly<Record<string, Protocol>> = {
  HTTP: 'HTTP', HTTPS: 'HTTPS', HTTP2: 'HTTP2', GRPC: 'GRPC', 'GRPC-WEB': 'GRPC-Web', TCP: 'TCP', TLS: 'TLS',
  UDP: 'UDP', MONGO: 'Mongo', MYSQL: 'MySQL', REDIS: 'Redis',
};

function isUnixAddress(value: string): boolean {
  return value.startsWith('unix://');
}

/** Istio's rule for a socket address: an abstract `@name`, or an absolute path to a file. */
function unixAddressProblem(address: string): string | undefined {
  const socket = address.slice('unix://'.length);
  if (socket.startsWith('@') && socket.length > 1) return undefined;
  if (!socket.startsWith('/') || socket.endsWith('/')) return 'is not a Unix domain socket Istio accepts: write unix:///absolute/path/to/file or unix://@abstract-name';
  return undefined;
}

/** Istio's selector rule: no empty keys and no wildcards (a selector is exact labels). */
function checkSelectorLabels(labels: Readonly<Record<string, unknown>>, path: string, problems: ObjectProblems): void {
  for (const [key, value] of Object.entries(labels)) {
    if (key === '' || key.includes('*') || (typeof value === 'string' && value.includes('*'))) {
      problems.error(`${path}.${key}`, `"${key}=${String(value)}" is not a label to select on: a selector takes exact labels, without "*" or an empty key`, 'MP_RULE_INVALID');
    }
  }
}

function checkStringLabels(value: unknown, path: string, problems: ObjectProblems): void {
  if (value === undefined || value === null) return;
  if (!isFields(value)) {
    problems.error(path, `must be a map of label to string value, got ${describeType(value)}`, 'MP_RULE_INVALID');
    return;
  }
  for (const [key, label] of Object.entries(value)) {
    if (typeof label !== 'string') problems.error(`${path}.${key}`, `must be a string, got ${describeType(label)}: quote it`, 'MP_RULE_INVALID');
  }
}

/** `region/zone/subzone`, as WorkloadEntry writes a locality. */
function readLocality(value: string): Locality {
  const [region, zone, subZone] = value.split('/');
  return { ...(region ? { region } : {}), ...(zone ? { zone } : {}), ...(subZone ? { subZone } : {}) };
}

/** The body shared by WorkloadEntry `spec` and ServiceEntry `endpoints[i]`. */
function readWorkload(
  value: unknown,
  path: string,
  namespace: string,
  problems: ObjectProblems,
  portNames: readonly string[] | undefined,
): WorkloadInfo | undefined {
  if (!isFields(value)) {
    problems.error(path, `must be a map, got ${describeType(value)}: write e.g. { address: 10.0.0.5 }`, 'MP_RULE_INVALID');
    return undefined;
  }
  const address = value['address'];
  const network = value['network'];
  if ((address === undefined || address === '') && typeof network === 'string' && network !== '') {
    // Valid in Istio, which reaches such a workload through its network's gateway.
    problems.issues.push({
      code: 'MP_RULE_WARNING',
      severity: 'warning',
      path: `${path}.address`,
      message: `is unset with network "${network}": Istio reaches this workload through that network's gateway, which meshpilot does not implement, so it is not served; give it an address to serve it`,
    });
    return undefined;
  }
  if (typeof address !== 'string' || address === '') {
    problems.error(`${path}.address`, 'is required: give the workload its IP address or DNS name', 'MP_RULE_INVALID');
    return undefined;
  }
  const ports: Record<string, number> = {};
  const portsValue = value['ports'];
  if (portsValue !== undefined && portsValue !== null && !isFields(portsValue)) {
    problems.error(`${path}.ports`, `must be a map of port name to number, got ${describeType(portsValue)}: write e.g. ports: { http: 8080 }`, 'MP_RULE_INVALID');
  }
  if (isUnixAddress(address)) {
    const problem = unixAddressProblem(address);
    if (problem) problems.error(`${path}.address`, `"${address}" ${problem}`, 'MP_RULE_INVALID');
    else if (Object.keys(fieldsOf(portsValue)).length > 0) problems.error(`${path}.ports`, `must be empty with a Unix domain socket address ("${address}"): remove the ports`, 'MP_RULE_INVALID');
    else {
      problems.issues.push({
        code: 'MP_UNSUPPORTED',
        severity: 'warning',
        path: `${path}.address`,
        message: `"${address}" is a Unix domain socket endpoint, which meshpilot does not implement: this workload is not served`,
      });
    }
    return undefined;
  }
  for (const [name, port] of Object.entries(fieldsOf(portsValue))) {
    if (!isDns1123Label(name)) problems.error(`${path}.ports.${name}`, `"${name}" is not a port name: a port name is a DNS-1123 label (lowercase letters, digits and "-"), as the ServiceEntry's port it names`, 'MP_RULE_INVALID');
    else if (!isPortNumber(port)) problems.error(`${path}.ports.${name}`, `must be a port number 1..65535, got ${describeType(port)}`, 'MP_RULE_INVALID');
    else if (portNames && !portNames.includes(name)) {
      problems.error(`${path}.ports.${name}`, `names no port of this ServiceEntry: use one of ${portNames.join(', ')}`, 'MP_RULE_INVALID');
    } else ports[name] = port;
  }
  const weight = value['weight'];
  if (weight !== undefined && (typeof weight !== 'number' || !Number.isInteger(weight) || weight < 0 || weight > 4_294_967_295)) {
    problems.error(`${path}.weight`, `must be a whole number 0..4294967295, got ${describeType(weight)}`, 'MP_RULE_INVALID');
  }
  checkStringLabels(value['labels'], `${path}.labels`, problems);
  if (value['locality'] !== undefined && typeof value['locality'] !== 'string') {
    problems.error(`${path}.locality`, `must be a string region/zone/subzone, got ${describeType(value['locality'])}`, 'MP_RULE_INVALID');
  }
  const locality = typeof value['locality'] === 'string' ? readLocality(value['locality']) : undefined;
  const serviceAccount = value['serviceAccount'];
  if (serviceAccount !== undefined && serviceAccount !== null && typeof serviceAccount !== 'string') {
    problems.error(`${path}.serviceAccount`, `must be a string, got ${describeType(serviceAccount)}: name the workload's service account`, 'MP_RULE_INVALID');
  }
  return {
    ...(typeof serviceAccount === 'string' && serviceAccount !== '' ? { serviceAccount } : {}),
    namespace,
    address,
    ports,
    labels: stringMap(value['labels']),
    ...(locality ? { locality } : {}),
    ...(typeof weight === 'number' && weight > 0 ? { weight } : {}),
  };
}

function readPorts(spec: Fields, problems: ObjectProblems): ServicePort[] {
  const value = spec['ports'];
  if (value === undefined || (Array.isArray(value) && value.length === 0)) {
    // Valid in Istio, and it makes nothing: no port, no listener and no cluster.
    problems.issues.push({
      code: 'MP_RULE_INEFFECTIVE',
      severity: 'warning',
      path: 'spec.ports',
      message: 'is empty, so nothing is served for these hosts: list the ports they serve, e.g. ports: [{ number: 443, name: https, protocol: TLS }]',
    });
    return [];
  }
  if (!Array.isArray(value)) {
    problems.error('spec.ports', `must be a list, got ${describeType(value)}: write e.g. ports: [{ number: 443, name: https, protocol: TLS }]`, 'MP_RULE_INVALID');
    return [];
  }
  const ports: ServicePort[] = [];
  const names = new Set<string>();
  const numbers = new Set<number>();
  value.forEach((entry: unknown, index) => {
    const path = `spec.ports[${index}]`;
    const port = fieldsOf(entry);
    const { number, name, protocol, targetPort } = port;
    if (!isPortNumber(number)) {
      problems.error(`${path}.number`, `must be a port number 1..65535, got ${describeType(number)}`, 'MP_RULE_INVALID');
      return;
    }
    if (typeof name !== 'string' || name === '') {
      problems.error(`${path}.name`, 'is required: name the port (endpoints and WorkloadEntries refer to it by name), e.g. name: https', 'MP_RULE_INVALID');
      return;
    }
    if (!isDns1123Label(name)) {
      problems.error(`${path}.name`, `"${name}" is not a port name: a port name is a DNS-1123 label (lowercase letters, digits and "-"), e.g. https`, 'MP_RULE_INVALID');
      return;
    }
    if (names.has(name) || numbers.has(number)) {
      const field = names.has(name) ? 'name' : 'number';
      problems.error(`${path}.${field}`, `port ${field === 'name' ? `name "${name}"` : `number ${number}`} is listed twice: give each port a unique name and number`, 'MP_RULE_INVALID');
      return;
    }
    if (protocol !== undefined && (typeof protocol !== 'string' || !(protocol.toUpperCase() in PROTOCOLS))) {
      problems.error(`${path}.protocol`, `${describeType(protocol)} is not a protocol Istio knows: use one of ${Object.keys(PROTOCOLS).join(', ')}`, 'MP_RULE_INVALID');
      return;
    }
    if (targetPort !== undefined && !isPortNumber(targetPort)) {
      problems.error(`${path}.targetPort`, `must be a port number 1..65535, got ${describeType(targetPort)}`, 'MP_RULE_INVALID');
      return;
    }
    names.add(name);
    numbers.add(number);
    ports.push({
      name,
      port: number,
      ...(targetPort !== undefined ? { targetPort } : {}),
      protocol: typeof protocol === 'string' ? (PROTOCOLS[protocol.toUpperCase()] ?? 'TCP') : selectProtocol(name, undefined, undefined, number),
    });
  });
  return ports;
}

function readEnum<T extends string>(spec: Fields, field: string, allowed: readonly T[], fallback: T, problems: ObjectProblems): T {
  const value = spec[field];
  if (value === undefined) return fallback;
  if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T;
  problems.error(`spec.${field}`, `must be one of ${allowed.join(', ')}, got ${describeType(value)}`, 'MP_RULE_INVALID');
  return fallback;
}

function checkEndpointAddress(resolution: ServiceResolution, address: string, path: string, problems: ObjectProblems): void {
  if (isIpAddress(address)) return;
  if (resolution === 'DNS' || resolution === 'DNS_ROUND_ROBIN') {
    if (!isWildcardDomain(address) || address.includes('*')) problems.error(path, `"${address}" is neither an IP address nor a DNS name`, 'MP_RULE_INVALID');
    return;
  }
  problems.error(path, `"${address}" is not an IP address: with resolution ${resolution} endpoints are IPs; use resolution DNS for DNS names`, 'MP_RULE_INVALID');
}

export function parseServiceEntry(input: SourcedObject, object: Fields, kind: string, meta: ObjectMeta): ParsedObject {
  const problems = new ObjectProblems();
  requireName(meta, problems, 'ServiceEntry');
  const spec = fieldsOf(object['spec']);
  if (!isFields(object['spec'])) problems.error('spec', 'is missing: add spec with hosts, ports and resolution', 'MP_RULE_INVALID');
  problems.issues.push(...checkIstioFields(object['spec'], 'ServiceEntry', 'spec', 'MP_RULE_INVALID'));
  for (const field of ['addresses', 'endpoints', 'exportTo', 'subjectAltNames']) {
    const value = spec[field];
    if (value !== undefined && value !== null && !Array.isArray(value)) {
      problems.error(`spec.${field}`, `must be a list, got ${describeType(value)}: write it as a YAML list ("- ...")`, 'MP_RULE_INVALID');
    }
  }
  const hostsValue = spec['hosts'];
  const hosts: string[] = [];
  if (!Array.isArray(hostsValue) || hostsValue.length === 0) {
    problems.error('spec.hosts', 'is required: list the hosts this entry adds to the mesh, e.g. hosts: [api.example.com]', 'MP_RULE_INVALID');
  } else {
    hostsValue.forEach((host: unknown, index) => {
      if (typeof host !== 'string' || host === '*' || !isWildcardDomain(host)) {
        problems.error(`spec.hosts[${index}]`, `${describeType(host)} is not a valid host: use a DNS name such as api.example.com or *.example.com (not "*")`, 'MP_RULE_INVALID');
        return;
      }
      if (host.includes('*') && !host.startsWith('*.')) {
        problems.issues.push({ code: 'MP_RULE_WARNING', severity: 'warning', path: `spec.hosts[${index}]`, message: `"${host}" is a partial wildcard, which Istio warns about: a wildcard is a whole first label, as in *.example.com` });
      }
      hosts.push(host.toLowerCase());
    });
  }
  const addresses: string[] = [];
  (Array.isArray(spec['addresses']) ? (spec['addresses'] as unknown[]) : []).forEach((address, index) => {
    if (typeof address === 'string' && (isIpAddress(address) || isCidr(address))) addresses.push(canonicalIp(address));
    else problems.error(`spec.addresses[${index}]`, `${describeType(address)} is not an IP address or CIDR block`, 'MP_RULE_INVALID');
  });
  const ports = readPorts(spec, problems);
  // Valid in Istio (a wildcard host resolved per request), not implemented here: the entry is not served.
  const dynamicDns = spec['resolution'] === 'DYNAMIC_DNS';
  if (dynamicDns) {
    problems.issues.push({ code: 'MP_UNSUPPORTED', severity: 'warning', path: 'spec.resolution', message: 'DYNAMIC_DNS is not implemented by meshpilot: this entry is not served; list its hosts with resolution DNS to serve them' });
  }
  const resolution = dynamicDns ? 'NONE' : readEnum(spec, 'resolution', RESOLUTIONS, 'NONE', problems);
  const cidr = (Array.isArray(spec['addresses']) ? (spec['addresses'] as unknown[]) : []).findIndex((address) => typeof address === 'string' && isCidr(address));
  if (cidr >= 0 && resolution !== 'NONE' && resolution !== 'STATIC') {
    problems.error(`spec.addresses[${cidr}]`, `is a CIDR block, which only resolution NONE or STATIC takes (not ${resolution}): list single addresses, or use resolution NONE`, 'MP_RULE_INVALID');
  }
  const location = readEnum(spec, 'location', LOCATIONS, 'MESH_EXTERNAL', problems);
  const sans: string[] = [];
  (Array.isArray(spec['subjectAltNames']) ? (spec['subjectAltNames'] as unknown[]) : []).forEach((san, index) => {
    if (typeof san === 'string' && san !== '') sans.push(san);
    else problems.error(`spec.subjectAltNames[${index}]`, `must be a name, got ${describeType(san)}: quote it if it holds a colon and a space`, 'MP_RULE_INVALID');
  });
  const exportTo: string[] = [];
  (Array.isArray(spec['exportTo']) ? (spec['exportTo'] as unknown[]) : []).forEach((entry, index) => {
    if (typeof entry === 'string') exportTo.push(entry);
    else problems.error(`spec.exportTo[${index}]`, `must be a string, got ${describeType(entry)}: quote it`, 'MP_RULE_INVALID');
  });
  checkExportTo(exportTo, 'spec.exportTo', meta.namespace, true, (path, message) => {
    problems.error(path, message, 'MP_RULE_INVALID');
  });
  const selectorValue = spec['workloadSelector'];
  if (selectorValue !== undefined && selectorValue !== null && !isFields(selectorValue)) {
    problems.error('spec.workloadSelector', `must be a map, got ${describeType(selectorValue)}: write workloadSelector: { labels: { app: vm } }`, 'MP_RULE_INVALID');
  }
  if (isFields(selectorValue)) {
    checkStringLabels(selectorValue['labels'], 'spec.workloadSelector.labels', problems);
    checkSelectorLabels(fieldsOf(selectorValue['labels']), 'spec.workloadSelector.labels', problems);
    if (Object.keys(fieldsOf(selectorValue['labels'])).length === 0) {
      problems.issues.push({
        code: 'MP_RULE_WARNING',
        severity: 'warning',
        path: 'spec.workloadSelector',
        message: `has no labels, so it selects every workload in namespace ${meta.namespace}: add labels, or remove workloadSelector`,
      });
    }
  }
  const workloadSelector = isFields(selectorValue) ? stringMap(selectorValue['labels']) : undefined;
  const endpointsValue = spec['endpoints'];
  if (resolution === 'NONE' && workloadSelector) {
    problems.issues.push({ code: 'MP_RULE_WARNING', severity: 'warning', path: 'spec.workloadSelector', message: 'has no effect with resolution NONE, as Istio warns: set resolution STATIC to send to the workloads it selects' });
  }
  if (workloadSelector && Array.isArray(endpointsValue) && endpointsValue.length > 0) {
    problems.error('spec.workloadSelector', 'cannot be used together with endpoints: keep one of workloadSelector or endpoints', 'MP_RULE_INVALID');
  }
  if (resolution === 'NONE' && Array.isArray(endpointsValue) && endpointsValue.length > 0) {
    problems.error('spec.endpoints', 'must be empty with resolution NONE (the default), which forwards to the address the caller dialled: set resolution STATIC or DNS to use these endpoints', 'MP_RULE_INVALID');
  }
  const endpoints: WorkloadInfo[] = [];
  (Array.isArray(endpointsValue) ? (endpointsValue as unknown[]) : []).forEach((entry, index) => {
    const path = `spec.endpoints[${index}]`;
    const workload = readWorkload(entry, path, meta.namespace, problems, ports.map((p) => p.name));
    if (!workload) return;
    checkEndpointAddress(resolution, workload.address, `${path}.address`, problems);
    endpoints.push(workload);
  });
  if (resolution === 'DNS_ROUND_ROBIN' && endpoints.length > 1) {
    problems.error('spec.endpoints', `has ${endpoints.length} endpoints, but DNS_ROUND_ROBIN takes at most one: use resolution DNS for several`, 'MP_RULE_INVALID');
  }
  if ((resolution === 'DNS' || resolution === 'DNS_ROUND_ROBIN') && endpoints.length === 0 && !workloadSelector) {
    hosts.forEach((host, index) => {
      if (host.startsWith('*')) {
        problems.error(`spec.hosts[${index}]`, `wildcard host "${host}" cannot be resolved by DNS: list endpoints, or use resolution NONE`, 'MP_RULE_INVALID');
      }
    });
  }
  if (problems.hasErrors() || meta.name === undefined || dynamicDns) return rejectedObject(input, kind, meta, problems.issues);
  const vip = addresses.find((address) => !isCidr(address));
  const services = hosts.map((hostname): Service => ({
    hostname,
    name: hostname,
    namespace: meta.namespace,
    ports,
    labels: meta.labels,
    ...(vip !== undefined ? { vip } : {}),
    source: input.source,
    resolution,
    meshExternal: location === 'MESH_EXTERNAL',
    ...(sans.length > 0 ? { subjectAltNames: sans } : {}),
    ...(exportTo.length > 0 ? { exportTo } : {}),
  }));
  const entry: ServiceEntryInfo = {
    namespace: meta.namespace,
    name: meta.name,
    source: input.source,
    ...(meta.creationTimestamp !== undefined ? { creationTimestamp: meta.creationTimestamp } : {}),
    services,
    resolution,
    endpoints,
    ...(workloadSelector ? { workloadSelector } : {}),
  };
  return { type: 'serviceEntry', key: objectKey(kind, meta.namespace, meta.name), source: input.source, entry, warnings: problems.warnings() };
}

export function parseWorkloadEntry(input: SourcedObject, object: Fields, kind: string, meta: ObjectMeta): ParsedObject {
  const problems = new ObjectProblems();
  requireName(meta, problems, 'WorkloadEntry');
  problems.issues.push(...checkIstioFields(object['spec'], 'WorkloadEntry', 'spec', 'MP_RULE_INVALID'));
  const workload = readWorkload(object['spec'], 'spec', meta.namespace, problems, undefined);
  if (workload && !isIpAddress(workload.address) && !isWildcardDomain(workload.address)) {
    problems.error('spec.address', `"${workload.address}" is neither an IP address nor a DNS name`, 'MP_RULE_INVALID');
  }
  if (!workload || problems.hasErrors() || meta.name === undefined) return rejectedObject(input, kind, meta, problems.issues);
  // A WorkloadEntry's own labels are what selectors see, as for a Pod.
  const labels = { ...meta.labels, ...workload.labels };
  return {
    type: 'workloadEntry',
    key: objectKey(kind, meta.namespace, meta.name),
    source: input.source,
    workload: { ...workload, labels, workload: `${meta.namespace}/${meta.name}` },
    warnings: problems.warnings(),
  };
}

function endpointOf(service: Service, port: ServicePort, workload: WorkloadInfo): Endpoint {
  return {
    serviceHostname: service.hostname,
    servicePortName: port.name,
    address: workload.address,
    port: workload.ports[port.name] ?? (typeof port.targetPort === 'number' ? port.targetPort : port.port),
    labels: workload.labels,
    ...(workload.locality ? { locality: workload.locality } : {}),
    ready: true,
    ...(workload.workload !== undefined ? { workload: workload.workload } : {}),
    ...(workload.weight !== undefined ? { weight: workload.weight } : {}),
    ...(workload.serviceAccount !== undefined ? { serviceAccount: workload.serviceAccount } : {}),
  };
}

/**
 * The endpoints of a ServiceEntry's hosts: its inline endpoints, or the WorkloadEntries and
 * running Pods of its namespace its workloadSelector picks; a DNS entry with neither resolves
 * each host itself.
 */
export function serviceEntryEndpoints(entry: ServiceEntryInfo, workloadEntries: readonly WorkloadInfo[], pods: PodIndex): Endpoint[] {
  let workloads: WorkloadInfo[] = [...entry.endpoints];
  const selector = entry.workloadSelector;
  if (selector) {
    workloads = workloadEntries.filter((w) => w.namespace === entry.namespace && labelsMatch(selector, w.labels));
    for (const pod of pods.byName.values()) {
      if (pod.namespace !== entry.namespace || !pod.running || !labelsMatch(selector, pod.labels)) continue;
      const [ip] = pod.ips;
      if (ip) workloads.push({ namespace: pod.namespace, workload: `${pod.namespace}/${pod.name}`, address: ip, ports: {}, labels: pod.labels, serviceAccount: pod.serviceAccount });
    }
  }
  const out: Endpoint[] = [];
  for (const service of entry.services) {
    const resolvesItself = workloads.length === 0 && !selector && (entry.resolution === 'DNS' || entry.resolution === 'DNS_ROUND_ROBIN');
    const own = resolvesItself ? [{ namespace: entry.namespace, address: service.hostname, ports: {}, labels: {} }] : workloads;
    for (const port of service.ports) for (const workload of own) out.push(endpointOf(service, port, workload));
  }
  return out;
}
