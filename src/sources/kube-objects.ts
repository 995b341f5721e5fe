// Parsed Kubernetes and Istio objects into model objects. Pure: the YAML directory and the
// Kubernetes informers both feed it already-parsed objects and publish what it returns.
import type { TlsCredential } from '../model/credentials.ts';
import type { Rule, RuleKind, ValidationIssue } from '../model/rules.ts';
import { ruleKey } from '../model/rules.ts';
import type { Endpoint, Service, ServicePort } from '../model/service.ts';
import { selectProtocol, serviceHostname } from '../model/service.ts';
import type { ObjectWarnings, RejectedObject } from '../model/store.ts';
import { EXPORT_TO_ANNOTATION, parseExportToAnnotation } from '../model/visibility.ts';
import { convertIstioRule, ISTIO_NETWORKING_GROUP, ISTIO_NETWORKING_VERSIONS, ISTIO_SECURITY_GROUP, ISTIO_SECURITY_VERSIONS } from './istio-objects.ts';
import { endpointIdentity, endpointsOfGroup, indexPods, parseEndpointSlice, parseLegacyEndpoints, parsePod } from './kube-endpoints.ts';
import type { Fields, ObjectMeta } from './object-fields.ts';
import { checkKubeFields, KUBE_FIELDS } from './known-fields.ts';
import { checkEnvelope, judgeUnreadKind } from './object-checks.ts';
import { parseSecret } from './kube-secrets.ts';
import { arrayField, describeType, fieldsOf, isFields, isIpAddress, isPortNumber, readMeta, stringField } from './object-fields.ts';
import type { AcceptedObject, ConvertedObjects, EndpointGroup, ParsedObject, PodInfo, SourcedObject } from './parsed-object.ts';
import { objectKey, ObjectProblems, rejectedObject, requireName } from './parsed-object.ts';
import type { RouteRuleInfo } from './route-rule-objects.ts';
import { convertRouteRules, LEGACY_CONFIG_GROUP, parseRouteRule } from './route-rule-objects.ts';
import type { GatewayRouteInfo, ReferenceGrantInfo } from './gateway-api-objects.ts';
import { GATEWAY_API_GROUP, GATEWAY_API_X_GROUP, parseMeshRoute, parseReferenceGrant } from './gateway-api-objects.ts';
import { convertMeshRoutes } from './gateway-api-mesh.ts';
import type { GatewayClassInfo, GatewayInfo } from './gateway-api-gateways.ts';
import { parseGatewayApiGateway, parseGatewayClass, parseXMesh } from './gateway-api-gateways.ts';
import { convertGatewayApi } from './gateway-api-ingress.ts';
import { referenceGranted } from './gateway-api-rules.ts';
import type { GatewayApiOptions } from './gateway-api-listeners.ts';
import { DEFAULT_GATEWAY_API_OPTIONS } from './gateway-api-listeners.ts';
import type { RouteStatus } from '../model/route-status.ts';
import type { ServiceEntryInfo, WorkloadInfo } from './service-entry-objects.ts';
import { parseServiceEntry, parseWorkloadEntry, serviceEntryEndpoints } from './service-entry-objects.ts';

export type { AcceptedObject, ConvertedObjects, EndpointGroup, ParsedObject, PodInfo, SourcedObject } from './parsed-object.ts';
export { isAccepted, objectKey } from './parsed-object.ts';
export { SERVICE_NAME_LABEL } from './kube-endpoints.ts';

