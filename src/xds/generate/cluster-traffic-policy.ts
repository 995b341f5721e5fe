// A DestinationRule's traffic policy on a cluster, as Istio applies it: the rule's policy with
// its port-level settings, overridden by the subset's, then by the subset's port-level settings.
// Proxyless gRPC gets only what it implements; the rest degrades predictably and is noted.
import { parseDuration, toDurationJson } from '../../model/duration.ts';
import type { ConsistentHashLb, DestinationRule, OutlierDetection, PortTrafficPolicy, TrafficPolicy } from '../../model/rules.ts';
import type { JsonObject } from '../proto-json.ts';
import { HTTP_PROTOCOL_OPTIONS_TYPE, UPSTREAM_TLS_CONTEXT_TYPE } from '../type-urls.ts';
import { typed } from './common.ts';
import type { NoteSink, RouteDialect } from './route-match.ts';

const MAX_UINT32 = 4_294_967_295;
/** gRPC's ring hash refuses rings above 8M entries (A42). */
const GRPC_MAX_RING_SIZE = 8_388_608;
const SDS_CONFIG: JsonObject = {
  api_config_source: { api_type: 'GRPC', transport_api_version: 'V3', grpc_services: [{ envoy_grpc: { cluster_name: 'sds-grpc' } }] },
  resource_api_version: 'V3',
};

type PolicyFields = Omit<PortTrafficPolicy, 'port'>;

function overlay(base: PolicyFields, top: PolicyFields | undefined): PolicyFields {
  if (!top) return base;
  return {
    loadBalancer: top.loadBalancer ?? base.loadBalancer,
    connectionPool: top.connectionPool ?? base.connectionPool,
    outlierDetection: top.outlierDetection ?? base.outlierDetection,
    tls: top.tls ?? base.tls,
  };
}

function atPort(policy: TrafficPolicy | undefined, port: number): PolicyFields {
  const base: PolicyFields = policy ?? {};
  return overlay(base, policy?.portLevelSettings?.find((p) => p.port?.number === port));
}

/** The policy a cluster of `port` (and `subset`) gets from its DestinationRule, with the rule path it came from. */
export function effectivePolicy(rule: DestinationRule | undefined, subset: string | undefined, port: number): { policy: PolicyFields; path: string } {
  const index = subset === undefined ? -1 : (rule?.spec.subsets ?? []).findIndex((s) => s.name === subset);
  const subsetPolicy = index >= 0 ? rule?.spec.subsets?.[index]?.trafficPolicy : undefined;
  const merged = overlay(atPort(rule?.spec.trafficPolicy, port), subsetPolicy ? atPort(subsetPolicy, port) : undefined);
  return { policy: merged, path: subsetPolicy ? `spec.subsets[${index}].trafficPolicy` : 'spec.trafficPolicy' };
}

function nanosOf(text: string | undefined): bigint | undefined {
  return text === undefined ? undefined : parseDuration(text);
}

function applyLoadBalancer(cluster: JsonObject, policy: PolicyFields, dialect: RouteDialect, notes: NoteSink, path: string): void {
  const lb = policy.loadBalancer;
  if (!lb) return;
  const hash = lb.consistentHash;
  if (hash) {
    const maglev = hash.maglev !== undefined;
    if (dialect === 'grpc') {
      if (maglev) notes(`${path}.loadBalancer.consistentHash.maglev`, 'gRPC has no Maglev: proxyless gRPC clients use a ring hash instead');
      const ringSize = Math.min(hash.ringHash?.minimumRingSize ?? hash.minimumRingSize ?? 1024, GRPC_MAX_RING_SIZE);
      cluster['lb_policy'] = 'RING_HASH';
      cluster['ring_hash_lb_config'] = { minimum_ring_size: String(ringSize) };
      return;
    }
    if (maglev) {
      cluster['lb_policy'] = 'MAGLEV';
      if (hash.maglev.tableSize) cluster['maglev_lb_config'] = { table_size: String(hash.maglev.tableSize) };
    } else {
      cluster['lb_policy'] = 'RING_HASH';
      cluster['ring_hash_lb_config'] = { minimum_ring_size: String(hash.ringHash?.minimumRingSize ?? hash.minimumRingSize ?? 1024) };
    }
    return;
  }
  const simple = lb.simple ?? 'UNSPECIFIED';
  if (simple === 'UNSPECIFIED' || simple === 'ROUND_ROBIN') return;
  if (dialect === 'grpc') {
    // A gRPC client NACKs a cluster with a policy it lacks; round robin is the predictable fallback.
    notes(`${path}.loadBalancer.simple`, `gRPC clients implement ROUND_ROBIN and ring hash only: ${simple} is served to proxyless gRPC as ROUND_ROBIN`);
    return;
  }
  if (simple === 'LEAST_REQUEST' || simple === 'LEAST_CONN') cluster['lb_policy'] = 'LEAST_REQUEST';
  else if (simple === 'RANDOM') cluster['lb_policy'] = 'RANDOM';
  else {
    // PASSTHROUGH: connect to the address the caller asked for, as Istio does.
    cluster['type'] = 'ORIGINAL_DST';
    cluster['lb_policy'] = 'CLUSTER_PROVIDED';
    delete cluster['eds_cluster_config'];
  }
}

