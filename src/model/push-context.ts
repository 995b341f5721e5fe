// The immutable snapshot every generator reads: services, endpoints and rules with their
// indexes, short hosts resolved as Istio resolves them, and each rule's problems.
import type { MeshConfig } from './mesh-config.ts';
import { DEFAULT_MESH_CONFIG, rootNamespaceOf } from './mesh-config.ts';
import type { Proxy } from './proxy.ts';
import type { ObjectWarnings, RejectedObject, SourceSnapshot } from './store.ts';
import type { GatewayObjectStatus, RouteStatus } from './route-status.ts';
import { indexDestinationRules } from './destination-rules.ts';
import type { HttpRouteOrigin } from './delegation.ts';
import { isDelegate, mergeDelegates } from './delegation.ts';
import { referenceIssues, type DestinationRef } from './rule-references.ts';
import type { Destination, DestinationRule, HttpMatchRequest, HttpRoute, L4MatchAttributes, Rule, Sidecar, TcpRoute, TlsMatchAttributes, TlsRoute, ValidationIssue, VirtualService } from './rules.ts';
import { isAuthorizationPolicy, isDestinationRule, isGateway, isPeerAuthentication, isSidecar, isVirtualService, originLabels, ruleKey } from './rules.ts';
import type { GatewayIndex, MergedGateway, TargetPortIndex } from './gateways.ts';
import { gatewayConflictIssues, gatewayFor, workloadAddresses, type GatewayWorkload } from './gateway-selection.ts';
import { indexGateways, indexTargetPorts, MESH_GATEWAY, resolveGatewayName } from './gateways.ts';
import type { AppliedPolicy } from './authorization.ts';
import { indexAuthorizationPolicies } from './authorization.ts';
import type { Endpoint, Service } from './service.ts';
import { resolveShortName } from './service.ts';
import { indexSidecars } from './sidecar.ts';
import { indexWorkloads } from './workload-labels.ts';
import type { CredentialIndex } from './credentials.ts';
import { indexCredentials } from './credentials.ts';
import { gatewayCredentialIssues } from './gateway-credentials.ts';
import type { PeerAuthenticationIndex } from './peer-authentication.ts';
import { indexPeerAuthentications } from './peer-authentication.ts';
import { mtlsConflictIssues } from './mtls-conflicts.ts';
import { ineffectiveRuleIssues } from './ineffective-rules.ts';
import { effectiveExportTo, EXPORT_PRIVATE, EXPORT_PUBLIC, isVisibleTo, PUBLIC_VISIBILITY, visibilityOf } from './visibility.ts';
import type { VisibleVirtualService } from './virtual-service-views.ts';
import { ANY_OTHER_NAMESPACE, claimHosts, distinctViewNamespaces, virtualServicesSeenFrom } from './virtual-service-views.ts';

export interface ResolvedDestination extends Destination {
  /** FQDN of the destination host. */
  readonly host: string;
}

export interface ResolvedVirtualService {
  readonly rule: VirtualService;
  /** Hosts with short names qualified in the rule's namespace. */
  readonly hosts: readonly string[];
  /** The gateways it binds to, as `namespace/name` (and `mesh`): `[mesh]` when it names none. */
  readonly gateways: readonly string[];
  readonly http: readonly HttpRoute[];
  readonly tcp: readonly TcpRoute[];
  /** TLS routes by SNI, which gateways passing TLS through serve. */
  readonly tls: readonly TlsRoute[];
  /** For a root with delegates: where each of `http` was written (else each is the rule's own, by index). */
  readonly origins?: readonly HttpRouteOrigin[];
}

export interface RuleStatus {
  readonly rule: Rule;
  readonly issues: readonly ValidationIssue[];
  /** False when a conflict or error keeps the rule from being applied. */
  readonly applied: boolean;
}

