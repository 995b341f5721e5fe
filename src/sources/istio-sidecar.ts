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
    issues.warn(path, `"${dnsName}" is a short name, and Sidecar hosts are compared with full names: write ${dnsName}.${namespace === '.' || namespace === '*' || namespace === '~' ? '<namespace>' : namespace}.svc.cluster.local`);
  }
}

function checkPort(value: unknown, path: string, issues: IssueList): number | undefined {
  const port = mapAt(value, path, 'port: { number: 9080, protocol: HTTP, name: http }', issues);
  if (!port) return undefined;
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
  return listener['port'] === undefined ? undefined : checkPort(listener['port'], `${path}.port`, issues);
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
      issues.error('spec.workloadSelector.labels', 'is empty: name the pod labels this Sidecar applies to (e.g. labels: { app: productpage }), or remove workloadSelector to apply it to the whole namespace');
    }
    for (const [key, label] of Object.entries(labels ?? {})) {
      if (typeof label !== 'string') issues.error(`spec.workloadSelector.labels.${key}`, `must be a string, got ${describeType(label)}: quote it`);
    }
  }
  if (spec['egress'] === undefined && spec['outboundTrafficPolicy'] === undefined && spec['ingress'] === undefined) {
    issues.error('spec.egress', 'is missing, and nothing else is set: add egress hosts, e.g. egress: [{ hosts: ["./*", "istio-system/*"] }]');
  }
  if (spec['egress'] !== undefined) checkEgressListeners(spec['egress'], issues);
  const policy = mapAt(spec['outboundTrafficPolicy'], 'spec.outboundTrafficPolicy', 'outboundTrafficPolicy: { mode: REGISTRY_ONLY }', issues);
  if (policy) {
    checkEnum(policy['mode'], ['ALLOW_ANY', 'REGISTRY_ONLY'], 'spec.outboundTrafficPolicy.mode', issues);
  }
  return issues.issues;
}