function protocolOptions(cluster: JsonObject): JsonObject {
  const key = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
  const all = (cluster['typed_extension_protocol_options'] ??= {}) as JsonObject;
  return (all[key] ??= typed(HTTP_PROTOCOL_OPTIONS_TYPE, { explicit_http_config: { http_protocol_options: {} } })) as JsonObject;
}

function applyConnectionPool(cluster: JsonObject, policy: PolicyFields, dialect: RouteDialect, notes: NoteSink, path: string): void {
  const pool = policy.connectionPool;
  if (!pool) return;
  if (dialect === 'grpc') {
    // gRPC honours only the DEFAULT threshold's max_requests (A32).
    if (pool.http?.http2MaxRequests !== undefined) cluster['circuit_breakers'] = { thresholds: [{ max_requests: pool.http.http2MaxRequests }] };
    const ignored = [
      ...Object.keys(pool.tcp ?? {}).map((k) => `tcp.${k}`),
      ...Object.keys(pool.http ?? {}).filter((k) => k !== 'http2MaxRequests').map((k) => `http.${k}`),
    ];
    if (ignored.length > 0) notes(`${path}.connectionPool`, `gRPC clients honour only http.http2MaxRequests: ${ignored.join(', ')} ignored for proxyless gRPC`);
    return;
  }
  const { tcp, http } = pool;
  cluster['circuit_breakers'] = {
    thresholds: [
      {
        max_connections: tcp?.maxConnections ?? MAX_UINT32,
        max_pending_requests: http?.http1MaxPendingRequests ?? MAX_UINT32,
        max_requests: http?.http2MaxRequests ?? MAX_UINT32,
        max_retries: http?.maxRetries ?? MAX_UINT32,
        track_remaining: true,
      },
    ],
  };
  if (tcp?.connectTimeout) cluster['connect_timeout'] = toDurationJson(tcp.connectTimeout);
  if (tcp?.tcpKeepalive) {
    const keepalive: JsonObject = {};
    const seconds = (text: string | undefined): number | undefined => {
      const nanos = nanosOf(text);
      return nanos === undefined ? undefined : Number(nanos / 1_000_000_000n);
    };
    if (tcp.tcpKeepalive.probes !== undefined) keepalive['keepalive_probes'] = tcp.tcpKeepalive.probes;
    const time = seconds(tcp.tcpKeepalive.time);
    const interval = seconds(tcp.tcpKeepalive.interval);
    if (time !== undefined) keepalive['keepalive_time'] = time;
    if (interval !== undefined) keepalive['keepalive_interval'] = interval;
    cluster['upstream_connection_options'] = { tcp_keepalive: keepalive };
  }
  const common: JsonObject = {};
  if (http?.idleTimeout) common['idle_timeout'] = toDurationJson(http.idleTimeout);
  if (http?.maxRequestsPerConnection) common['max_requests_per_connection'] = http.maxRequestsPerConnection;
  if (tcp?.maxConnectionDuration) common['max_connection_duration'] = toDurationJson(tcp.maxConnectionDuration);
  const upgrade = http?.h2UpgradePolicy === 'UPGRADE';
  if (Object.keys(common).length > 0 || upgrade || http?.maxConcurrentStreams) {
    const options = protocolOptions(cluster);
    if (Object.keys(common).length > 0) options['common_http_protocol_options'] = common;
    if (upgrade || http?.maxConcurrentStreams) {
      const http2: JsonObject = http.maxConcurrentStreams ? { max_concurrent_streams: http.maxConcurrentStreams } : {};
      const explicit = options['explicit_http_config'] as JsonObject | undefined;
      if (upgrade || explicit?.['http2_protocol_options']) options['explicit_http_config'] = { http2_protocol_options: http2 };
    }
  }
}

