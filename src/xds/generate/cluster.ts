// CDS: one EDS cluster per service port and per subset, plus Istio's two catch-all clusters.
import type { PushContext } from '../../model/push-context.ts';
import type { GrpcClientLimit, Proxy } from '../../model/proxy.ts';
import type { DestinationRule } from '../../model/rules.ts';
import { scopedPush } from '../../model/sidecar-scope.ts';
import { configPath } from '../attribution.ts';
import type { Cluster, ProtoStruct } from '../envoy-types.generated.ts';
import type { EnvoyResource } from '../resource.ts';
import { internResource } from '../resource.ts';
import { CLUSTER_TYPE, HTTP_PROTOCOL_OPTIONS_TYPE } from '../type-urls.ts';
import { applyResolution } from './cluster-discovery.ts';
import { applyAutoMtls, istioSni, serviceIdentities } from './cluster-auto-mtls.ts';
import { proxyHasIdentity } from './mtls.ts';
import { ADS_CONFIG_SOURCE, typed } from './common.ts';
import { buildInboundClusters } from './inbound.ts';
import { BLACKHOLE_CLUSTER, PASSTHROUGH_CLUSTER } from './names.ts';
import type { OutboundTarget } from './outbound.ts';
import { outboundTargets } from './outbound.ts';
import { applyTrafficPolicy, defaultCircuitBreakers, type ClusterPolicyTarget } from './cluster-traffic-policy.ts';
import { ignoreNotes, type NoteSink, type RouteDialect } from './route-match.ts';

function usesHttp2(target: OutboundTarget): boolean {
  return target.port.protocol === 'HTTP2' || target.port.protocol === 'GRPC' || target.port.protocol === 'GRPC-Web';
}

function sidecarCluster(target: OutboundTarget, connectTimeout: string): Cluster {
  const { service } = target;
  const cluster: Cluster = {
    name: target.clusterName,
    type: 'EDS',
    eds_cluster_config: {
      eds_config: { ...ADS_CONFIG_SOURCE, initial_fetch_timeout: '0s' },
      service_name: target.clusterName,
    },
    connect_timeout: connectTimeout,
    // Istio's default algorithm (cluster_traffic_policy.go defaultLBAlgorithm).
    lb_policy: 'LEAST_REQUEST',
    circuit_breakers: defaultCircuitBreakers(),
    metadata: {
      filter_metadata: {
        istio: {
          services: [{ host: service.hostname, name: service.name, namespace: service.namespace }],
          ...(target.subset ? ({ subset: target.subset.name } satisfies ProtoStruct) : {}),
        },
      },
    },
  };
  if (usesHttp2(target)) {
    cluster['typed_extension_protocol_options'] = {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': typed(HTTP_PROTOCOL_OPTIONS_TYPE, {
        explicit_http_config: { http2_protocol_options: {} },
      }),
    };
  }
  return cluster;
}

/** What proxyless gRPC accepts: EDS from ADS and a policy it implements. */
function grpcCluster(target: OutboundTarget): Cluster {
  return {
    name: target.clusterName,
    type: 'EDS',
    eds_cluster_config: { eds_config: ADS_CONFIG_SOURCE, service_name: target.clusterName },
    lb_policy: 'ROUND_ROBIN',
  };
}

function catchAllClusters(connectTimeout: string): readonly (Cluster & { name: string })[] {
  return [
    { name: BLACKHOLE_CLUSTER, type: 'STATIC', connect_timeout: connectTimeout },
    { name: PASSTHROUGH_CLUSTER, type: 'ORIGINAL_DST', lb_policy: 'CLUSTER_PROVIDED', connect_timeout: connectTimeout, circuit_breakers: defaultCircuitBreakers() },
  ];
}

/** As Istio's cluster_builder.go: the DestinationRule behind the cluster, and whether the service is outside the mesh. */
function addIstioMetadata(cluster: Cluster, target: OutboundTarget, rule: DestinationRule | undefined): void {
  const istio = cluster.metadata?.filter_metadata?.['istio'];
  if (!istio) return;
  if (target.service.meshExternal) istio['external'] = true;
  if (rule) istio['config'] = configPath(rule.meta);
}

