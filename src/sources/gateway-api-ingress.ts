// Gateway API routes whose parent is a Gateway (HTTPRoute, GRPCRoute; TLSRoute and TCPRoute in gateway-api-l4.ts): each attaches to the listeners that allow it
// (sectionName, port, allowedRoutes, hostname intersection) and becomes, per listener and host, one
// VirtualService bound to that listener's internal Gateway, its rules sorted by the API's precedence.
// The GatewayClasses, Gateways, routes and meshpilot's XMesh get the status the API asks for.
import type { Rule, ValidationIssue, VirtualService } from '../model/rules.ts';
import type { GatewayApiCondition, GatewayObjectStatus, ListenerStatus, RouteParentStatus, RouteStatus } from '../model/route-status.ts';
import { MESH_CONTROLLER_NAME } from '../model/route-status.ts';
import { intersectHosts } from '../model/gateways.ts';
import type { ObjectWarnings } from '../model/store.ts';
import type { GatewayClassInfo, GatewayInfo } from './gateway-api-gateways.ts';
import type { GatewayObjectRef, GatewayRouteInfo } from './gateway-api-objects.ts';
import { GATEWAY_API_GROUP, isL4RouteKind } from './gateway-api-objects.ts';
import type { L4Conversion } from './gateway-api-l4.ts';
import { convertL4Rules, l4VirtualService } from './gateway-api-l4.ts';
import type { ConvertedRoute, RouteProblem, RouteRulesConversion } from './gateway-api-rules.ts';
import { asIssue, BackendResolver, compareMeshRoutes, compareText, convertRouteRules, routeConditions } from './gateway-api-rules.ts';
import type { GatewayApiOptions, GatewayContext, GatewayPlan, ListenerPlan } from './gateway-api-listeners.ts';
import { gatewayConditions, listenerConditions, ourClasses, planGateway } from './gateway-api-listeners.ts';

export interface GatewayApiInput extends GatewayContext {
  readonly classes: readonly GatewayClassInfo[];
  /** XMeshes (each names its controller as a GatewayClass does). */
  readonly meshes?: readonly GatewayClassInfo[];
  readonly gateways: readonly GatewayInfo[];
  readonly routes: readonly GatewayRouteInfo[];
}

export interface GatewayApiConversion {
  /** Internal Istio Gateways (one per served listener) and the VirtualServices bound to them. */
  readonly rules: readonly Rule[];
  /** Route parents that are Gateways of meshpilot's classes. */
  readonly routeStatuses: readonly RouteStatus[];
  readonly objectStatuses: readonly GatewayObjectStatus[];
  readonly warnings: readonly ObjectWarnings[];
}

/** Features meshpilot's Gateways implement, as GatewayClass `supportedFeatures` names them. */
const SUPPORTED_FEATURES = [
  'Gateway', 'GRPCRoute', 'HTTPRoute', 'HTTPRoute303RedirectStatusCode', 'HTTPRoute307RedirectStatusCode', 'HTTPRoute308RedirectStatusCode',
  'HTTPRouteBackendRequestHeaderModification', 'HTTPRouteBackendTimeout', 'HTTPRouteHostRewrite', 'HTTPRouteMethodMatching', 'HTTPRouteParentRefPort',
  'HTTPRoutePathRedirect', 'HTTPRoutePathRewrite', 'HTTPRoutePortRedirect', 'HTTPRouteQueryParamMatching', 'HTTPRouteRequestMirror',
  'HTTPRouteRequestMultipleMirrors', 'HTTPRouteRequestTimeout', 'HTTPRouteResponseHeaderModification', 'HTTPRouteSchemeRedirect', 'ReferenceGrant', 'TLSRoute',
];

/**
 * Features meshpilot's GAMMA routes (Service parents) implement, as XMesh `supportedFeatures` names them.
 * Not claimed: MeshClusterIPMatching (sidecars pick a Service's routes by Host, not by the address dialled).
 */
