// Istio VirtualService and DestinationRule objects into rule models, validated as Istio's
// admission webhook would: each problem names its field and says how to fix it.
import type { AuthorizationPolicySpec, DestinationRuleSpec, GatewaySpec, PeerAuthenticationSpec, Rule, RuleKind, SidecarSpec, ValidationIssue, VirtualServiceSpec } from '../model/rules.ts';
import type { SourceRef } from '../model/service.ts';
import type { Fields } from './object-fields.ts';
import { describeType, isCidr, isDns1123Label, isFields, isIpAddress, isPortNumber, isWildcardDomain, readMeta } from './object-fields.ts';
import { checkBoolean, checkExportTo, checkLabels, checkStringMatch, isHeaderName, IssueList, mapsIn, stringsIn } from './istio-fields.ts';
import { checkIstioFields } from './istio-schema.ts';
import { checkHeaders, checkHttpRoutePolicies } from './istio-route-policy.ts';
import { validatePeerAuthenticationSpec } from './istio-peer-authentication.ts';
import { validateSidecarSpec } from './istio-sidecar.ts';
import { validateAuthorizationPolicySpec } from './istio-authorization.ts';
import { validateGatewaySpec } from './istio-gateway.ts';
import { checkTrafficPolicy } from './istio-traffic-policy.ts';
import { analyzeVirtualService, hostCovers } from './istio-vs-analysis.ts';

export { checkRe2Regex } from '../model/re2.ts';

export const ISTIO_NETWORKING_GROUP = 'networking.istio.io';
export const ISTIO_NETWORKING_VERSIONS: readonly string[] = ['v1', 'v1beta1', 'v1alpha3'];
export const ISTIO_SECURITY_GROUP = 'security.istio.io';
export const ISTIO_SECURITY_VERSIONS: readonly string[] = ['v1', 'v1beta1'];

function checkMatch(match: Fields, path: string, issues: IssueList): void {
  if (match['uri'] !== undefined) checkStringMatch(match['uri'], `${path}.uri`, true, issues);
  for (const key of ['scheme', 'method', 'authority']) {
    if (match[key] !== undefined) checkStringMatch(match[key], `${path}.${key}`, true, issues);
  }
  for (const mapKey of ['headers', 'queryParams', 'withoutHeaders']) {
    const entries = match[mapKey];
    if (entries === undefined || entries === null) continue;
    if (!isFields(entries)) {
      issues.error(`${path}.${mapKey}`, `must be a map of name to match, got ${describeType(entries)}: write e.g. ${mapKey}: { end-user: { exact: jason } }`);
      continue;
    }
    for (const [name, entry] of Object.entries(entries)) {
      const entryPath = `${path}.${mapKey}.${name}`;
      if (mapKey !== 'queryParams' && !isHeaderName(name)) {
        issues.error(entryPath, `"${name}" is not a valid HTTP header name: use letters, digits and hyphens`);
      }
      checkStringMatch(entry, entryPath, false, issues);
    }
  }
  checkMatchPort(match['port'], `${path}.port`, issues);
  checkLabels(match['sourceLabels'], `${path}.sourceLabels`, issues);
  const sourceNamespace = match['sourceNamespace'];
  if (sourceNamespace !== undefined && (typeof sourceNamespace !== 'string' || !isDns1123Label(sourceNamespace))) {
    issues.error(`${path}.sourceNamespace`, `${describeType(sourceNamespace)} is not a namespace name: use a DNS label such as bookinfo`);
  }
  checkBoolean(match['ignoreUriCase'], `${path}.ignoreUriCase`, issues);
  checkGatewayNames(match['gateways'], `${path}.gateways`, issues);
}

/** Istio's validateGatewayNames: `namespace/name` with DNS labels, or a name of DNS labels (`mesh`, a short name, the legacy `name.namespace`). */
function checkGatewayNames(value: unknown, path: string, issues: IssueList): string[] {
  return stringsIn(value, path, issues).map(([index, name]) => {
    const slash = name.indexOf('/');
    const parts = slash >= 0 ? [name.slice(0, slash), name.slice(slash + 1)] : name.split('.');
    if (!parts.every(isDns1123Label) || name.length > 255) {
      issues.error(`${path}[${index}]`, `"${name}" is not a gateway name: write namespace/name (e.g. istio-system/ingress), a Gateway of this namespace by name, or mesh`);
    }
    return name;
  });
}

/** Port 0 is unset in Istio's proto: the match leaves the port out. */
function checkMatchPort(port: unknown, path: string, issues: IssueList): void {
  if (port !== undefined && port !== 0 && !isPortNumber(port)) issues.error(path, `must be a port number 1..65535, got ${describeType(port)}: fix the number`);
}