/** Istio's mapping: consecutive error counts enforced at 100%, success-rate ejection off. */
function envoyOutlierDetection(od: OutlierDetection): JsonObject {
  const out: JsonObject = { enforcing_success_rate: 0 };
  const fivexx = od.consecutive5xxErrors ?? od.consecutiveErrors;
  if (fivexx !== undefined) {
    out['consecutive_5xx'] = fivexx;
    out['enforcing_consecutive_5xx'] = fivexx > 0 ? 100 : 0;
  }
  if (od.consecutiveGatewayErrors !== undefined) {
    out['consecutive_gateway_failure'] = od.consecutiveGatewayErrors;
    out['enforcing_consecutive_gateway_failure'] = od.consecutiveGatewayErrors > 0 ? 100 : 0;
  }
  if (od.interval) out['interval'] = toDurationJson(od.interval);
  if (od.baseEjectionTime) out['base_ejection_time'] = toDurationJson(od.baseEjectionTime);
  if (od.maxEjectionPercent !== undefined && od.maxEjectionPercent > 0) out['max_ejection_percent'] = od.maxEjectionPercent;
  if (od.splitExternalLocalOriginErrors) {
    out['split_external_local_origin_errors'] = true;
    if (od.consecutiveLocalOriginFailures) {
      out['consecutive_local_origin_failure'] = od.consecutiveLocalOriginFailures;
      out['enforcing_consecutive_local_origin_failure'] = 100;
    }
    out['enforcing_local_origin_success_rate'] = 0;
  }
  return out;
}

/**
 * gRPC has no consecutive-error ejection (A50 implements success rate and failure percentage):
 * N consecutive errors become "more than 85% of at least N calls in an interval failed".
 */
function grpcOutlierDetection(od: OutlierDetection, notes: NoteSink, path: string): JsonObject {
  const out: JsonObject = { enforcing_success_rate: 0 };
  const volume = od.consecutive5xxErrors ?? od.consecutiveGatewayErrors ?? od.consecutiveErrors;
  if (volume !== undefined && volume > 0) {
    out['failure_percentage_threshold'] = 85;
    out['enforcing_failure_percentage'] = 100;
    out['failure_percentage_request_volume'] = volume;
    out['failure_percentage_minimum_hosts'] = 1;
    notes(
      `${path}.outlierDetection`,
      `gRPC has no consecutive-error ejection: proxyless gRPC ejects a host when more than 85% of at least ${volume} calls in an interval fail`,
    );
  }
  if (od.interval) out['interval'] = toDurationJson(od.interval);
  if (od.baseEjectionTime) out['base_ejection_time'] = toDurationJson(od.baseEjectionTime);
  if (od.maxEjectionPercent !== undefined && od.maxEjectionPercent > 0) out['max_ejection_percent'] = od.maxEjectionPercent;
  if (od.minHealthPercent !== undefined) notes(`${path}.outlierDetection.minHealthPercent`, 'gRPC has no panic threshold: ignored for proxyless gRPC');
  return out;
}

function applyOutlierDetection(cluster: JsonObject, policy: PolicyFields, dialect: RouteDialect, notes: NoteSink, path: string): void {
  const od = policy.outlierDetection;
  if (!od) return;
  if (dialect === 'grpc') {
    cluster['outlier_detection'] = grpcOutlierDetection(od, notes, path);
    return;
  }
  cluster['outlier_detection'] = envoyOutlierDetection(od);
  if (od.minHealthPercent !== undefined && od.minHealthPercent >= 0) {
    cluster['common_lb_config'] = { healthy_panic_threshold: { value: od.minHealthPercent } };
  }
}