export const MESH_SUPPORTED_FEATURES: readonly string[] = [
  'GRPCRoute', 'HTTPRoute', 'HTTPRoute303RedirectStatusCode', 'HTTPRoute307RedirectStatusCode', 'HTTPRoute308RedirectStatusCode', 'HTTPRouteParentRefPort',
  'HTTPRouteResponseHeaderModification', 'Mesh', 'MeshConsumerRoute', 'MeshHTTPRouteBackendRequestHeaderModification', 'MeshHTTPRouteNamedRouteRule',
  'MeshHTTPRouteQueryParamMatching', 'MeshHTTPRouteRedirectPath', 'MeshHTTPRouteRedirectPort', 'MeshHTTPRouteRewritePath', 'MeshHTTPRouteSchemeRedirect',
];

function isGatewayParent(ref: GatewayObjectRef): boolean {
  return ref.group === GATEWAY_API_GROUP && ref.kind === 'Gateway';
}

interface Bucket {
  /** `ns/name` of the listener's internal Gateway. */
  readonly internalName: string;
  readonly namespace: string;
  readonly host: string;
  readonly routes: ConvertedRoute[];
  readonly sources: GatewayRouteInfo[];
}

/** Where a route attaches on one parent Gateway: the listeners and hosts, or why nowhere. */
function attach(route: GatewayRouteInfo, ref: GatewayObjectRef, path: string, plan: GatewayPlan): { listeners: { plan: ListenerPlan; hosts: string[] }[]; problem?: RouteProblem } {
  const candidates = plan.listeners.filter((l) => (ref.sectionName === undefined || l.listener.name === ref.sectionName) && (ref.port === undefined || l.listener.port === ref.port));
  const gatewayLabel = `Gateway ${plan.gateway.namespace}/${plan.gateway.name}`;
  if (candidates.length === 0) {
    const what = [ref.sectionName !== undefined ? `named ${ref.sectionName}` : '', ref.port !== undefined ? `on port ${ref.port}` : ''].filter(Boolean).join(' ');
    return { listeners: [], problem: { condition: 'Accepted', reason: 'NoMatchingParent', path: `${path}.${ref.sectionName !== undefined ? 'sectionName' : 'port'}`, message: `${gatewayLabel} has no listener ${what}: fix sectionName or port` } };
  }
  const allowed = candidates.filter((l) => {
    const namespaces = plan.allowedNamespaces.get(l.listener.name);
    return l.kinds.some((k) => k.kind === route.kind) && (namespaces === undefined || namespaces.has(route.namespace));
  });
  if (allowed.length === 0) {
    return { listeners: [], problem: { condition: 'Accepted', reason: 'NotAllowedByListeners', path, message: `no listener of ${gatewayLabel} allows ${route.kind}s from namespace ${route.namespace}: change the listener's allowedRoutes` } };
  }
  const matched = allowed.flatMap((l) => {
    const listenerHost = l.listener.hostname;
    const hosts = route.hostnames.length === 0 ? [listenerHost ?? '*'] : listenerHost === undefined ? [...route.hostnames] : intersectHosts([listenerHost], route.hostnames);
    return hosts.length > 0 ? [{ plan: l, hosts }] : [];
  });
  if (matched.length === 0) {
    return { listeners: [], problem: { condition: 'Accepted', reason: 'NoMatchingListenerHostname', path: 'spec.hostnames', message: `none of the route's hostnames (${route.hostnames.join(', ')}) is a hostname a listener of ${gatewayLabel} serves` } };
  }
  return { listeners: matched };
}

function routeWarnings(route: GatewayRouteInfo, problems: readonly RouteProblem[]): ObjectWarnings | undefined {
  const issues: ValidationIssue[] = [];
  for (const problem of problems) if (!issues.some((i) => i.path === problem.path)) issues.push(asIssue(problem));
  return issues.length > 0 ? { source: route.source, object: `${route.kind} ${route.namespace}/${route.name}`, kind: route.kind, namespace: route.namespace, name: route.name, issues } : undefined;
}