function checkHost(host: string, path: string, allowIp: boolean, issues: IssueList): boolean {
  if (host === '') {
    issues.error(path, 'is empty: name a service, e.g. reviews or reviews.default.svc.cluster.local');
    return false;
  }
  if (!isWildcardDomain(host) && !(allowIp && isIpAddress(host))) {
    issues.error(path, `"${host}" is not a valid host: use a lowercase DNS name (letters, digits, "-" and "."), optionally starting with "*."`);
    return false;
  }
  return true;
}

function checkDestination(value: unknown, path: string, issues: IssueList): void {
  if (!isFields(value)) {
    issues.error(path, value === undefined ? 'is missing: add destination: { host: <service> }' : `must be a map, got ${describeType(value)}: write destination: { host: <service> }`);
    return;
  }
  const host = value['host'];
  if (typeof host !== 'string') {
    issues.error(`${path}.host`, host === undefined ? 'is missing: name the service to send traffic to, e.g. host: reviews' : `must be a string, got ${describeType(host)}: quote it`);
  } else if (host === '*') {
    issues.error(`${path}.host`, '"*" is not a destination: name the service to send traffic to, e.g. host: reviews');
  } else {
    checkHost(host, `${path}.host`, false, issues);
  }
  const subset = value['subset'];
  if (subset !== undefined && (typeof subset !== 'string' || !isDns1123Label(subset))) {
    issues.error(`${path}.subset`, `${JSON.stringify(subset)} is not a valid subset name: use lowercase letters, digits and "-" (a DNS label), as in the DestinationRule`);
  }
  const port = value['port'];
  if (port !== undefined) {
    if (!isFields(port)) {
      issues.error(`${path}.port`, `must be a map, got ${describeType(port)}: write port: { number: 9080 }`);
    } else {
      if (!isPortNumber(port['number'])) {
        issues.error(`${path}.port.number`, `must be a port number 1..65535, got ${describeType(port['number'])}: write the service port, e.g. number: 9080`);
      }
    }
  }
}

/** Istio's weights are int32 and relative: each destination gets weight / (sum of weights). */
const MAX_WEIGHT = 2 ** 31 - 1;

function checkRouteDestinations(routeValue: unknown, path: string, issues: IssueList): void {
  const destinations = mapsIn(routeValue, path, 'route destination', issues);
  let total = 0;
  let weightsValid = true;
  for (const [index, destination] of destinations) {
    const itemPath = `${path}[${index}]`;
    checkDestination(destination['destination'], `${itemPath}.destination`, issues);
    checkHeaders(destination['headers'], `${itemPath}.headers`, issues, 'destination');
    const weight = destination['weight'];
    if (weight === undefined) continue;
    if (typeof weight !== 'number' || !Number.isInteger(weight) || weight < 0 || weight > MAX_WEIGHT) {
      issues.error(`${itemPath}.weight`, `must be a whole number from 0 up, got ${describeType(weight)}: weights are relative (49 and 51 split 49:51)`);
      weightsValid = false;
    } else {
      total += weight;
    }
  }
  const count = Array.isArray(routeValue) ? routeValue.length : 0;
  // As Istio: with several destinations, at least one must get traffic; the split is relative.
  if (weightsValid && count > 1 && total === 0) {
    const where = path.replace(/^spec\./, '');
    issues.error(path, `the weights of ${where} sum to 0, so no destination gets traffic: give at least one destination a positive weight`);
  }
}

/** Istio's rules for `delegate`: a root route only names its delegate, and a delegate never delegates again. */
function checkDelegate(route: Fields, path: string, inDelegate: boolean, issues: IssueList): void {
  const delegate = route['delegate'];
  if (delegate === undefined || delegate === null) return;
  if (inDelegate) {
    issues.error(`${path}.delegate`, 'a delegate VirtualService (one without hosts) cannot delegate again: move these routes into it, or point the root at the last VirtualService');
    return;
  }
  if (!isFields(delegate)) {
    issues.error(`${path}.delegate`, `must be a map, got ${describeType(delegate)}: write delegate: { name: reviews-routes, namespace: shop }`);
    return;
  }
  for (const key of ['name', 'namespace']) {
    const value = delegate[key];
    if (value !== undefined && typeof value !== 'string') issues.error(`${path}.delegate.${key}`, `must be a string, got ${describeType(value)}: quote it`);
  }
  if (typeof delegate['name'] !== 'string' || delegate['name'] === '') {
    issues.error(`${path}.delegate.name`, 'is required: name the VirtualService (without hosts) that holds the routes');
  }
  if (route['route'] !== undefined) issues.error(`${path}.route`, 'a route with delegate must not have route: the delegate VirtualService says where its traffic goes');
  if (route['redirect'] !== undefined) issues.error(`${path}.redirect`, 'a route with delegate must not have redirect: put the redirect in the delegate VirtualService');
}

