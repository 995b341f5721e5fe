// EDS: one ClusterLoadAssignment per EDS cluster, endpoints grouped by locality.
import type { PushContext } from '../../model/push-context.ts';
import type { Proxy } from '../../model/proxy.ts';
import type { Endpoint } from '../../model/service.ts';
import { scopedPush } from '../../model/sidecar-scope.ts';
import { labelsMatch } from '../../model/service.ts';
import type { ClusterLoadAssignment, LbEndpoint, Locality, LocalityLbEndpoints } from '../envoy-types.generated.ts';
import type { EnvoyResource } from '../resource.ts';
import { internResource } from '../resource.ts';
import { ENDPOINT_TYPE } from '../type-urls.ts';
import { socketAddress } from './common.ts';
import { acceptsIstioMtls, ISTIO_TLS_MODE, TRANSPORT_SOCKET_MATCH_KEY } from './mtls.ts';
import type { OutboundTarget } from './outbound.ts';
import { outboundTargetByName, outboundTargets } from './outbound.ts';

/** The endpoints a cluster balances over: ready, on its port, in its subset. */
export function endpointsOf(push: PushContext, target: OutboundTarget): Endpoint[] {
  const all = push.endpointsByHost.get(target.service.hostname) ?? [];
  const onlyPort = target.service.ports.length === 1;
  const selector = target.subset?.labels ?? {};
  return all.filter(
    (e) =>
      e.ready &&
      (e.servicePortName === target.port.name || (onlyPort && e.servicePortName === '')) &&
      labelsMatch(selector, e.labels),
  );
}

function localityKey(e: Endpoint): string {
  return `${e.locality?.region ?? ''}/${e.locality?.zone ?? ''}/${e.locality?.subZone ?? ''}`;
}

export function buildLoadAssignment(push: PushContext, target: OutboundTarget): ClusterLoadAssignment {
  const byLocality = new Map<string, Endpoint[]>();
  for (const endpoint of endpointsOf(push, target)) {
    const key = localityKey(endpoint);
    const group = byLocality.get(key);
    if (group) group.push(endpoint);
    else byLocality.set(key, [endpoint]);
  }
  const localities = [...byLocality.keys()].sort().map((key): LocalityLbEndpoints => {
    const group = byLocality.get(key) ?? [];
    const first = group[0]?.locality;
    const locality: Locality = {};
    if (first?.region) locality['region'] = first.region;
    if (first?.zone) locality['zone'] = first.zone;
    if (first?.subZone) locality['sub_zone'] = first.subZone;
    return {
      locality,
      lb_endpoints: group.map((e): LbEndpoint => ({
        endpoint: { address: socketAddress(e.address, e.port) },
        health_status: 'HEALTHY',
        // Auto mTLS: the cluster's `tlsMode: istio` transport socket match picks endpoints with an identity.
        ...(acceptsIstioMtls(e) ? ({ metadata: { filter_metadata: { [TRANSPORT_SOCKET_MATCH_KEY]: { tlsMode: ISTIO_TLS_MODE } } } } satisfies LbEndpoint) : {}),
        load_balancing_weight: e.weight ?? 1,
      })),
      // gRPC ignores localities without a weight; Envoy uses it only with locality-weighted LB.
      load_balancing_weight: group.length,
    };
  });
  return { cluster_name: target.clusterName, endpoints: localities };
}

/** Load assignments are the same for every proxy: built once per push, for the names asked. */
export function buildLoadAssignments(push: PushContext, names: readonly string[] | undefined): EnvoyResource[] {
  const byName = outboundTargetByName(push);
  const targets = names ? names.map((n) => byName.get(n)).filter((t): t is OutboundTarget => !!t) : outboundTargets(push);
  return targets.map((target) => loadAssignmentOf(push, target));
}

/** The push's load assignment of a cluster, by its name: no memo key is built per name for each proxy that asks. */
function loadAssignmentOf(push: PushContext, target: OutboundTarget): EnvoyResource {
  const built = push.memo('eds-by-cluster', () => new Map<string, EnvoyResource>());
  let resource = built.get(target.clusterName);
  if (!resource) {
    resource = internResource(push.sequence, ENDPOINT_TYPE, target.clusterName, buildLoadAssignment(push, target));
    built.set(target.clusterName, resource);
  }
  return resource;
}

/**
 * A proxy's load assignments: only those of clusters it sees (exportTo, its Sidecar), shared
 * through the whole push unless its namespace's DestinationRule selects a subset differently.
 */
export function buildProxyLoadAssignments(push: PushContext, proxy: Proxy, names: readonly string[] | undefined): EnvoyResource[] {
  const visible = scopedPush(push, proxy);
  if (visible === push) return buildLoadAssignments(push, names);
  const allowed = outboundTargetByName(visible);
  const shared = outboundTargetByName(push);
  return (names ?? [...allowed.keys()]).flatMap((name) => {
    const target = allowed.get(name);
    if (!target) return [];
    const everywhere = shared.get(name);
    if (everywhere && JSON.stringify(everywhere.subset?.labels) === JSON.stringify(target.subset?.labels)) return [loadAssignmentOf(push, everywhere)];
    return [visible.memo(`eds:${name}`, () => internResource(visible.sequence, ENDPOINT_TYPE, name, buildLoadAssignment(visible, target)))];
  });
}