function virtualServiceOf(bucket: Bucket): VirtualService {
  const sorted = [...bucket.routes].sort(compareMeshRoutes);
  const [oldest] = [...bucket.sources].sort((a, b) => compareText(a.creationTimestamp ?? '', b.creationTimestamp ?? ''));
  const timestamp = oldest?.creationTimestamp;
  const gatewayName = bucket.internalName.slice(bucket.internalName.indexOf('/') + 1);
  return {
    meta: {
      kind: 'VirtualService',
      // `~` never appears in a Kubernetes name, so this cannot collide with a VirtualService's.
      name: `${gatewayName}~${bucket.host}`,
      namespace: bucket.namespace,
      source: oldest?.source ?? { origin: 'file', location: '' },
      ...(timestamp !== undefined ? { creationTimestamp: timestamp } : {}),
      origin: { group: GATEWAY_API_GROUP, http: sorted.map((c) => c.origin) },
    },
    spec: { hosts: [bucket.host], gateways: [bucket.internalName], http: sorted.map((c) => c.route), exportTo: ['.'] },
  };
}

function gatewayStatus(plan: GatewayPlan, attached: ReadonlyMap<string, number>): GatewayObjectStatus {
  const { gateway } = plan;
  const listeners: ListenerStatus[] = plan.listeners.map((l) => ({
    name: l.listener.name,
    supportedKinds: l.kinds.map((k) => ({ group: k.group, kind: k.kind })),
    attachedRoutes: attached.get(l.listener.name) ?? 0,
    conditions: listenerConditions(l, gateway.generation),
  }));
  return {
    kind: 'Gateway',
    namespace: gateway.namespace,
    name: gateway.name,
    source: gateway.source,
    status: { conditions: gatewayConditions(plan), ...(plan.addresses.length > 0 ? { addresses: plan.addresses } : {}), listeners },
  };
}

function gatewayWarnings(status: GatewayObjectStatus): ObjectWarnings | undefined {
  const issues: ValidationIssue[] = [];
  const bad = (c: GatewayApiCondition): boolean => (c.type === 'Conflicted' ? c.status === 'True' : c.status === 'False');
  for (const c of status.status.conditions.filter(bad)) issues.push({ code: 'MP_RULE_INVALID', severity: 'warning', path: 'spec', message: `${c.type}=${c.status} (${c.reason}): ${c.message}` });
  status.status.listeners?.forEach((l, i) => {
    for (const c of l.conditions.filter(bad)) issues.push({ code: c.type === 'Conflicted' ? 'MP_RULE_CONFLICT' : 'MP_RULE_INVALID', severity: 'warning', path: `spec.listeners[${i}]`, message: `${c.type}=${c.status} (${c.reason}): ${c.message}` });
  });
  return issues.length > 0 ? { source: status.source, object: `Gateway ${status.namespace}/${status.name}`, kind: 'Gateway', namespace: status.namespace, name: status.name, issues } : undefined;
}

/** Accepted, with the features it implements, for a GatewayClass or an XMesh of meshpilot's controller. */
function acceptedStatus(kind: 'GatewayClass' | 'XMesh', object: GatewayClassInfo, features: readonly string[]): GatewayObjectStatus {
  const generation = object.generation !== undefined ? { observedGeneration: object.generation } : {};
  return {
    kind,
    namespace: '',
    name: object.name,
    source: object.source,
    status: {
      conditions: [{ type: 'Accepted', status: 'True', reason: 'Accepted', message: `Handled by ${object.controllerName}`, ...generation }],
      // The API wants them sorted by name.
      supportedFeatures: [...features].sort().map((name) => ({ name })),
    },
  };
}