function checkHttpRoute(route: Fields, path: string, inDelegate: boolean, issues: IssueList): void {
  for (const [index, match] of mapsIn(route['match'], `${path}.match`, 'match', issues)) {
    checkMatch(match, `${path}.match[${index}]`, issues);
  }
  checkDelegate(route, path, inDelegate, issues);
  const routeValue = route['route'];
  const hasRoute = Array.isArray(routeValue) && routeValue.length > 0;
  const answersItself = route['redirect'] !== undefined || route['directResponse'] !== undefined || route['delegate'] !== undefined;
  if (hasRoute && route['redirect'] !== undefined) {
    issues.error(`${path}.redirect`, 'an HTTP route cannot have both route and redirect: keep one of them');
  } else if (hasRoute && route['directResponse'] !== undefined) {
    issues.error(`${path}.directResponse`, 'an HTTP route cannot have both route and directResponse: keep one of them');
  } else if (!hasRoute && !answersItself) {
    issues.error(`${path}.route`, 'is empty: add at least one destination, e.g. route: [{ destination: { host: reviews } }]');
  }
  checkRouteDestinations(routeValue, `${path}.route`, issues);
  if (route['mirror'] !== undefined) checkDestination(route['mirror'], `${path}.mirror`, issues);
  for (const [index, mirror] of mapsIn(route['mirrors'], `${path}.mirrors`, 'mirror policy', issues)) {
    checkDestination(mirror['destination'], `${path}.mirrors[${index}].destination`, issues);
  }
  checkHttpRoutePolicies(route, path, issues);
}

function checkTcpRoute(route: Fields, path: string, issues: IssueList): void {
  for (const [index, match] of mapsIn(route['match'], `${path}.match`, 'match', issues)) {
    const matchPath = `${path}.match[${index}]`;
    checkMatchPort(match['port'], `${matchPath}.port`, issues);
    checkLabels(match['sourceLabels'], `${matchPath}.sourceLabels`, issues);
    checkGatewayNames(match['gateways'], `${matchPath}.gateways`, issues);
    for (const [subnetIndex, subnet] of stringsIn(match['destinationSubnets'], `${matchPath}.destinationSubnets`, issues)) {
      if (!isIpAddress(subnet) && !isCidr(subnet)) issues.error(`${matchPath}.destinationSubnets[${subnetIndex}]`, `"${subnet}" is not an IP address or CIDR block, e.g. 10.1.0.0/16`);
    }
  }
  const routeValue = route['route'];
  if (!Array.isArray(routeValue) || routeValue.length === 0) {
    issues.error(`${path}.route`, 'is empty: add at least one destination, e.g. route: [{ destination: { host: mongo } }]');
  }
  checkRouteDestinations(routeValue, `${path}.route`, issues);
}

/** Validated as Istio does; gateways passing TLS through serve them, sidecars do not (MP_UNSUPPORTED says so). */
function checkTlsRoute(route: Fields, path: string, hosts: readonly string[], issues: IssueList): void {
  const matches = mapsIn(route['match'], `${path}.match`, 'TLS match', issues);
  if (matches.length === 0) issues.error(`${path}.match`, 'is required: a TLS route matches on sniHosts, e.g. match: [{ sniHosts: [api.example.com] }]');
  for (const [index, match] of matches) {
    const matchPath = `${path}.match[${index}]`;
    const sniHosts = stringsIn(match['sniHosts'], `${matchPath}.sniHosts`, issues);
    if (sniHosts.length === 0) issues.error(`${matchPath}.sniHosts`, 'is required: list the server names this route takes');
    for (const [sniIndex, sni] of sniHosts) {
      if (!checkHost(sni, `${matchPath}.sniHosts[${sniIndex}]`, false, issues)) continue;
      if (!hosts.some((host) => hostCovers(host, sni) || hostCovers(sni, host))) {
        issues.error(`${matchPath}.sniHosts[${sniIndex}]`, `"${sni}" is not one of the rule's hosts (${hosts.join(', ')}): an SNI host must match one of them`);
      }
    }
    checkMatchPort(match['port'], `${matchPath}.port`, issues);
    checkGatewayNames(match['gateways'], `${matchPath}.gateways`, issues);
  }
  const routeValue = route['route'];
  if (!Array.isArray(routeValue) || routeValue.length === 0) issues.error(`${path}.route`, 'is empty: add at least one destination, e.g. route: [{ destination: { host: api.example.com } }]');
  checkRouteDestinations(routeValue, `${path}.route`, issues);
}