export interface PushContext {
  /** Monotonic build number within this process (not a content version). */
  readonly sequence: number;
  readonly builtAt: Date;
  readonly services: readonly Service[];
  readonly serviceByHost: ReadonlyMap<string, Service>;
  /** Ready and not-ready endpoints of each service hostname. */
  readonly endpointsByHost: ReadonlyMap<string, readonly Endpoint[]>;
  /**
   * The VirtualService that owns each host (the oldest one when several claim it), also under
   * the hostname of every service its wildcard hosts cover when no exact rule claims it.
   */
  readonly virtualServiceByHost: ReadonlyMap<string, ResolvedVirtualService>;
  /** Each service's DestinationRule as its own namespace sees it (subsets are built from these). */
  readonly destinationRuleByHost: ReadonlyMap<string, DestinationRule>;
  /** The DestinationRule a proxy in `proxyNamespace` applies to `host`, by Istio's precedence. */
  destinationRuleFor(host: string, proxyNamespace: string | undefined): DestinationRule | undefined;
  readonly ruleStatus: ReadonlyMap<string, RuleStatus>;
  /** The Sidecar that limits what `proxy` sees (Istio's precedence); undefined when none applies. */
  sidecarFor(proxy: Pick<Proxy, 'type' | 'namespace' | 'labels' | 'ipAddresses'>): Sidecar | undefined;
  /** The labels workload selectors match the proxy by: its node metadata's, else its pod's (`workload-labels.ts`). */
  workloadLabels(proxy: Pick<Proxy, 'namespace' | 'labels' | 'ipAddresses'>): Readonly<Record<string, string>>;
  /** The AuthorizationPolicies that apply to `proxy`'s workload (mesh, namespace, selector), oldest first. */
  authorizationPoliciesFor(proxy: Pick<Proxy, 'type' | 'namespace' | 'labels' | 'ipAddresses'>): readonly AppliedPolicy[];
  readonly rejected: readonly RejectedObject[];
  /** Served objects other than rules, with their warnings. */
  readonly objectWarnings: readonly ObjectWarnings[];
  /** Gateway API routes (GAMMA) with their status per parent. */
  readonly routeStatuses: readonly RouteStatus[];
  readonly gatewayStatuses: readonly GatewayObjectStatus[];
  /** Mesh-wide settings (`--mesh-config`), Istio's defaults when none is given. */
  readonly meshConfig: MeshConfig;
  /** PeerAuthentication: the mTLS mode each workload port accepts. */
  readonly peerAuthentication: PeerAuthenticationIndex;
  /** Istio Gateways, oldest first, and which select a gateway proxy. */
  readonly gateways: GatewayIndex;
  /** Kubernetes TLS Secrets by namespace and name, what gateways' credentialName names. */
  readonly credentials: CredentialIndex;
  /** The Gateways that select `proxy`, merged into its listeners; undefined for a proxy no Gateway selects. */
  gatewayFor(proxy: Pick<Proxy, 'type' | 'namespace' | 'labels' | 'ipAddresses'>): MergedGateway | undefined;
  /** The VirtualServices bound to `gateway` (`namespace/name`) that a gateway proxy in `proxyNamespace` sees, in Istio's order. */
  virtualServicesForGateway(gateway: string, proxyNamespace: string | undefined): readonly ResolvedVirtualService[];
  /** Per-snapshot memo for generator output shared by many proxies. */
  memo<T>(key: string, build: () => T): T;
  /**
   * What proxies in `namespace` may see, by exportTo: visible services, the VirtualServices
   * they see for each host, their DestinationRules' subsets. The push itself when nothing is
   * hidden from any namespace; a view returns itself.
   */
  viewFrom(namespace: string | undefined): PushContext;
}

/** Istio's order for rules that compete: oldest first, then namespace/name. */
function compareRules(a: Rule, b: Rule): number {
  const at = a.meta.creationTimestamp ?? '';
  const bt = b.meta.creationTimestamp ?? '';
  if (at !== bt) return at < bt ? -1 : 1;
  return ruleKey(a.meta) < ruleKey(b.meta) ? -1 : ruleKey(a.meta) > ruleKey(b.meta) ? 1 : 0;
}

export function resolveDestination(destination: Destination, namespace: string): ResolvedDestination {
  return { ...destination, host: resolveShortName(destination.host, namespace) };
}

/** Match gateways as `namespace/name`, as Istio resolves them before it compares. */
function resolveMatchGateways<M extends HttpMatchRequest | L4MatchAttributes | TlsMatchAttributes>(matches: readonly M[] | undefined, namespace: string): { match?: readonly M[] } {
  if (!matches?.some((m) => m.gateways && m.gateways.length > 0)) return matches ? { match: matches } : {};
  return { match: matches.map((m) => (m.gateways ? { ...m, gateways: m.gateways.map((g) => resolveGatewayName(g, namespace)) } : m)) };
}