/** Every GatewayClass, Gateway and Gateway-parented route at once. */
export function convertGatewayApi(input: GatewayApiInput, options: GatewayApiOptions): GatewayApiConversion {
  const classes = ourClasses(input.classes, options);
  const plans = new Map<string, GatewayPlan>();
  const rules: Rule[] = [];
  for (const gateway of input.gateways) {
    const gatewayClass = classes.get(gateway.className);
    if (!gatewayClass) continue;
    const planned = planGateway(gateway, gatewayClass.controllerName, input);
    plans.set(`${gateway.namespace}/${gateway.name}`, planned.plan);
    rules.push(...planned.rules);
  }
  const resolver = new BackendResolver(input.services, input.grants);
  const attached = new Map<string, Map<string, number>>();
  const buckets = new Map<string, Bucket>();
  const l4Rules: VirtualService[] = [];
  const routeStatuses: RouteStatus[] = [];
  const warnings: ObjectWarnings[] = [];
  for (const route of input.routes) {
    let rulesOf: RouteRulesConversion | L4Conversion | undefined;
    const parents: RouteParentStatus[] = [];
    const allProblems: RouteProblem[] = [];
    for (const [index, ref] of route.parentRefs.entries()) {
      if (!isGatewayParent(ref)) continue;
      const key = `${ref.namespace ?? route.namespace}/${ref.name}`;
      const plan = plans.get(key);
      // A Gateway of another controller's class (or one not known yet, whose class is unknown) is not ours to report on.
      if (!plan) continue;
      rulesOf ??= isL4RouteKind(route.kind) ? convertL4Rules(route, resolver) : convertRouteRules(route, resolver);
      const found = attach(route, ref, `spec.parentRefs[${index}]`, plan);
      const problems = found.problem ? [found.problem, ...rulesOf.problems] : rulesOf.problems;
      allProblems.push(...problems);
      parents.push({ parentRef: ref, controllerName: plan.controllerName, conditions: routeConditions(route, problems) });
      if (found.problem || ('hardError' in rulesOf && rulesOf.hardError)) continue;
      const counts = attached.get(key) ?? new Map<string, number>();
      attached.set(key, counts);
      for (const { plan: listener, hosts } of found.listeners) {
        counts.set(listener.listener.name, (counts.get(listener.listener.name) ?? 0) + 1);
        if (listener.internalName === undefined) continue;
        if (!('converted' in rulesOf)) {
          l4Rules.push(l4VirtualService(route, rulesOf, listener.internalName, hosts));
          continue;
        }
        for (const host of hosts) {
          const bucketKey = `${listener.internalName}|${host}`;
          const bucket: Bucket = buckets.get(bucketKey) ?? { internalName: listener.internalName, namespace: plan.gateway.namespace, host, routes: [], sources: [] };
          buckets.set(bucketKey, bucket);
          bucket.routes.push(...rulesOf.converted);
          if (!bucket.sources.includes(route)) bucket.sources.push(route);
        }
      }
    }
    if (parents.length === 0) continue;
    routeStatuses.push({ kind: route.kind, namespace: route.namespace, name: route.name, source: route.source, parents });
    const warned = routeWarnings(route, allProblems);
    if (warned) warnings.push(warned);
  }
  const objectStatuses: GatewayObjectStatus[] = [
    ...[...classes.values()].map((c) => acceptedStatus('GatewayClass', c, SUPPORTED_FEATURES)),
    ...(input.meshes ?? []).filter((m) => m.controllerName === MESH_CONTROLLER_NAME).map((m) => acceptedStatus('XMesh', m, MESH_SUPPORTED_FEATURES)),
  ];
  for (const [key, plan] of plans) {
    const status = gatewayStatus(plan, attached.get(key) ?? new Map());
    objectStatuses.push(status);
    const warned = gatewayWarnings(status);
    if (warned) warnings.push(warned);
  }
  return { rules: [...rules, ...[...buckets.values()].map(virtualServiceOf), ...l4Rules], routeStatuses, objectStatuses, warnings };
}