/** A VirtualService without hosts is a delegate: it only holds http routes for the roots that name it. */
function checkDelegateShape(spec: Fields, issues: IssueList): void {
  const why = 'a VirtualService without hosts is a delegate, which takes these from the root that delegates to it';
  const gateways = spec['gateways'];
  if (Array.isArray(gateways) && gateways.length > 0) issues.error('spec.gateways', `${why}: remove gateways, or list hosts to make this a root`);
  for (const key of ['tcp', 'tls']) {
    const routes = spec[key];
    if (Array.isArray(routes) && routes.length > 0) issues.error(`spec.${key}`, `a VirtualService without hosts is a delegate, which can only hold http routes: list hosts, or move the ${key} routes to a VirtualService with hosts`);
  }
  if (spec['http'] === undefined || spec['http'] === null) issues.error('spec.hosts', 'is empty: list the hosts this rule routes, e.g. hosts: [reviews] (a VirtualService without hosts is a delegate and needs http routes)');
}

export function validateVirtualServiceSpec(spec: unknown, namespace = 'default'): ValidationIssue[] {
  const issues = new IssueList('MP_RULE_INVALID');
  if (!isFields(spec)) {
    issues.error('spec', `${spec === undefined ? 'is missing' : `must be a map, got ${describeType(spec)}`}: add spec with hosts and http routes`);
    return issues.issues;
  }
  issues.issues.push(...checkIstioFields(spec, 'VirtualService', 'spec', 'MP_RULE_INVALID'));
  const gateways = checkGatewayNames(spec['gateways'], 'spec.gateways', issues);
  const appliesToMesh = gateways.length === 0 || gateways.includes('mesh');
  const hostsValue = spec['hosts'];
  const hosts = stringsIn(hostsValue, 'spec.hosts', issues);
  const isDelegate = hostsValue === undefined || hostsValue === null || (Array.isArray(hostsValue) && hostsValue.length === 0);
  if (isDelegate) checkDelegateShape(spec, issues);
  for (const [index, host] of hosts) {
    if (!checkHost(host, `spec.hosts[${index}]`, true, issues)) continue;
    if (host === '*' && appliesToMesh) {
      issues.error(`spec.hosts[${index}]`, 'the wildcard host * is not allowed for rules bound to the mesh: name the services, or bind the rule to a gateway');
    }
  }
  if (!isDelegate && spec['http'] === undefined && spec['tcp'] === undefined && spec['tls'] === undefined) {
    issues.error('spec.http', 'is missing: a VirtualService needs http, tcp or tls routes; add http: [{ route: [...] }]');
  }
  for (const [index, route] of mapsIn(spec['http'], 'spec.http', 'HTTP route', issues)) {
    checkHttpRoute(route, `spec.http[${index}]`, isDelegate, issues);
  }
  for (const [index, route] of mapsIn(spec['tcp'], 'spec.tcp', 'TCP route', issues)) {
    checkTcpRoute(route, `spec.tcp[${index}]`, issues);
  }
  const tlsRoutes = mapsIn(spec['tls'], 'spec.tls', 'TLS route', issues);
  for (const [index, route] of tlsRoutes) {
    checkTlsRoute(route, `spec.tls[${index}]`, hosts.map(([, host]) => host), issues);
  }
  if (tlsRoutes.length > 0 && appliesToMesh) issues.warn('spec.tls', 'TLS routes (by SNI) are served by gateways that pass TLS through, not by sidecars: sidecars ignore them', 'MP_UNSUPPORTED');
  analyzeVirtualService(spec, hosts, issues);
  checkRuleExportTo(spec, namespace, issues);
  return issues.issues;
}

function checkRuleExportTo(spec: Fields, namespace: string, issues: IssueList): void {
  const exportTo = stringsIn(spec['exportTo'], 'spec.exportTo', issues).map(([, entry]) => entry);
  checkExportTo(exportTo, 'spec.exportTo', namespace, false, (path, message) => {
    issues.error(path, message);
  });
}