function readServicePort(value: unknown, path: string, problems: ObjectProblems): ServicePort | undefined {
  if (!isFields(value)) {
    problems.error(path, `must be a map, got ${describeType(value)}: write e.g. { name: http, port: 9080 }`);
    return undefined;
  }
  problems.issues.push(...checkKubeFields(value, KUBE_FIELDS.servicePort, path));
  const port = value['port'];
  if (!isPortNumber(port)) {
    problems.error(`${path}.port`, `must be a port number 1..65535, got ${describeType(port)}: write the port the service listens on`);
    return undefined;
  }
  const targetPort = value['targetPort'];
  if (targetPort !== undefined && !isPortNumber(targetPort) && (typeof targetPort !== 'string' || targetPort === '')) {
    problems.error(`${path}.targetPort`, `must be a port number or a container port name, got ${describeType(targetPort)}: fix it or remove it to use ${port}`);
    return undefined;
  }
  for (const key of ['name', 'protocol', 'appProtocol']) {
    if (value[key] !== undefined && value[key] !== null && typeof value[key] !== 'string') problems.error(`${path}.${key}`, `must be a string, got ${describeType(value[key])}: quote it`);
  }
  const protocol = value['protocol'];
  if (typeof protocol === 'string' && !['TCP', 'UDP', 'SCTP'].includes(protocol)) problems.error(`${path}.protocol`, `${describeType(protocol)} is not TCP, UDP or SCTP: Kubernetes takes one of those (the application protocol goes in appProtocol or the port name)`);
  const name = stringField(value, 'name') ?? '';
  return {
    name,
    port,
    targetPort: targetPort ?? port,
    protocol: selectProtocol(name, stringField(value, 'appProtocol'), stringField(value, 'protocol'), port),
  };
}

/** `status.loadBalancer.ingress[]`: each entry's ip, else its hostname. */
function loadBalancerAddresses(status: unknown): string[] {
  const ingress = fieldsOf(fieldsOf(status)['loadBalancer'])['ingress'];
  if (!Array.isArray(ingress)) return [];
  return ingress.flatMap((entry) => {
    const fields = fieldsOf(entry);
    const address = stringField(fields, 'ip') ?? stringField(fields, 'hostname');
    return address ? [address] : [];
  });
}

/** A Namespace: only its labels matter (listeners select route namespaces by them). */
function parseNamespace(input: SourcedObject, _object: Fields, kind: string, meta: ObjectMeta): ParsedObject {
  if (meta.name === undefined) return { type: 'ignored', source: input.source, reason: 'v1 Namespace without a name' };
  return { type: 'namespace', key: objectKey(kind, '', meta.name), source: input.source, namespace: { name: meta.name, labels: meta.labels } };
}

function parseService(input: SourcedObject, object: Fields, kind: string, meta: ObjectMeta): ParsedObject {
  const problems = new ObjectProblems();
  requireName(meta, problems, 'Service');
  const specValue = object['spec'];
  if (specValue !== undefined && specValue !== null && !isFields(specValue)) problems.error('spec', `must be a map, got ${describeType(specValue)}: write spec: { ports: [...] }`);
  const spec = fieldsOf(specValue);
  problems.issues.push(...checkKubeFields(spec, KUBE_FIELDS.serviceSpec, 'spec'));
  const clusterIpValue = spec['clusterIP'];
  if (clusterIpValue !== undefined && clusterIpValue !== null && (typeof clusterIpValue !== 'string' || !(clusterIpValue === '' || clusterIpValue === 'None' || isIpAddress(clusterIpValue)))) {
    problems.error('spec.clusterIP', `${describeType(clusterIpValue)} is not an IP address: write the ClusterIP (e.g. 10.96.0.10), "None" for a headless Service, or leave it out`);
  }
  const portsValue = spec['ports'];
  if (portsValue !== undefined && portsValue !== null && !Array.isArray(portsValue)) {
    problems.error('spec.ports', `must be a list, got ${describeType(portsValue)}: write each port as a list item ("- port: 9080")`);
  }
  const ports = arrayField(spec, 'ports')
    .map((port, index) => readServicePort(port, `spec.ports[${index}]`, problems))
    .filter((port): port is ServicePort => port !== undefined);
  if (problems.hasErrors() || meta.name === undefined) return rejectedObject(input, kind, meta, problems.issues);
  const clusterIp = stringField(spec, 'clusterIP');
  const ingressAddresses = loadBalancerAddresses(object['status']);
  const exportTo = parseExportToAnnotation(stringField(fieldsOf(fieldsOf(object['metadata'])['annotations']), EXPORT_TO_ANNOTATION));
  const service: Service = {
    hostname: serviceHostname(meta.name, meta.namespace),
    name: meta.name,
    namespace: meta.namespace,
    ports,
    labels: meta.labels,
    ...(clusterIp !== undefined && clusterIp !== '' && clusterIp !== 'None' ? { vip: clusterIp } : {}),
    ...(ingressAddresses.length > 0 ? { ingressAddresses } : {}),
    source: input.source,
    ...(exportTo ? { exportTo } : {}),
  };
  return { type: 'service', key: objectKey(kind, meta.namespace, meta.name), source: input.source, service };
}

