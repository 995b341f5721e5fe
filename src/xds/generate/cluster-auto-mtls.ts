// Istio's auto mTLS: with no TLS in the DestinationRule, a client sends mTLS to the endpoints that
// have a workload identity and plaintext to the rest. Envoy decides per endpoint (transport socket
// matches on EDS metadata); a gRPC client, which has no such matching, per cluster.
import type { PushContext } from '../../model/push-context.ts';
import type { DestinationRule } from '../../model/rules.ts';
import type { Cluster } from '../envoy-types.generated.ts';
import { effectivePolicy } from './cluster-traffic-policy.ts';
import { endpointsOf } from './endpoint.ts';
import { acceptsIstioMtls, autoMtlsSocketMatches, grpcUpstreamContext, istioMutualUpstreamContext, serviceAccountSans, tlsTransportSocket } from './mtls.ts';
import type { OutboundTarget } from './outbound.ts';
import type { RouteDialect } from './route-match.ts';

/** Istio's SNI for in-mesh mTLS: `outbound_.9080_.v1_.reviews.default.svc.cluster.local`. */
export function istioSni(target: OutboundTarget): string {
  return `outbound_.${target.port.port}_.${target.subset?.name ?? ''}_.${target.service.hostname}`;
}

/** The identities a service's servers present: its workloads' SPIFFE IDs and a ServiceEntry's subjectAltNames (Istio's ServiceAccounts). */
export function serviceIdentities(push: PushContext, target: OutboundTarget): readonly string[] {
  const extra = target.service.subjectAltNames ?? [];
  const own = serviceAccountSans(push, target.service);
  return extra.length === 0 ? own : [...new Set([...own, ...extra])].sort();
}

function autoMtlsApplies(push: PushContext, target: OutboundTarget, rule: DestinationRule | undefined, cluster: Cluster): boolean {
  if (!push.meshConfig.enableAutoMtls || target.service.meshExternal) return false;
  // A tls block of any mode is the user's choice, as in Istio.
  if (effectivePolicy(rule, target.subset?.name, target.port.port).policy.tls) return false;
  if (cluster['transport_socket'] !== undefined || cluster['type'] === 'ORIGINAL_DST') return false;
  // Istio's BestEffortInferServiceMTLSMode: a namespace (or mesh) that disables mTLS gets plaintext.
  return push.peerAuthentication.namespaceMode(target.service.namespace) !== 'DISABLE';
}

/** Adds auto mTLS to a cluster the DestinationRule gave no TLS (mutates `cluster`). */
export function applyAutoMtls(push: PushContext, target: OutboundTarget, rule: DestinationRule | undefined, cluster: Cluster, dialect: RouteDialect): void {
  if (!autoMtlsApplies(push, target, rule, cluster)) return;
  const sans = serviceIdentities(push, target);
  if (dialect === 'envoy') {
    cluster['transport_socket_matches'] = autoMtlsSocketMatches(tlsTransportSocket('upstream', istioMutualUpstreamContext(sans, istioSni(target))));
    return;
  }
  // gRPC sends mTLS only when every endpoint can take it: one without an identity would refuse the handshake.
  const endpoints = endpointsOf(push, target);
  if (endpoints.length > 0 && endpoints.every(acceptsIstioMtls)) cluster['transport_socket'] = tlsTransportSocket('upstream', grpcUpstreamContext(sans));
}
