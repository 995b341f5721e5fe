// Istio's Sidecar resource, validated as Istio's admission webhook would, plus a warning for
// each field meshpilot reads but does not apply (the rest of the Sidecar still applies).
import type { ValidationIssue } from '../model/rules.ts';
import { parseEgressHost } from '../model/sidecar.ts';
import type { Fields } from './object-fields.ts';
import { describeType, isDns1123Label, isFields, isPortNumber, isWildcardDomain } from './object-fields.ts';
import { checkEnum, IssueList, mapAt, mapsIn, stringsIn } from './istio-fields.ts';
import { checkIstioFields } from './istio-schema.ts';

const HOST_EXAMPLE = 'e.g. ./*, istio-system/* or bookinfo/reviews.bookinfo.svc.cluster.local';

function checkEgressHost(host: string, path: string, issues: IssueList): void {
  const parsed = parseEgressHost(host);
  if (!parsed) {
    issues.error(path, `"${host}" has no namespace part: write namespace/host (${HOST_EXAMPLE}); "./" is this namespace, "*/" any, "~/" none`);
    return;
  }
  const { namespace, dnsName } = parsed;
  if (namespace !== '.' && namespace !== '*' && namespace !== '~' && !isDns1123Label(namespace)) {
    issues.error(path, `"${namespace}" is not a namespace: use a namespace name, "." (this namespace), "*" (any) or "~" (none)`);
  }
  if (!isWildcardDomain(dnsName)) {
    issues.error(path, `"${dnsName}" is not a host: use *, a FQDN such as reviews.bookinfo.svc.cluster.local, or *.suffix`);
  } else if (dnsName !== '*' && !dnsName.includes('.')) {
    issues.error(path, `"${dnsName}" is a short name, which Istio refuses in a Sidecar (hosts are compared with full names): write ${dnsName}.${namespace === '.' || namespace === '*' || namespace === '~' ? '<namespace>' : namespace}.svc.cluster.local`);
  }
}

const PROTOCOLS = ['HTTP', 'HTTPS', 'HTTP2', 'GRPC', 'GRPC-WEB', 'TCP', 'TLS', 'UDP', 'MONGO', 'MYSQL', 'REDIS', 'HBONE'];

/** Istio's warnings about egress hosts: one written twice, or others next to the all-importing one. */
function warnRedundantHosts(hosts: readonly (readonly [number, string])[], path: string, issues: IssueList): void {
  const seen = new Map<string, number>();
  for (const [index, host] of hosts) {
    const first = seen.get(host);
    if (first !== undefined) issues.warn(`${path}.hosts[${index}]`, `"${host}" is already listed at ${path}.hosts[${first}]: remove one`, 'MP_RULE_WARNING');
    else seen.set(host, index);
  }
  if (hosts.length > 1 && hosts.some(([, host]) => host === '*/*')) {
    issues.warn(`${path}.hosts`, '"*/*" already imports every service, so the other hosts add nothing: keep "*/*" alone', 'MP_RULE_WARNING');
  }
}

function checkPort(value: unknown, path: string, issues: IssueList, unixBind = false): number | undefined {
  const port = mapAt(value, path, 'port: { number: 9080, protocol: HTTP, name: http }', issues);
  if (!port) return undefined;
  if (typeof port['protocol'] === 'string' && !PROTOCOLS.includes(port['protocol'].toUpperCase())) {
    issues.error(`${path}.protocol`, `"${port['protocol']}" is not a protocol Istio knows: use one of ${PROTOCOLS.join(', ')}`);
  }
  // As Istio: a listener on a Unix domain socket has port 0.
  if (unixBind && (port['number'] === 0 || port['number'] === undefined)) return undefined;
  if (!isPortNumber(port['number'])) {
    issues.error(`${path}.number`, `must be a port number 1..65535, got ${describeType(port['number'])}: give the service port this listener is for, e.g. number: 9080`);
    return undefined;
  }
  for (const key of ['protocol', 'name']) {
    if (port[key] !== undefined && typeof port[key] !== 'string') issues.error(`${path}.${key}`, `must be a string, got ${describeType(port[key])}: quote it`);
  }
  return port['number'];
}

function checkEgress(listener: Fields, path: string, issues: IssueList): number | undefined {
  const hostsValue = listener['hosts'];
  const hosts = stringsIn(hostsValue, `${path}.hosts`, issues);
  if (hostsValue === undefined || hostsValue === null || (Array.isArray(hostsValue) && hostsValue.length === 0)) {
    issues.error(`${path}.hosts`, `is empty: list the hosts this proxy may reach as namespace/host (${HOST_EXAMPLE})`);
  }
  for (const [index, host] of hosts) checkEgressHost(host, `${path}.hosts[${index}]`, issues);
  warnRedundantHosts(hosts, path, issues);
  const unixBind = typeof listener['bind'] === 'string' && listener['bind'].startsWith('unix://');
  if (unixBind) issues.warn(`${path}.bind`, 'is a Unix domain socket listener, which meshpilot does not implement: this listener is not served', 'MP_UNSUPPORTED');
  return listener['port'] === undefined ? undefined : checkPort(listener['port'], `${path}.port`, issues, unixBind);
}