export function validateDestinationRuleSpec(spec: unknown, namespace = 'default'): ValidationIssue[] {
  const issues = new IssueList('MP_RULE_INVALID');
  if (!isFields(spec)) {
    issues.error('spec', `${spec === undefined ? 'is missing' : `must be a map, got ${describeType(spec)}`}: add spec with host and subsets`);
    return issues.issues;
  }
  issues.issues.push(...checkIstioFields(spec, 'DestinationRule', 'spec', 'MP_RULE_INVALID'));
  const host = spec['host'];
  if (typeof host !== 'string' || host === '') {
    issues.error('spec.host', host === undefined || host === '' ? 'is required: name the service this rule configures, e.g. host: reviews' : `must be a string, got ${describeType(host)}: quote it`);
  } else {
    checkHost(host, 'spec.host', false, issues);
  }
  const seen = new Map<string, number>();
  for (const [index, subset] of mapsIn(spec['subsets'], 'spec.subsets', 'subset', issues)) {
    const path = `spec.subsets[${index}]`;
    const name = subset['name'];
    if (typeof name !== 'string' || name === '') {
      issues.error(`${path}.name`, 'is required: give the subset a name routes can refer to, e.g. name: v1');
    } else if (!isDns1123Label(name)) {
      issues.error(`${path}.name`, `"${name}" is not a valid subset name: use lowercase letters, digits and "-" (a DNS label)`);
    } else if (seen.has(name)) {
      issues.error(`${path}.name`, `subset "${name}" is already defined at spec.subsets[${seen.get(name) ?? 0}]: give each subset a unique name`);
    } else {
      seen.set(name, index);
    }
    checkLabels(subset['labels'], `${path}.labels`, issues);
    checkTrafficPolicy(subset['trafficPolicy'], `${path}.trafficPolicy`, issues);
    const subsetPolicy = subset['trafficPolicy'];
    if (isFields(subsetPolicy) && isFields(subsetPolicy['tls']) && subsetPolicy['tls']['mode'] === undefined) {
      issues.warn(`${path}.trafficPolicy.tls.mode`, 'is not set, so it is DISABLE: say the mode explicitly');
    }
  }
  checkTrafficPolicy(spec['trafficPolicy'], 'spec.trafficPolicy', issues);
  checkRuleExportTo(spec, namespace, issues);
  return issues.issues;
}

export interface RuleConversion {
  /** Present when no issue is an error; warnings ride along in `rule.meta.warnings`. */
  readonly rule?: Rule;
  readonly issues: readonly ValidationIssue[];
}

const SPEC_VALIDATORS: Readonly<Record<RuleKind, (spec: unknown, namespace: string, name?: string) => ValidationIssue[]>> = {
  VirtualService: validateVirtualServiceSpec,
  DestinationRule: validateDestinationRuleSpec,
  Sidecar: validateSidecarSpec,
  PeerAuthentication: validatePeerAuthenticationSpec,
  AuthorizationPolicy: validateAuthorizationPolicySpec,
  Gateway: validateGatewaySpec,
};

/** Validates and converts one rule object; the spec is kept exactly as written. */
export function convertIstioRule(kind: RuleKind, object: Fields, source: SourceRef): RuleConversion {
  const meta = readMeta(object);
  const issues: ValidationIssue[] = [];
  if (meta.name === undefined) {
    issues.push({ code: 'MP_OBJECT_INVALID', severity: 'error', path: 'metadata.name', message: 'is missing: give the rule a name (metadata.name)' });
  }
  const spec = object['spec'];
  issues.push(...SPEC_VALIDATORS[kind](spec, meta.namespace, meta.name));
  if (meta.name === undefined || issues.some((issue) => issue.severity === 'error')) return { issues };
  const warnings = issues.filter((issue) => issue.severity === 'warning');
  const ruleMeta = {
    name: meta.name,
    namespace: meta.namespace,
    source,
    ...(meta.creationTimestamp !== undefined ? { creationTimestamp: meta.creationTimestamp } : {}),
    ...(warnings.length > 0 ? { warnings } : {}),
  };
  const rule: Rule =
    kind === 'VirtualService'
      ? { meta: { ...ruleMeta, kind }, spec: spec as VirtualServiceSpec }
      : kind === 'DestinationRule'
        ? { meta: { ...ruleMeta, kind }, spec: spec as DestinationRuleSpec }
        : kind === 'Sidecar'
          ? { meta: { ...ruleMeta, kind }, spec: spec as SidecarSpec }
          : kind === 'PeerAuthentication'
            ? { meta: { ...ruleMeta, kind }, spec: (spec ?? {}) as PeerAuthenticationSpec }
            : kind === 'Gateway'
              ? { meta: { ...ruleMeta, kind }, spec: spec as GatewaySpec }
              : { meta: { ...ruleMeta, kind }, spec: (spec ?? {}) as AuthorizationPolicySpec };
  return { rule, issues };
}
