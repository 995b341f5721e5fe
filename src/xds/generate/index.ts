// One generator per type URL, picked from a table; each is a pure function of (push, proxy, names).
import type { PushContext } from '../../model/push-context.ts';
import type { Proxy } from '../../model/proxy.ts';
import type { EnvoyResource } from '../resource.ts';
import type { ResourceTypeUrl } from '../type-urls.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, SECRET_TYPE } from '../type-urls.ts';
import { buildClusters } from './cluster.ts';
import { filterNames } from './common.ts';
import { buildProxyLoadAssignments } from './endpoint.ts';
import { buildListeners } from './listener.ts';
import { buildRouteConfigs } from './route.ts';
import { buildGatewayResources } from './gateway.ts';
import { buildSecrets } from './secret.ts';

/** `names` undefined is a wildcard request; otherwise only those names (missing ones are simply absent). */
export type Generator = (push: PushContext, proxy: Proxy, names: readonly string[] | undefined) => readonly EnvoyResource[];

export const GENERATORS: Readonly<Record<ResourceTypeUrl, Generator>> = {
  [CLUSTER_TYPE]: (push, proxy, names) => filterNames(buildClusters(push, proxy), names),
  [ENDPOINT_TYPE]: buildProxyLoadAssignments,
  [LISTENER_TYPE]: buildListeners,
  [ROUTE_TYPE]: buildRouteConfigs,
  [SECRET_TYPE]: buildSecrets,
};

export type GenerateFn = (typeUrl: ResourceTypeUrl, push: PushContext, proxy: Proxy, names?: readonly string[]) => readonly EnvoyResource[];

export function generate(typeUrl: ResourceTypeUrl, push: PushContext, proxy: Proxy, names?: readonly string[]): readonly EnvoyResource[] {
  // An Envoy started as a gateway gets its Gateways' config, never a sidecar's.
  if (proxy.type === 'router' && proxy.generator === 'envoy') return buildGatewayResources(typeUrl, push, proxy, names);
  return GENERATORS[typeUrl](push, proxy, names);
}