function resolveVirtualService(rule: VirtualService): ResolvedVirtualService {
  const namespace = rule.meta.namespace;
  const http = (rule.spec.http ?? []).map((route): HttpRoute => ({
    ...route,
    ...resolveMatchGateways(route.match, namespace),
    ...(route.route ? { route: route.route.map((d) => ({ ...d, destination: resolveDestination(d.destination, namespace) })) } : {}),
    ...(route.mirror ? { mirror: resolveDestination(route.mirror, namespace) } : {}),
    ...(route.mirrors
      ? { mirrors: route.mirrors.map((m) => (m.destination ? { ...m, destination: resolveDestination(m.destination, namespace) } : m)) }
      : {}),
  }));
  const tcp = (rule.spec.tcp ?? []).map((route): TcpRoute => ({
    ...route,
    ...resolveMatchGateways(route.match, namespace),
    ...(route.route ? { route: route.route.map((d) => ({ ...d, destination: resolveDestination(d.destination, namespace) })) } : {}),
  }));
  const tls = (rule.spec.tls ?? []).map((route): TlsRoute => ({
    ...route,
    ...resolveMatchGateways(route.match, namespace),
    ...(route.route ? { route: route.route.map((d) => ({ ...d, destination: resolveDestination(d.destination, namespace) })) } : {}),
  }));
  const written = rule.spec.gateways ?? [];
  const gateways = written.length === 0 ? [MESH_GATEWAY] : [...new Set(written.map((g) => resolveGatewayName(g, namespace)))];
  return { rule, hosts: (rule.spec.hosts ?? []).map((host) => resolveShortName(host, namespace)), gateways, http, tcp, tls };
}

function appliesToMesh(rule: VirtualService): boolean {
  const gateways = rule.spec.gateways;
  return !gateways || gateways.length === 0 || gateways.includes('mesh');
}

function destinationRefs(vs: ResolvedVirtualService): DestinationRef[] {
  const refs: DestinationRef[] = [];
  vs.http.forEach((route, i) => {
    route.route?.forEach((target, j) => refs.push({ destination: target.destination, path: `spec.http[${i}].route[${j}].destination` }));
    if (route.mirror) refs.push({ destination: route.mirror, path: `spec.http[${i}].mirror` });
    route.mirrors?.forEach((m, j) => {
      if (m.destination) refs.push({ destination: m.destination, path: `spec.http[${i}].mirrors[${j}].destination` });
    });
  });
  vs.tcp.forEach((route, i) => {
    route.route?.forEach((target, j) => refs.push({ destination: target.destination, path: `spec.tcp[${i}].route[${j}].destination` }));
  });
  vs.tls.forEach((route, i) => {
    route.route?.forEach((target, j) => refs.push({ destination: target.destination, path: `spec.tls[${i}].route[${j}].destination` }));
  });
  return refs;
}

function referenceIssuesOf(
  vs: ResolvedVirtualService,
  serviceByHost: ReadonlyMap<string, Service>,
  destinationRuleFor: (host: string, proxyNamespace: string | undefined) => DestinationRule | undefined,
): ValidationIssue[] {
  return referenceIssues(destinationRefs(vs), serviceByHost, (host) => destinationRuleFor(host, vs.rule.meta.namespace));
}

/** What `rule` refers to that `push` lacks (the rule need not be part of `push`). */
export function virtualServiceReferenceIssues(push: PushContext, rule: VirtualService): ValidationIssue[] {
  return referenceIssuesOf(resolveVirtualService(rule), push.serviceByHost, (host, proxyNamespace) => push.destinationRuleFor(host, proxyNamespace));
}

let sequence = 0;