/**
 * The cluster with its DestinationRule's traffic policy, as a proxy in `namespace` sees the rule,
 * shaped by the service's resolution; undefined when the client cannot be given one.
 */
export function clusterWithPolicy(
  push: PushContext,
  target: OutboundTarget,
  namespace: string | undefined,
  dialect: RouteDialect,
  notes: NoteSink,
  grpcLimits: readonly GrpcClientLimit[] = [],
  clientHasIdentity = false,
): Cluster | undefined {
  const cluster = dialect === 'grpc' ? grpcCluster(target) : sidecarCluster(target, push.meshConfig.connectTimeout);
  const rule = push.destinationRuleFor(target.service.hostname, namespace);
  const serviceSubjectAltNames = target.service.subjectAltNames;
  const policyTarget = { rule, subset: target.subset?.name, port: target.port.port, sni: istioSni(target), serviceAccounts: serviceIdentities(push, target) };
  applyTrafficPolicy(cluster, { ...policyTarget, ...(serviceSubjectAltNames ? ({ serviceSubjectAltNames } satisfies Partial<ClusterPolicyTarget>) : {}) }, dialect, notes);
  if (dialect === 'envoy') addIstioMetadata(cluster, target, rule);
  if (grpcLimits.includes('ring-hash-crashes') && cluster['lb_policy'] === 'RING_HASH') {
    // The client would crash on the ring hash; round robin keeps it calling, without stickiness.
    cluster['lb_policy'] = 'ROUND_ROBIN';
    delete cluster['ring_hash_lb_config'];
  }
  const resolved = applyResolution(push, target, cluster, dialect);
  // Auto mTLS needs a certificate to present: only clients with a workload identity get it.
  if (resolved && clientHasIdentity) applyAutoMtls(push, target, rule, resolved, dialect);
  return resolved;
}

function clientKind(push: PushContext, proxy: Proxy): string {
  return [proxy.generator, ...proxy.grpcLimits, ...(proxyHasIdentity(push, proxy) ? ['mtls'] : [])].join('+');
}

/** The outbound clusters a proxy may use (its Sidecar's view), shared by the proxies alike. */
export function buildOutboundClusters(push: PushContext, proxy: Proxy): readonly EnvoyResource[] {
  const visible = scopedPush(push, proxy);
  // DestinationRules are looked up from the proxy's namespace first.
  const identity = proxyHasIdentity(push, proxy);
  const kind = clientKind(push, proxy);
  return visible.memo(`cds:${kind}:${proxy.namespace ?? ''}`, () => {
    const built = outboundTargets(visible).flatMap((t) => {
      const json = clusterWithPolicy(visible, t, proxy.namespace, proxy.generator, ignoreNotes, proxy.grpcLimits, identity);
      return json ? [internResource(visible.sequence, CLUSTER_TYPE, t.clusterName, json)] : [];
    });
    if (proxy.generator === 'grpc') return built;
    const catchAll = catchAllClusters(visible.meshConfig.connectTimeout);
    return [...built, ...catchAll.map((c) => internResource(visible.sequence, CLUSTER_TYPE, c.name, c))];
  });
}

export function buildClusters(push: PushContext, proxy: Proxy): readonly EnvoyResource[] {
  // Outbound clusters are what the proxy's Sidecar lets it see; inbound ones are its own workload's.
  const visible = scopedPush(push, proxy);
  const kind = clientKind(push, proxy);
  const outbound = buildOutboundClusters(push, proxy);
  // One array per distinct set, so every proxy that gets the same clusters shares the list (and its encoding).
  const inbound = buildInboundClusters(push, proxy);
  return visible.memo(`cds-set:${kind}:${proxy.namespace ?? ''}:${inbound.map((c) => c.name).join(',')}`, () => [...outbound, ...inbound]);
}