function parseRule(input: SourcedObject, object: Fields, kind: RuleKind, meta: ObjectMeta): ParsedObject {
  const { rule, issues } = convertIstioRule(kind, object, input.source);
  if (!rule) return rejectedObject(input, kind, meta, issues);
  return { type: 'rule', key: ruleKey(rule.meta), source: input.source, rule };
}

type Parser = (input: SourcedObject, object: Fields, kind: string, meta: ObjectMeta) => ParsedObject;

interface KindSupport {
  readonly group: string;
  readonly versions: readonly string[];
  readonly parse: Parser;
}

/** An Istio rule kind served at `group`, in any of `versions`. */
function ruleKind(kind: RuleKind, group: string, versions: readonly string[]): KindSupport {
  return { group, versions, parse: (input, object, _kind, meta) => parseRule(input, object, kind, meta) };
}

const SUPPORTED_KINDS: Readonly<Record<string, KindSupport>> = {
  Service: { group: '', versions: ['v1'], parse: parseService },
  EndpointSlice: { group: 'discovery.k8s.io', versions: ['v1', 'v1beta1'], parse: parseEndpointSlice },
  Endpoints: { group: '', versions: ['v1'], parse: parseLegacyEndpoints },
  Pod: { group: '', versions: ['v1'], parse: parsePod },
  Secret: { group: '', versions: ['v1'], parse: parseSecret },
  VirtualService: ruleKind('VirtualService', ISTIO_NETWORKING_GROUP, ISTIO_NETWORKING_VERSIONS),
  DestinationRule: ruleKind('DestinationRule', ISTIO_NETWORKING_GROUP, ISTIO_NETWORKING_VERSIONS),
  Sidecar: ruleKind('Sidecar', ISTIO_NETWORKING_GROUP, ISTIO_NETWORKING_VERSIONS),
  Gateway: ruleKind('Gateway', ISTIO_NETWORKING_GROUP, ISTIO_NETWORKING_VERSIONS),
  PeerAuthentication: ruleKind('PeerAuthentication', ISTIO_SECURITY_GROUP, ISTIO_SECURITY_VERSIONS),
  AuthorizationPolicy: ruleKind('AuthorizationPolicy', ISTIO_SECURITY_GROUP, ISTIO_SECURITY_VERSIONS),
  ServiceEntry: { group: ISTIO_NETWORKING_GROUP, versions: ISTIO_NETWORKING_VERSIONS, parse: parseServiceEntry },
  WorkloadEntry: { group: ISTIO_NETWORKING_GROUP, versions: ISTIO_NETWORKING_VERSIONS, parse: parseWorkloadEntry },
  RouteRule: { group: LEGACY_CONFIG_GROUP, versions: ['v1alpha2'], parse: parseRouteRule },
  HTTPRoute: { group: GATEWAY_API_GROUP, versions: ['v1', 'v1beta1'], parse: parseMeshRoute },
  GRPCRoute: { group: GATEWAY_API_GROUP, versions: ['v1'], parse: parseMeshRoute },
  TLSRoute: { group: GATEWAY_API_GROUP, versions: ['v1alpha2', 'v1alpha3', 'v1'], parse: parseMeshRoute },
  TCPRoute: { group: GATEWAY_API_GROUP, versions: ['v1alpha2'], parse: parseMeshRoute },
  ReferenceGrant: { group: GATEWAY_API_GROUP, versions: ['v1beta1', 'v1'], parse: parseReferenceGrant },
  GatewayClass: { group: GATEWAY_API_GROUP, versions: ['v1', 'v1beta1'], parse: parseGatewayClass },
  XMesh: { group: GATEWAY_API_X_GROUP, versions: ['v1alpha1'], parse: parseXMesh },
  Namespace: { group: '', versions: ['v1'], parse: parseNamespace },
};

/** Kinds whose name another group's kind already holds in SUPPORTED_KINDS (the Gateway API's Gateway). */
const SECOND_KINDS: Readonly<Record<string, KindSupport>> = {
  Gateway: { group: GATEWAY_API_GROUP, versions: ['v1', 'v1beta1'], parse: parseGatewayApiGateway },
};