export function buildPushContext(snapshot: SourceSnapshot, meshConfig: MeshConfig = DEFAULT_MESH_CONFIG): PushContext {
  const services = [...snapshot.services].sort((a, b) => (a.hostname < b.hostname ? -1 : a.hostname > b.hostname ? 1 : 0));
  const serviceByHost = new Map(services.map((s) => [s.hostname, s]));

  const endpointsByHost = new Map<string, Endpoint[]>();
  for (const endpoint of snapshot.endpoints) {
    const list = endpointsByHost.get(endpoint.serviceHostname);
    if (list) list.push(endpoint);
    else endpointsByHost.set(endpoint.serviceHostname, [endpoint]);
  }
  for (const list of endpointsByHost.values()) {
    list.sort((a, b) => (a.address === b.address ? a.port - b.port : a.address < b.address ? -1 : 1));
  }

  const rules = [...snapshot.rules].sort(compareRules);
  const ruleStatus = new Map<string, RuleStatus>();
  const rootNamespace = rootNamespaceOf(meshConfig);
  const drDefault = meshConfig.defaultExportTo?.destinationRule ?? [];
  const destinationRules = indexDestinationRules(rules.filter(isDestinationRule), ruleStatus, rootNamespace, drDefault);
  const destinationRuleByHost = new Map<string, DestinationRule>();
  for (const service of services) {
    const rule = destinationRules.lookup(service.hostname, service.namespace, service.namespace);
    if (rule) destinationRuleByHost.set(service.hostname, rule);
  }
  const destinationRuleFor = (host: string, proxyNamespace: string | undefined): DestinationRule | undefined => {
    const service = serviceByHost.get(host);
    return destinationRules.lookup(host, proxyNamespace ?? service?.namespace ?? '', service?.namespace ?? '');
  };

  const serviceVisibility = new Map(services.map((s) => [s.hostname, visibilityOf(effectiveExportTo(s.exportTo, meshConfig, 'service'), s.namespace, 'service')]));
  const workloads = indexWorkloads(snapshot.endpoints);
  const gateways = indexGateways(rules.filter(isGateway), workloads);
  // Which pod port each Service port of a workload reaches: built at most once a push, and only with Gateways.
  let targetPorts: TargetPortIndex | undefined;
  const targetPortIndex = (): TargetPortIndex => (targetPorts ??= indexTargetPorts(services, endpointsByHost));
  const { mesh: virtualServices, gateway: gatewayVirtualServices } = indexVirtualServices(rules.filter(isVirtualService), meshConfig, serviceByHost, destinationRuleFor, ruleStatus, gateways);
  const publicServices = services.filter((s) => serviceVisibility.get(s.hostname)?.public !== false);
  const restricted =
    publicServices.length !== services.length ||
    virtualServices.some((entry) => !entry.visibility.public || entry.vs.rule.meta.origin !== undefined) ||
    drDefault.includes(EXPORT_PRIVATE) ||
    rules.some((rule) => isDestinationRule(rule) && (servedElsewhere(rule, serviceByHost, rootNamespace) || (rule.spec.exportTo ?? []).some((to) => to !== EXPORT_PUBLIC)));
  // Without exportTo limits every namespace sees the same; otherwise the push holds every rule, oldest first (admin views).
  const virtualServiceByHost = restricted
    ? claimHosts(virtualServices.map((entry) => entry.vs), services)
    : claimHosts(virtualServicesSeenFrom(virtualServices, ANY_OTHER_NAMESPACE), services);
  const sidecars = indexSidecars(rules.filter(isSidecar), rootNamespace, workloads, ruleStatus);
  const peerAuthentication = indexPeerAuthentications(rules.filter(isPeerAuthentication), rootNamespace, workloads, ruleStatus);
  for (const [key, status] of ruleStatus) {
    if (!isDestinationRule(status.rule) || !status.applied) continue;
    const conflicts = mtlsConflictIssues(status.rule, services, endpointsByHost, peerAuthentication);
    if (conflicts.length > 0) ruleStatus.set(key, { ...status, issues: [...status.issues, ...conflicts] });
  }
  const credentials = indexCredentials(snapshot.credentials ?? []);
  const authorization = indexAuthorizationPolicies(rules.filter(isAuthorizationPolicy), rootNamespace, workloads, ruleStatus);
  const gatewayWorkloads = gateways.gateways.length > 0 ? workloadAddresses(endpointsByHost) : new Map<string, GatewayWorkload>();
  for (const gateway of gateways.gateways) {
    const issues = [...gatewayConflictIssues(gateway, gateways, targetPortIndex(), gatewayWorkloads), ...gatewayCredentialIssues(gateway, credentials, gatewayWorkloads)];
    ruleStatus.set(ruleKey(gateway.meta), { rule: gateway, issues, applied: true });
  }
  for (const [key, status] of ruleStatus) {
    const ineffective = ineffectiveRuleIssues(status.rule, services, endpointsByHost, rootNamespace, gateways);
    if (ineffective.length > 0) ruleStatus.set(key, { ...status, issues: [...status.issues, ...ineffective] });
  }

  const push: PushContext = {
    sequence: ++sequence,
    builtAt: new Date(),
    services,
    serviceByHost,
    endpointsByHost,
    virtualServiceByHost,
    destinationRuleByHost,
    destinationRuleFor,
    ruleStatus,
    sidecarFor: (proxy) => sidecars.forProxy(proxy),
    workloadLabels: (proxy) => workloads.labelsOf(proxy),
    authorizationPoliciesFor: (proxy) => authorization.forProxy(proxy),
    rejected: snapshot.rejected,
    objectWarnings: snapshot.warnings ?? [],
    routeStatuses: snapshot.routeStatuses ?? [],
    gatewayStatuses: snapshot.gatewayStatuses ?? [],
    meshConfig,
    peerAuthentication,
    gateways,
    credentials,
    gatewayFor: (proxy) => gatewayFor(push, proxy, targetPortIndex()),
    virtualServicesForGateway: (gateway, proxyNamespace) =>
      push.memo(`gateway-virtual-services:${gateway}:${proxyNamespace ?? ''}`, () =>
        virtualServicesSeenFrom(
          gatewayVirtualServices.filter((entry) => entry.vs.gateways.includes(gateway)),
          proxyNamespace ?? ANY_OTHER_NAMESPACE,
        ),
      ),
    memo: memoizer(),
    viewFrom: (namespace) => {
      if (!restricted) return push;
      const seenFrom = namespace ?? ANY_OTHER_NAMESPACE;
      return push.memo(`namespace-view:${seenFrom}`, () => {
        const visible = services.filter((s) => isVisibleTo(serviceVisibility.get(s.hostname) ?? PUBLIC_VISIBILITY, seenFrom));
        return namespaceView(push, seenFrom, visible, claimHosts(virtualServicesSeenFrom(virtualServices, seenFrom), visible));
      });
    },
  };
  return push;
}

