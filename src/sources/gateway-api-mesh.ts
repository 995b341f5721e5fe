// GAMMA: Gateway API routes whose parent is a Service, converted (as Istio converts them) into
// VirtualServices bound to the mesh, one per route namespace, parent port and Service host, with
// the routes of every HTTPRoute/GRPCRoute there merged and sorted by the Gateway API's precedence.
import type { ValidationIssue, VirtualService } from '../model/rules.ts';
import type { Service } from '../model/service.ts';
import { serviceHostname } from '../model/service.ts';
import type { ObjectWarnings } from '../model/store.ts';
import type { RouteParentStatus, RouteStatus } from '../model/route-status.ts';
import { GATEWAY_CONTROLLER_NAME } from '../model/route-status.ts';
import type { GatewayObjectRef, GatewayRouteInfo } from './gateway-api-objects.ts';
import { GATEWAY_API_GROUP, isL4RouteKind } from './gateway-api-objects.ts';
import type { ConvertedRoute, RouteProblem } from './gateway-api-rules.ts';
import { asIssue, BackendResolver, compareMeshRoutes, compareText, convertRouteRules, routeConditions } from './gateway-api-rules.ts';

export interface MeshRouteConversion {
  readonly rules: readonly VirtualService[];
  readonly statuses: readonly RouteStatus[];
  /** Each route's false conditions as problems, for `/debug/configz` and `analyze`. */
  readonly warnings: readonly ObjectWarnings[];
}

function isMeshParent(ref: GatewayObjectRef): boolean {
  return ref.group === '' && ref.kind === 'Service';
}

function parentProblems(route: GatewayRouteInfo, ref: GatewayObjectRef, index: number, services: ReadonlyMap<string, Service>): RouteProblem | undefined {
  const namespace = ref.namespace ?? route.namespace;
  const service = services.get(serviceHostname(ref.name, namespace));
  const path = `spec.parentRefs[${index}]`;
  if (!service) return { condition: 'Accepted', reason: 'NoMatchingParent', path: `${path}.name`, message: `parent Service ${namespace}/${ref.name} does not exist: create it or fix the name` };
  if (ref.port !== undefined && !service.ports.some((p) => p.port === ref.port)) {
    return { condition: 'Accepted', reason: 'NoMatchingParent', path: `${path}.port`, message: `parent Service ${namespace}/${ref.name} has no port ${ref.port}: use one of ${service.ports.map((p) => p.port).join(', ')}` };
  }
  if (ref.sectionName !== undefined) return { condition: 'Accepted', reason: 'NoMatchingParent', path: `${path}.sectionName`, message: 'a Service parent has no sections: remove sectionName (use port to pick a port)' };
  return undefined;
}

interface Bucket {
  readonly namespace: string;
  readonly host: string;
  readonly port: number | undefined;
  /** Private to the route's namespace: a consumer route (its Service lives elsewhere). */
  readonly consumer: boolean;
  readonly routes: ConvertedRoute[];
  readonly sources: GatewayRouteInfo[];
}

/** Converts every mesh route at once: routes for one Service from one namespace merge, as in Istio. */
export function convertMeshRoutes(routes: readonly GatewayRouteInfo[], services: ReadonlyMap<string, Service>): MeshRouteConversion {
  // As Istio (enforceRefGrant false for Service parents): a mesh route's backends need no ReferenceGrant.
  const resolver = new BackendResolver(services, undefined);
  const buckets = new Map<string, Bucket>();
  const statuses: RouteStatus[] = [];
  const warnings: ObjectWarnings[] = [];
  // TLSRoutes and TCPRoutes attach only to Gateways here.
  for (const route of routes.filter((r) => !isL4RouteKind(r.kind))) {
    const parents: RouteParentStatus[] = [];
    const routeIssues: ValidationIssue[] = [];
    const { converted, problems: ruleProblems, hardError } = convertRouteRules(route, resolver);
    for (const [index, ref] of route.parentRefs.entries()) {
      if (!isMeshParent(ref)) continue;
      const parentProblem = parentProblems(route, ref, index, services);
      const problems = parentProblem ? [parentProblem, ...ruleProblems] : ruleProblems;
      parents.push({ parentRef: ref, controllerName: GATEWAY_CONTROLLER_NAME, conditions: routeConditions(route, problems) });
      for (const problem of problems) if (!routeIssues.some((i) => i.path === problem.path)) routeIssues.push(asIssue(problem));
      if (parentProblem || hardError) continue;
      const namespace = ref.namespace ?? route.namespace;
      const host = serviceHostname(ref.name, namespace);
      const key = `${route.namespace}/${ref.port ?? ''}/${host}`;
      const port = ref.port;
      const bucket: Bucket = buckets.get(key) ?? { namespace: route.namespace, host, port, consumer: namespace !== route.namespace, routes: [], sources: [] };
      buckets.set(key, bucket);
      // A parent port limits the routes to that port, as Istio's port match does.
      const withPort = port === undefined ? converted : converted.map((c) => ({ ...c, route: { ...c.route, match: (c.route.match ?? [{}]).map((m) => ({ ...m, port })) } }));
      bucket.routes.push(...withPort);
      if (!bucket.sources.includes(route)) bucket.sources.push(route);
    }
    if (parents.length === 0) continue;
    statuses.push({ kind: route.kind, namespace: route.namespace, name: route.name, source: route.source, parents });
    if (routeIssues.length > 0) warnings.push({ source: route.source, object: `${route.kind} ${route.namespace}/${route.name}`, kind: route.kind, namespace: route.namespace, name: route.name, issues: routeIssues });
  }
  return { rules: [...buckets.values()].map(virtualServiceOf), statuses, warnings };
}

function virtualServiceOf(bucket: Bucket): VirtualService {
  const sorted = [...bucket.routes].sort(compareMeshRoutes);
  const [oldest] = [...bucket.sources].sort((a, b) => compareText(a.creationTimestamp ?? '', b.creationTimestamp ?? ''));
  const timestamp = oldest?.creationTimestamp;
  return {
    meta: {
      kind: 'VirtualService',
      // `~` never appears in a Kubernetes name, so this cannot collide with a VirtualService's.
      name: `gamma~${bucket.port !== undefined ? `${bucket.port}~` : ''}${bucket.host}`,
      namespace: bucket.namespace,
      source: oldest?.source ?? { origin: 'file', location: '' },
      ...(timestamp !== undefined ? { creationTimestamp: timestamp } : {}),
      origin: { group: GATEWAY_API_GROUP, http: sorted.map((c) => c.origin) },
    },
    spec: { hosts: [bucket.host], gateways: ['mesh'], http: sorted.map((c) => c.route), exportTo: [bucket.consumer ? '.' : '*'] },
  };
}
