// How a cluster finds its endpoints, from the ServiceEntry resolution of its service: STATIC and
// Kubernetes services use EDS; DNS uses Envoy's DNS clusters; NONE forwards to the original address.
import type { ProxyGenerator } from '../../model/proxy.ts';
import type { PushContext } from '../../model/push-context.ts';
import type { Cluster, ClusterLoadAssignment } from '../envoy-types.generated.ts';
import { socketAddress } from './common.ts';
import { buildLoadAssignment } from './endpoint.ts';
import type { OutboundTarget } from './outbound.ts';

function withoutEds(cluster: Cluster): Cluster {
  const { eds_cluster_config: _eds, ...rest } = cluster;
  return rest;
}

/** gRPC takes a LOGICAL_DNS cluster only with exactly one locality holding exactly one endpoint. */
function singleEndpoint(assignment: ClusterLoadAssignment): ClusterLoadAssignment {
  const [locality] = assignment.endpoints ?? [];
  const [first] = locality?.lb_endpoints ?? [];
  return { ...assignment, endpoints: first ? [{ lb_endpoints: [{ endpoint: first.endpoint ?? {} }] }] : [] };
}

function dnsCluster(push: PushContext, target: OutboundTarget, cluster: Cluster, type: 'STRICT_DNS' | 'LOGICAL_DNS', generator: ProxyGenerator): Cluster {
  const assignment = buildLoadAssignment(push, target);
  if (generator === 'grpc') return { ...withoutEds(cluster), type: 'LOGICAL_DNS', load_assignment: singleEndpoint(assignment) };
  return { ...withoutEds(cluster), type, dns_lookup_family: 'V4_ONLY', load_assignment: assignment };
}

function hasEndpoints(push: PushContext, target: OutboundTarget): boolean {
  return (push.endpointsByHost.get(target.service.hostname) ?? []).some((e) => e.servicePortName === target.port.name);
}

/**
 * The cluster with the discovery its service's resolution asks for; undefined when the client
 * cannot use any (proxyless gRPC has no ORIGINAL_DST, so a NONE wildcard host is left out).
 */
export function applyResolution(push: PushContext, target: OutboundTarget, cluster: Cluster, generator: ProxyGenerator): Cluster | undefined {
  const { resolution } = target.service;
  if (resolution === 'DNS') return dnsCluster(push, target, cluster, 'STRICT_DNS', generator);
  if (resolution === 'DNS_ROUND_ROBIN') return dnsCluster(push, target, cluster, 'LOGICAL_DNS', generator);
  if (resolution !== 'NONE') return cluster;
  if (generator === 'envoy') {
    // The application already picked the address; Envoy connects where the connection was headed.
    const { lb_policy: _lb, ...rest } = withoutEds(cluster);
    return { ...rest, type: 'ORIGINAL_DST', lb_policy: 'CLUSTER_PROVIDED' };
  }
  if (hasEndpoints(push, target)) return cluster;
  if (target.service.hostname.includes('*')) return undefined;
  // gRPC resolves the host itself, as the application would have.
  const endpoint = { endpoint: { address: socketAddress(target.service.hostname, target.port.port) } };
  return { ...withoutEds(cluster), type: 'LOGICAL_DNS', load_assignment: { cluster_name: target.clusterName, endpoints: [{ lb_endpoints: [endpoint] }] } };
}