/** A rule some namespaces apply and others not: one outside the root namespace for a host not (only) its own namespace's. */
function servedElsewhere(rule: DestinationRule, serviceByHost: ReadonlyMap<string, Service>, rootNamespace: string): boolean {
  const namespace = rule.meta.namespace;
  if (namespace === rootNamespace) return false;
  const host = resolveShortName(rule.spec.host, namespace);
  return host.includes('*') || (serviceByHost.get(host)?.namespace ?? namespace) !== namespace;
}

/** A narrower push for one namespace; DestinationRules (and so subsets) are those the namespace sees. */
function namespaceView(push: PushContext, namespace: string, services: readonly Service[], virtualServiceByHost: ReadonlyMap<string, ResolvedVirtualService>): PushContext {
  const destinationRuleByHost = new Map<string, DestinationRule>();
  for (const service of services) {
    const rule = push.destinationRuleFor(service.hostname, namespace);
    if (rule) destinationRuleByHost.set(service.hostname, rule);
  }
  const view: PushContext = {
    ...push,
    services,
    serviceByHost: new Map(services.map((s) => [s.hostname, s])),
    virtualServiceByHost,
    destinationRuleByHost,
    memo: memoizer(),
    viewFrom: () => view,
  };
  return view;
}

/**
 * Merges delegates into their roots, checks each VirtualService's references and host claims as
 * every namespace sees them, and returns the rules that route mesh traffic with their exportTo.
 */