function kindSupport(kind: string, group: string): KindSupport | undefined {
  const first = SUPPORTED_KINDS[kind];
  if (first?.group === group) return first;
  const second = SECOND_KINDS[kind];
  return second?.group === group ? second : first;
}

/** Converts one object on its own; joining endpoints with Pods and Services is `assembleObjects`. */
export function parseObject(input: SourcedObject): ParsedObject {
  const { object } = input;
  if (!isFields(object)) {
    return rejectedObject(input, undefined, undefined, [
      { code: 'MP_OBJECT_INVALID', severity: 'error', path: '', message: `is not a Kubernetes object (got ${describeType(object)}): each document must be a map with apiVersion, kind and metadata` },
    ]);
  }
  const kind = stringField(object, 'kind');
  const apiVersion = stringField(object, 'apiVersion');
  const meta = readMeta(object);
  if (kind === undefined || kind === '' || apiVersion === undefined || apiVersion === '') {
    const missing = [kind ? undefined : 'kind', apiVersion ? undefined : 'apiVersion'].filter((field) => field !== undefined);
    return rejectedObject(input, kind || undefined, meta, [
      { code: 'MP_OBJECT_INVALID', severity: 'error', path: missing[0] ?? 'kind', message: `is missing: every object needs ${missing.join(' and ')}, e.g. apiVersion: v1, kind: Service` },
    ]);
  }
  const slash = apiVersion.lastIndexOf('/');
  const group = slash >= 0 ? apiVersion.slice(0, slash) : '';
  const version = slash >= 0 ? apiVersion.slice(slash + 1) : apiVersion;
  const support = kindSupport(kind, group);
  if (!support || support.group !== group) {
    const readKinds = [...Object.entries(SUPPORTED_KINDS), ...Object.entries(SECOND_KINDS)].filter(([, s]) => s.group === group).map(([name]) => name);
    const issue = judgeUnreadKind(group, kind, readKinds);
    if (issue) return rejectedObject(input, kind, meta, [issue]);
    return { type: 'ignored', source: input.source, reason: `${apiVersion} ${kind}` };
  }
  if (!support.versions.includes(version)) {
    const prefix = support.group ? `${support.group}/` : '';
    return rejectedObject(input, kind, meta, [
      {
        code: 'MP_OBJECT_INVALID',
        severity: 'error',
        path: 'apiVersion',
        message: `${apiVersion} is not a version meshpilot reads: use ${support.versions.map((v) => prefix + v).join(' or ')}`,
      },
    ]);
  }
  const envelope = checkEnvelope(object, kind);
  if (envelope.length > 0) return rejectedObject(input, kind, meta, envelope);
  return support.parse(input, object, kind, meta);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Istio's order for entries that claim one host: oldest creation time, then namespace/name. */
function olderEntryFirst(a: ServiceEntryInfo, b: ServiceEntryInfo): number {
  const at = a.creationTimestamp ?? '';
  const bt = b.creationTimestamp ?? '';
  return at !== bt ? compare(at, bt) : compare(`${a.namespace}/${a.name}`, `${b.namespace}/${b.name}`);
}

function hostTakenBy(host: string, index: number, owner: ServiceEntryInfo): ValidationIssue {
  return {
    code: 'MP_RULE_CONFLICT',
    severity: 'warning',
    path: `spec.hosts[${index}]`,
    message: `host "${host}" is already defined by ServiceEntry ${owner.namespace}/${owner.name}, which is older and wins: this entry's ports and endpoints for it are not used; merge the two entries or remove the host from one`,
  };
}

function objectWarnings(parsed: AcceptedObject, issues: readonly ValidationIssue[]): ObjectWarnings {
  const [kind = '', namespace = '', name = ''] = parsed.key.split('/');
  return { source: parsed.source, object: `${kind} ${namespace}/${name}`, kind, namespace, name, issues };
}

/** Kubernetes has one object per kind/namespace/name; a second one in the input is a mistake, reported in both places. */
function duplicateOf(parsed: AcceptedObject, first: AcceptedObject): { rejected: RejectedObject; served: ObjectWarnings } {
  const twice = (severity: 'error' | 'warning', message: string): ValidationIssue[] => [{ code: 'MP_OBJECT_INVALID', severity, path: 'metadata.name', message }];
  const elsewhere = first.source.location;
  return {
    rejected: {
      ...objectWarnings(parsed, twice('error', `is defined twice, here and in ${elsewhere}: rename or remove one (the one in ${elsewhere} is served, this one is not)`)),
      keptLastGood: false,
    },
    served: objectWarnings(first, twice('warning', `is defined twice, here and in ${parsed.source.location}: this one is served and the other is not; rename or remove one`)),
  };
}

/** One status per route: the parents GAMMA and the Gateways gave it together. */
function mergeRouteStatuses(statuses: readonly RouteStatus[]): RouteStatus[] {
  const byRoute = new Map<string, RouteStatus>();
  for (const status of statuses) {
    const key = `${status.kind}/${status.namespace}/${status.name}`;
    const known = byRoute.get(key);
    byRoute.set(key, known ? { ...known, parents: [...known.parents, ...status.parents] } : status);
  }
  return [...byRoute.values()];
}

export interface AssembleOptions {
  readonly gatewayApi?: GatewayApiOptions;
  /** `namespace/name` of each usable TLS Secret; by default those among the objects (both sources read Secrets). */
  readonly secrets?: ReadonlySet<string>;
}

export function assembleObjects(parsedObjects: readonly ParsedObject[], options: AssembleOptions = {}): ConvertedObjects {
  const rejected: RejectedObject[] = [];
  const warnings: ObjectWarnings[] = [];
  const ignored: Record<string, number> = {};
  const accepted = new Map<string, AcceptedObject>();
  for (const parsed of parsedObjects) {
    if (parsed.type === 'rejected') rejected.push(parsed.rejected);
    else if (parsed.type === 'ignored') ignored[parsed.reason] = (ignored[parsed.reason] ?? 0) + 1;
    else {
      const first = accepted.get(parsed.key);
      if (first) {
        const duplicate = duplicateOf(parsed, first);
        rejected.push(duplicate.rejected);
        warnings.push(duplicate.served);
      }
      else accepted.set(parsed.key, parsed);
    }
  }
  const services = new Map<string, Service>();
  const pods: PodInfo[] = [];
  const rules: Rule[] = [];
  const slices: EndpointGroup[] = [];
  const legacy: EndpointGroup[] = [];
  const serviceEntries: ServiceEntryInfo[] = [];
  const workloadEntries: WorkloadInfo[] = [];
  const routeRules: RouteRuleInfo[] = [];
  const meshRoutes: GatewayRouteInfo[] = [];
  const grants: ReferenceGrantInfo[] = [];
  const gatewayClasses: GatewayClassInfo[] = [];
  const meshes: GatewayClassInfo[] = [];
  const gatewayApiGateways: GatewayInfo[] = [];
  const namespaces = new Map<string, Readonly<Record<string, string>>>();
  const credentials: TlsCredential[] = [];
  for (const parsed of accepted.values()) {
    if (parsed.type === 'service') services.set(parsed.service.hostname, parsed.service);
    else if (parsed.type === 'pod') pods.push(parsed.pod);
    else if (parsed.type === 'rule') rules.push(parsed.rule);
    else if (parsed.type === 'endpointSlice') slices.push(parsed.group);
    else if (parsed.type === 'serviceEntry') serviceEntries.push(parsed.entry);
    else if (parsed.type === 'workloadEntry') workloadEntries.push(parsed.workload);
    else if (parsed.type === 'routeRule') routeRules.push(parsed.routeRule);
    else if (parsed.type === 'meshRoute') meshRoutes.push(parsed.route);
    else if (parsed.type === 'referenceGrant') grants.push(parsed.grant);
    else if (parsed.type === 'gatewayClass') gatewayClasses.push(parsed.gatewayClass);
    else if (parsed.type === 'xmesh') meshes.push(parsed.mesh);
    else if (parsed.type === 'gatewayApiGateway') gatewayApiGateways.push(parsed.gateway);
    else if (parsed.type === 'namespace') namespaces.set(parsed.namespace.name, parsed.namespace.labels);
    else if (parsed.type === 'credential') credentials.push(parsed.credential);
    else legacy.push(parsed.group);
    if ((parsed.type === 'serviceEntry' || parsed.type === 'workloadEntry' || parsed.type === 'credential') && parsed.warnings && parsed.warnings.length > 0) {
      warnings.push(objectWarnings(parsed, parsed.warnings));
    }
  }
  const readableCredentials = credentials.map((credential) => withGatewayReaders(credential, grants));
  const podIndex = indexPods(pods);
  const slicedServices = new Set(slices.map((group) => serviceHostname(group.serviceName, group.namespace)));
  // Legacy Endpoints only speak for services that have no EndpointSlice (older dumps).
  const groups = [...slices, ...legacy.filter((group) => !slicedServices.has(serviceHostname(group.serviceName, group.namespace)))];
  const endpoints = new Map<string, Endpoint>();
  for (const group of groups) {
    for (const endpoint of endpointsOfGroup(group, services, podIndex)) {
      const identity = endpointIdentity(endpoint);
      const existing = endpoints.get(identity);
      // During a rollout one address can appear in two slices; the ready copy is the truth.
      if (!existing || (!existing.ready && endpoint.ready)) endpoints.set(identity, endpoint);
    }
  }
  // Kubernetes owns a hostname it has; among ServiceEntries the oldest does, as in Istio, and the others are told.
  const entryOwner = new Map<string, ServiceEntryInfo>();
  for (const entry of serviceEntries.sort(olderEntryFirst)) {
    const owned = entry.services.filter((service) => !services.has(service.hostname));
    const conflicts: ValidationIssue[] = [];
    entry.services.forEach((service, index) => {
      const owner = entryOwner.get(service.hostname);
      if (owner) conflicts.push(hostTakenBy(service.hostname, index, owner));
    });
    for (const service of owned) {
      services.set(service.hostname, service);
      entryOwner.set(service.hostname, entry);
    }
    if (conflicts.length > 0) {
      warnings.push({ source: entry.source, object: `ServiceEntry ${entry.namespace}/${entry.name}`, kind: 'ServiceEntry', namespace: entry.namespace, name: entry.name, issues: conflicts });
    }
    const ownedHosts = new Set(owned.map((service) => service.hostname));
    for (const endpoint of serviceEntryEndpoints(entry, workloadEntries, podIndex)) {
      if (ownedHosts.has(endpoint.serviceHostname)) endpoints.set(endpointIdentity(endpoint), endpoint);
    }
  }
  const gamma = convertMeshRoutes(meshRoutes, services);
  const ingress = convertGatewayApi(
    { classes: gatewayClasses, meshes, gateways: gatewayApiGateways, routes: meshRoutes, grants, services, namespaces, secrets: options.secrets ?? new Set(readableCredentials.map((c) => `${c.namespace}/${c.name}`)) },
    options.gatewayApi ?? DEFAULT_GATEWAY_API_OPTIONS,
  );
  warnings.push(...gamma.warnings, ...ingress.warnings);
  return {
    services: [...services.values()].sort((a, b) => compare(a.hostname, b.hostname)),
    endpoints: [...endpoints.entries()].sort(([a], [b]) => compare(a, b)).map(([, endpoint]) => endpoint),
    rules: [...convertRouteRules(routeRules, rules), ...gamma.rules, ...ingress.rules].sort((a, b) => compare(ruleKey(a.meta), ruleKey(b.meta))),
    rejected,
    warnings,
    routeStatuses: mergeRouteStatuses([...gamma.statuses, ...ingress.routeStatuses]),
    gatewayStatuses: ingress.objectStatuses,
    credentials: readableCredentials,
    ignored,
  };
}

/** A Secret with the namespaces whose Gateways a ReferenceGrant lets read it (Istio's check before serving it over SDS). */
function withGatewayReaders(credential: TlsCredential, grants: readonly ReferenceGrantInfo[]): TlsCredential {
  const readers = [...new Set(grants.flatMap((grant) => grant.from.filter((from) => from.kind === 'Gateway').map((from) => from.namespace)))]
    .filter((namespace) => namespace !== credential.namespace && referenceGranted(grants, { kind: 'Gateway', namespace }, { group: '', kind: 'Secret', namespace: credential.namespace, name: credential.name }))
    .sort();
  return readers.length > 0 ? { ...credential, gatewayReaders: readers } : credential;
}

/** Converts a whole set of parsed objects at once. */
export function convertObjects(objects: readonly SourcedObject[]): ConvertedObjects {
  return assembleObjects(objects.map(parseObject));
}