function checkEgressListeners(value: unknown, issues: IssueList): void {
  if (Array.isArray(value) && value.length === 0) {
    issues.error('spec.egress', 'is empty: add a listener, e.g. egress: [{ hosts: ["./*", "istio-system/*"] }], or remove egress to let the proxy reach every service');
    return;
  }
  const listeners = mapsIn(value, 'spec.egress', 'egress listener', issues);
  const seenPorts = new Map<number, number>();
  let catchAll: number | undefined;
  for (const [index, listener] of listeners) {
    const path = `spec.egress[${index}]`;
    const port = checkEgress(listener, path, issues);
    if (listener['port'] === undefined) {
      if (catchAll !== undefined) issues.error(path, `spec.egress[${catchAll}] already has no port: only one egress listener may leave the port out; merge their hosts`);
      catchAll ??= index;
    } else if (port !== undefined) {
      const earlier = seenPorts.get(port);
      if (earlier !== undefined) issues.error(`${path}.port.number`, `port ${port} is already used by spec.egress[${earlier}]: merge the two listeners' hosts`);
      else seenPorts.set(port, index);
    }
  }
  const last = listeners.at(-1)?.[0];
  if (catchAll !== undefined && last !== undefined && catchAll !== last) {
    issues.error(`spec.egress[${catchAll}]`, 'the egress listener without a port must be the last one: move it to the end');
  }
}

export function validateSidecarSpec(spec: unknown): ValidationIssue[] {
  const issues = new IssueList('MP_RULE_INVALID');
  if (!isFields(spec)) {
    issues.error('spec', `${spec === undefined ? 'is missing' : `must be a map, got ${describeType(spec)}`}: add spec with egress hosts, e.g. egress: [{ hosts: ["./*", "istio-system/*"] }]`);
    return issues.issues;
  }
  issues.issues.push(...checkIstioFields(spec, 'Sidecar', 'spec', 'MP_RULE_INVALID'));
  const selector = mapAt(spec['workloadSelector'], 'spec.workloadSelector', 'workloadSelector: { labels: { app: productpage } }', issues);
  if (selector) {
    const labels = mapAt(selector['labels'], 'spec.workloadSelector.labels', 'labels: { app: productpage }', issues);
    if (!labels || Object.keys(labels).length === 0) {
      issues.warn('spec.workloadSelector', 'has no labels, so it selects every workload in its namespace (as Istio warns): name the pod labels, e.g. labels: { app: productpage }, or remove workloadSelector', 'MP_RULE_WARNING');
    }
    for (const [key, label] of Object.entries(labels ?? {})) {
      if (typeof label !== 'string') issues.error(`spec.workloadSelector.labels.${key}`, `must be a string, got ${describeType(label)}: quote it`);
      else if (key === '' || key.includes('*') || label.includes('*')) issues.error(`spec.workloadSelector.labels.${key}`, `"${key}=${label}" is not a label to select on: a selector takes exact labels, without "*" or an empty key`);
    }
  }
  for (const [index, listener] of mapsIn(spec['ingress'], 'spec.ingress', 'ingress listener', issues)) {
    if (listener['port'] === undefined) issues.error(`spec.ingress[${index}].port`, 'is required: give the port this ingress listener takes, e.g. port: { number: 9080, protocol: HTTP, name: http }');
    else checkPort(listener['port'], `spec.ingress[${index}].port`, issues);
  }
  if (spec['egress'] === undefined && spec['outboundTrafficPolicy'] === undefined && spec['ingress'] === undefined) {
    issues.error('spec.egress', 'is missing, and nothing else is set: add egress hosts, e.g. egress: [{ hosts: ["./*", "istio-system/*"] }]');
  }
  if (spec['egress'] !== undefined) checkEgressListeners(spec['egress'], issues);
  const policy = mapAt(spec['outboundTrafficPolicy'], 'spec.outboundTrafficPolicy', 'outboundTrafficPolicy: { mode: REGISTRY_ONLY }', issues);
  if (policy) {
    checkEnum(policy['mode'], ['ALLOW_ANY', 'REGISTRY_ONLY'], 'spec.outboundTrafficPolicy.mode', issues);
    if (policy['egressProxy'] !== undefined && policy['mode'] !== 'ALLOW_ANY') {
      issues.error('spec.outboundTrafficPolicy.egressProxy', 'is only taken with mode ALLOW_ANY, as in Istio: set mode: ALLOW_ANY or remove egressProxy');
    }
  }
  return issues.issues;
}