function indexVirtualServices(
  rules: readonly VirtualService[],
  meshConfig: MeshConfig,
  serviceByHost: ReadonlyMap<string, Service>,
  destinationRuleFor: (host: string, proxyNamespace: string | undefined) => DestinationRule | undefined,
  ruleStatus: Map<string, RuleStatus>,
  gateways: GatewayIndex,
): { mesh: VisibleVirtualService[]; gateway: VisibleVirtualService[] } {
  const resolved = rules.map((rule) => ({
    rule,
    vs: resolveVirtualService(rule),
    visibility: visibilityOf(effectiveExportTo(rule.spec.exportTo, meshConfig, 'virtualService'), rule.meta.namespace),
  }));
  const delegation = mergeDelegates(resolved.map(({ rule, vs, visibility }) => ({ rule, http: vs.http, visibility })));
  const issuesOf = new Map<string, ValidationIssue[]>();
  const entries: VisibleVirtualService[] = [];
  const gatewayEntries: VisibleVirtualService[] = [];
  for (const { rule, vs, visibility } of resolved) {
    const key = ruleKey(rule.meta);
    // A converted Gateway API route's references were checked at conversion and are in its status.
    const references = rule.meta.origin ? [] : referenceIssuesOf(vs, serviceByHost, destinationRuleFor);
    const issues = [...references, ...(delegation.issues.get(key) ?? [])];
    issuesOf.set(key, issues);
    if (isDelegate(rule)) continue;
    const merged = delegation.merged.get(key);
    // As in Istio, a broken reference does not unbind the rule: its route names a cluster that does not exist, so it fails closed.
    const bound = merged ? { ...vs, http: merged.http, origins: merged.origins } : vs;
    if (appliesToMesh(rule)) entries.push({ vs: bound, visibility });
    if (vs.gateways.some((gateway) => gateway !== MESH_GATEWAY)) gatewayEntries.push({ vs: bound, visibility });
  }
  const claimed = new Set<string>();
  const reported = new Set<string>();
  const visibilityOfVs = new Map(entries.map((entry) => [entry.vs, entry.visibility]));
  // A namespace's own rules, then those exported to it by name, then public ones: a rule of an earlier tier overrides by design.
  const tier = (vs: ResolvedVirtualService, namespace: string): number => (visibilityOfVs.get(vs)?.public !== false ? 2 : vs.rule.meta.namespace === namespace ? 0 : 1);
  for (const namespace of distinctViewNamespaces(entries)) {
    const byHost = claimHosts(virtualServicesSeenFrom(entries, namespace), [], (vs, index, host, owner) => {
      if (tier(owner, namespace) !== tier(vs, namespace)) return;
      const path = `spec.hosts[${index}]`;
      const key = ruleKey(vs.rule.meta);
      if (reported.has(`${key}:${path}`)) return;
      reported.add(`${key}:${path}`);
      issuesOf.get(key)?.push(conflict(path, host, owner.rule));
    });
    for (const vs of byHost.values()) claimed.add(ruleKey(vs.rule.meta));
  }
  for (const { rule, vs } of resolved) {
    const key = ruleKey(rule.meta);
    const issues = issuesOf.get(key) ?? [];
    if (isDelegate(rule) && !delegation.used.has(key)) {
      issues.push({
        code: 'MP_RULE_INEFFECTIVE',
        severity: 'warning',
        path: 'spec.hosts',
        message: 'is empty, so this is a delegate, and no VirtualService that may see it delegates to it: list hosts, or name it in a root route (delegate: { name, namespace })',
      });
    }
    const servesGateway = vs.gateways.some((gateway) => gateways.byName.has(gateway));
    const applied = isDelegate(rule) ? delegation.used.has(key) : claimed.has(key) || servesGateway;
    ruleStatus.set(key, { rule, issues, applied });
  }
  return { mesh: entries, gateway: gatewayEntries };
}

/** A per-snapshot memo: each key is built once. */
export function memoizer(): <T>(key: string, build: () => T) => T {
  const memo = new Map<string, unknown>();
  return <T>(key: string, build: () => T): T => {
    if (memo.has(key)) return memo.get(key) as T;
    const value = build();
    memo.set(key, value);
    return value;
  };
}

function conflict(path: string, host: string, owner: Rule): ValidationIssue {
  if (owner.meta.origin) {
    const routes = originLabels(owner.meta.origin).join(', ');
    return {
      code: 'MP_RULE_CONFLICT',
      severity: 'warning',
      path,
      message: `host "${host}" is routed by ${routes} (Gateway API) for callers in ${owner.meta.namespace}: as in Istio, a namespace's Gateway API routes come before VirtualServices for its own callers, and the oldest rule wins elsewhere; keep one of the two`,
    };
  }
  return {
    code: 'MP_RULE_CONFLICT',
    severity: 'warning',
    path,
    message: `host "${host}" is already claimed by ${owner.meta.kind} ${owner.meta.namespace}/${owner.meta.name}, which is older: merge the two or remove one`,
  };
}
