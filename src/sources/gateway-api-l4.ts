// TLSRoutes and TCPRoutes on Gateway listeners (as Istio converts them): a TLSRoute becomes tls
// routes matched by SNI (the hostnames it shares with the listener), a TCPRoute a tcp route, each in
// a VirtualService bound to the listener's internal Gateway; backends resolve as for HTTPRoutes.
import type { RouteDestination, VirtualService } from '../model/rules.ts';
import type { GatewayRouteInfo } from './gateway-api-objects.ts';
import { GATEWAY_API_GROUP } from './gateway-api-objects.ts';
import type { BackendResolver, RouteProblem } from './gateway-api-rules.ts';

export interface L4Conversion {
  /** Each rule's destinations, weighted when more than one; rules with no backend left out. */
  readonly routes: readonly (readonly RouteDestination[])[];
  readonly problems: readonly RouteProblem[];
}

/** A TLSRoute's or TCPRoute's rules, converted once whatever its parents are. */
export function convertL4Rules(route: GatewayRouteInfo, resolver: BackendResolver): L4Conversion {
  const problems: RouteProblem[] = [];
  const routes = route.rules.flatMap((rule, ruleIndex) => {
    const weighted = rule.backendRefs.map((ref, index) => ({ ref, index })).filter(({ ref }) => ref.weight > 0);
    const destinations = weighted.map(({ ref, index }): RouteDestination => ({
      destination: resolver.resolve(route, ref, `spec.rules[${ruleIndex}].backendRefs[${index}]`, problems),
      ...(weighted.length > 1 ? { weight: ref.weight } : {}),
    }));
    return destinations.length > 0 ? [destinations] : [];
  });
  return { routes, problems };
}

/** The VirtualService serving one L4 route on one listener's internal Gateway (`ns/name`). */
export function l4VirtualService(route: GatewayRouteInfo, converted: L4Conversion, internalName: string, hosts: readonly string[]): VirtualService {
  const slash = internalName.indexOf('/');
  const tls = route.kind === 'TLSRoute';
  return {
    meta: {
      kind: 'VirtualService',
      // `~` never appears in a Kubernetes name, so this cannot collide with a VirtualService's.
      name: `${internalName.slice(slash + 1)}~${route.kind}~${route.namespace}~${route.name}`,
      namespace: internalName.slice(0, slash),
      source: route.source,
      ...(route.creationTimestamp !== undefined ? { creationTimestamp: route.creationTimestamp } : {}),
      origin: { group: GATEWAY_API_GROUP, http: [{ kind: route.kind, namespace: route.namespace, name: route.name, rule: 0 }] },
    },
    spec: {
      hosts: tls ? [...hosts] : ['*'],
      gateways: [internalName],
      ...(tls ? { tls: converted.routes.map((destinations) => ({ match: [{ sniHosts: [...hosts] }], route: destinations })) } : { tcp: converted.routes.map((destinations) => ({ route: destinations })) }),
      exportTo: ['.'],
    },
  };
}