function applyTls(cluster: JsonObject, policy: PolicyFields, sni: string, dialect: RouteDialect, notes: NoteSink, path: string): void {
  const tls = policy.tls;
  if (!tls || tls.mode === undefined || tls.mode === 'DISABLE') return;
  if (dialect === 'grpc') {
    notes(`${path}.tls`, `TLS mode ${tls.mode} needs certificate providers in the gRPC client's bootstrap: proxyless gRPC connects in plaintext`);
    return;
  }
  const common: JsonObject = {};
  const sans = (tls.subjectAltNames ?? []).map((san) => ({ san_type: 'DNS', matcher: { exact: san } }));
  if (tls.mode === 'ISTIO_MUTUAL') {
    common['tls_certificate_sds_secret_configs'] = [{ name: 'default', sds_config: SDS_CONFIG }];
    common['combined_validation_context'] = {
      default_validation_context: sans.length > 0 ? { match_typed_subject_alt_names: sans } : {},
      validation_context_sds_secret_config: { name: 'ROOTCA', sds_config: SDS_CONFIG },
    };
    common['alpn_protocols'] = ['istio-peer-exchange', 'istio'];
  } else if (tls.credentialName) {
    if (tls.mode === 'MUTUAL') common['tls_certificate_sds_secret_configs'] = [{ name: `kubernetes://${tls.credentialName}`, sds_config: SDS_CONFIG }];
    common['validation_context_sds_secret_config'] = { name: `kubernetes://${tls.credentialName}-cacert`, sds_config: SDS_CONFIG };
  } else {
    if (tls.mode === 'MUTUAL' && tls.clientCertificate && tls.privateKey) {
      common['tls_certificates'] = [{ certificate_chain: { filename: tls.clientCertificate }, private_key: { filename: tls.privateKey } }];
    }
    if (tls.caCertificates || sans.length > 0) {
      common['validation_context'] = {
        ...(tls.caCertificates ? { trusted_ca: { filename: tls.caCertificates } } : {}),
        ...(sans.length > 0 ? { match_typed_subject_alt_names: sans } : {}),
      };
    }
  }
  cluster['transport_socket'] = {
    name: 'envoy.transport_sockets.tls',
    typed_config: typed(UPSTREAM_TLS_CONTEXT_TYPE, { common_tls_context: common, sni: tls.sni ?? sni }),
  };
}

export interface ClusterPolicyTarget {
  readonly rule: DestinationRule | undefined;
  readonly subset: string | undefined;
  readonly port: number;
  /** Istio's SNI for ISTIO_MUTUAL: `outbound_.9080_.v1_.reviews.default.svc.cluster.local`. */
  readonly sni: string;
}

/** Applies the effective policy to a cluster built without one (mutates `cluster`). */
export function applyTrafficPolicy(cluster: JsonObject, target: ClusterPolicyTarget, dialect: RouteDialect, notes: NoteSink): void {
  if (!target.rule) return;
  const { policy, path } = effectivePolicy(target.rule, target.subset, target.port);
  applyLoadBalancer(cluster, policy, dialect, notes, path);
  applyConnectionPool(cluster, policy, dialect, notes, path);
  applyOutlierDetection(cluster, policy, dialect, notes, path);
  applyTls(cluster, policy, target.sni, dialect, notes, path);
}

/** The route hash policy a consistent-hash load balancer needs, or undefined when it has none. */
export function routeHashPolicy(hash: ConsistentHashLb | undefined, dialect: RouteDialect, notes: NoteSink, path: string): JsonObject[] | undefined {
  if (!hash) return undefined;
  if (hash.httpHeaderName) return [{ header: { header_name: hash.httpHeaderName } }];
  if (dialect === 'grpc') {
    // A gRPC channel is one client: hashing its id keeps a client on one backend, as source IP would.
    if (hash.useSourceIp) return [{ filter_state: { key: 'io.grpc.channel_id' } }];
    notes(`${path}.loadBalancer.consistentHash`, 'gRPC hashes by header or channel only: cookie and query parameter hashing spread proxyless gRPC calls at random over the ring');
    return undefined;
  }
  if (hash.httpCookie) {
    const cookie: JsonObject = { name: hash.httpCookie.name };
    if (hash.httpCookie.path) cookie['path'] = hash.httpCookie.path;
    if (hash.httpCookie.ttl) cookie['ttl'] = toDurationJson(hash.httpCookie.ttl);
    return [{ cookie }];
  }
  if (hash.useSourceIp) return [{ connection_properties: { source_ip: true } }];
  if (hash.httpQueryParameterName) return [{ query_parameter: { name: hash.httpQueryParameterName } }];
  return undefined;
}

