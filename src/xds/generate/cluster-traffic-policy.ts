// A DestinationRule's traffic policy on a cluster, as Istio applies it: the rule's policy with
// its port-level settings, overridden by the subset's, then by the subset's port-level settings.
// Proxyless gRPC gets only what it implements; the rest degrades predictably and is noted.
import { parseDuration, toDurationJson } from '../../model/duration.ts';
import type { ClientTlsSettings, ConsistentHashLb, DestinationRule, LoadBalancerSettings, OutlierDetection, PortTrafficPolicy, TrafficPolicy } from '../../model/rules.ts';
import type {
  CertificateValidationContext,
  CircuitBreakers,
  Cluster,
  Cluster_SlowStartConfig,
  CommonTlsContext,
  Core_HttpProtocolOptions,
  Http2ProtocolOptions,
  OutlierDetection as EnvoyOutlierDetection,
  RouteAction_HashPolicy,
  RouteAction_HashPolicy_Cookie,
  SubjectAltNameMatcher,
  TcpKeepalive,
  TypedAny,
  UpstreamHttpProtocolOptions,
  UpstreamTlsContext,
} from '../envoy-types.generated.ts';
import { HTTP_PROTOCOL_OPTIONS_TYPE, UPSTREAM_TLS_CONTEXT_TYPE } from '../type-urls.ts';
import { typed } from './common.ts';
import { grpcUpstreamContext, istioMutualUpstreamContext, SDS_CONFIG, tlsTransportSocket } from './mtls.ts';
import type { NoteSink, RouteDialect } from './route-match.ts';

const MAX_UINT32 = 4_294_967_295;

/**
 * Istio's thresholds for every cluster without a connectionPool (cluster_traffic_policy.go): no
 * limit, so Envoy's 1024-connection defaults never throttle a busy service, with remaining counts.
 */
export function defaultCircuitBreakers(): CircuitBreakers {
  return {
    thresholds: [
      { max_connections: MAX_UINT32, max_pending_requests: MAX_UINT32, max_requests: MAX_UINT32, max_retries: MAX_UINT32, track_remaining: true },
    ],
  };
}
/** gRPC's ring hash refuses rings above 8M entries (A42). */
const GRPC_MAX_RING_SIZE = 8_388_608;
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

function applyLoadBalancer(cluster: Cluster, policy: PolicyFields, dialect: RouteDialect, notes: NoteSink, path: string): void {
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
  const slowStart = slowStartConfig(lb);
  if (slowStart && dialect === 'grpc') notes(`${path}.loadBalancer.warmup`, 'gRPC clients have no slow start: ignored for proxyless gRPC');
  if (dialect === 'envoy' && simple === 'ROUND_ROBIN') {
    cluster['lb_policy'] = 'ROUND_ROBIN';
    if (slowStart) cluster['round_robin_lb_config'] = { slow_start_config: slowStart };
    return;
  }
  if (dialect === 'envoy' && simple === 'UNSPECIFIED') {
    if (slowStart) cluster['least_request_lb_config'] = { slow_start_config: slowStart };
    return;
  }
  if (simple === 'UNSPECIFIED' || simple === 'ROUND_ROBIN') return;
  if (dialect === 'grpc') {
    // A gRPC client NACKs a cluster with a policy it lacks; round robin is the predictable fallback.
    notes(`${path}.loadBalancer.simple`, `gRPC clients implement ROUND_ROBIN and ring hash only: ${simple} is served to proxyless gRPC as ROUND_ROBIN`);
    return;
  }
  if (simple === 'LEAST_REQUEST' || simple === 'LEAST_CONN') {
    cluster['lb_policy'] = 'LEAST_REQUEST';
    if (slowStart) cluster['least_request_lb_config'] = { slow_start_config: slowStart };
  }
  else if (simple === 'RANDOM') cluster['lb_policy'] = 'RANDOM';
  else {
    // PASSTHROUGH: connect to the address the caller asked for, as Istio does.
    cluster['type'] = 'ORIGINAL_DST';
    cluster['lb_policy'] = 'CLUSTER_PROVIDED';
    delete cluster['eds_cluster_config'];
  }
}

/** Istio's slow start: `warmup` (aggression 1 and 10% unless set), else the deprecated `warmupDurationSecs`. */
function slowStartConfig(lb: LoadBalancerSettings): Cluster_SlowStartConfig | undefined {
  if (lb.warmup?.duration) {
    return {
      slow_start_window: toDurationJson(lb.warmup.duration),
      aggression: { default_value: lb.warmup.aggression ?? 1, runtime_key: '(' },
      min_weight_percent: { value: lb.warmup.minimumPercent ?? 10 },
    };
  }
  return lb.warmupDurationSecs ? { slow_start_window: toDurationJson(lb.warmupDurationSecs) } : undefined;
}

const PROTOCOL_OPTIONS_KEY = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

function protocolOptions(cluster: Cluster): TypedAny<typeof HTTP_PROTOCOL_OPTIONS_TYPE> {
  const all = (cluster['typed_extension_protocol_options'] ??= {});
  const existing = all[PROTOCOL_OPTIONS_KEY];
  if (existing?.['@type'] === HTTP_PROTOCOL_OPTIONS_TYPE) return existing;
  const created = typed(HTTP_PROTOCOL_OPTIONS_TYPE, { explicit_http_config: { http_protocol_options: {} } });
  all[PROTOCOL_OPTIONS_KEY] = created;
  return created;
}

function applyConnectionPool(cluster: Cluster, policy: PolicyFields, dialect: RouteDialect, notes: NoteSink, path: string): void {
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
  // As in Istio, 0 cannot be told from unset: only positive limits replace the defaults.
  const limit = (value: number | undefined): number => (value !== undefined && value > 0 ? value : MAX_UINT32);
  cluster['circuit_breakers'] = {
    thresholds: [
      {
        max_connections: limit(tcp?.maxConnections),
        max_pending_requests: limit(http?.http1MaxPendingRequests),
        max_requests: limit(http?.http2MaxRequests),
        max_retries: limit(http?.maxRetries),
        track_remaining: true,
      },
    ],
  };
  if (tcp?.connectTimeout) cluster['connect_timeout'] = toDurationJson(tcp.connectTimeout);
  if (tcp?.tcpKeepalive) {
    const keepalive: TcpKeepalive = {};
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
  const common: Core_HttpProtocolOptions = {};
  if (http?.idleTimeout) common['idle_timeout'] = toDurationJson(http.idleTimeout);
  if (http?.maxRequestsPerConnection) common['max_requests_per_connection'] = http.maxRequestsPerConnection;
  if (tcp?.maxConnectionDuration) common['max_connection_duration'] = toDurationJson(tcp.maxConnectionDuration);
  const upgrade = http?.h2UpgradePolicy === 'UPGRADE';
  const keepalive = http?.http2KeepAlive;
  if (Object.keys(common).length > 0 || upgrade || http?.maxConcurrentStreams || (keepalive && isHttp2Cluster(cluster))) {
    const options = protocolOptions(cluster);
    if (Object.keys(common).length > 0) options['common_http_protocol_options'] = common;
    // As Istio: stream limits and PING keepalives apply to clusters that speak HTTP/2.
    if (upgrade || isHttp2Cluster(cluster)) {
      options['explicit_http_config'] = {
        http2_protocol_options: {
          ...(http?.maxConcurrentStreams ? ({ max_concurrent_streams: http.maxConcurrentStreams } satisfies Http2ProtocolOptions) : {}),
          ...(keepalive?.interval && keepalive.timeout
            ? ({ connection_keepalive: { interval: toDurationJson(keepalive.interval), timeout: toDurationJson(keepalive.timeout) } } satisfies Http2ProtocolOptions)
            : {}),
        },
      };
    }
  }
}

/** Istio's mapping: consecutive error counts enforced at 100%, success-rate ejection off. */
function envoyOutlierDetection(od: OutlierDetection): EnvoyOutlierDetection {
  const out: EnvoyOutlierDetection = { enforcing_success_rate: 0 };
  // The deprecated consecutiveErrors is ignored, as Istio ignores it.
  const fivexx = od.consecutive5xxErrors;
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
function grpcOutlierDetection(od: OutlierDetection, notes: NoteSink, path: string): EnvoyOutlierDetection {
  const out: EnvoyOutlierDetection = { enforcing_success_rate: 0 };
  const volume = od.consecutive5xxErrors ?? od.consecutiveGatewayErrors;
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

function applyOutlierDetection(cluster: Cluster, policy: PolicyFields, dialect: RouteDialect, notes: NoteSink, path: string): void {
  const od = policy.outlierDetection;
  if (!od) return;
  if (dialect === 'grpc') {
    cluster['outlier_detection'] = grpcOutlierDetection(od, notes, path);
    return;
  }
  cluster['outlier_detection'] = envoyOutlierDetection(od);
  // Istio turns Envoy's 50% panic threshold off with outlier detection unless minHealthPercent sets one.
  const panic = od.minHealthPercent ?? 0;
  if (panic >= 0) cluster['common_lb_config'] = { ...cluster['common_lb_config'], healthy_panic_threshold: { value: panic } };
}

/** Where Envoy finds the system's trusted CAs (Istio's proxy image and Debian/Ubuntu keep them here). */
export const SYSTEM_TRUST_STORE = '/etc/ssl/certs/ca-certificates.crt';

function isHttp2Cluster(cluster: Cluster): boolean {
  const options = cluster['typed_extension_protocol_options']?.[PROTOCOL_OPTIONS_KEY];
  return options?.['@type'] === HTTP_PROTOCOL_OPTIONS_TYPE && options['explicit_http_config']?.['http2_protocol_options'] !== undefined;
}

/**
 * SIMPLE and MUTUAL as Istio's cluster_tls.go: the SNI the user set, else auto_sni from the request's
 * host; the server certificate checked against caCertificates or the system trust store (unless
 * insecureSkipVerify), for the SANs given, else (auto_san_validation) for the host it was asked for.
 */
function originationContext(cluster: Cluster, tls: ClientTlsSettings, serviceSans: readonly string[]): UpstreamTlsContext {
  // A ServiceEntry's subjectAltNames stand in when the rule names none (Istio's constructUpstreamTLS).
  const names = tls.subjectAltNames?.length ? tls.subjectAltNames : serviceSans;
  const sans: SubjectAltNameMatcher[] = names.map((san): SubjectAltNameMatcher => ({ san_type: 'DNS', matcher: { exact: san } }));
  const common: CommonTlsContext = {};
  if (tls.credentialName) {
    if (tls.mode === 'MUTUAL') common['tls_certificate_sds_secret_configs'] = [{ name: `kubernetes://${tls.credentialName}`, sds_config: SDS_CONFIG }];
    common['validation_context_sds_secret_config'] = { name: `kubernetes://${tls.credentialName}-cacert`, sds_config: SDS_CONFIG };
  } else {
    if (tls.mode === 'MUTUAL' && tls.clientCertificate && tls.privateKey) {
      common['tls_certificates'] = [{ certificate_chain: { filename: tls.clientCertificate }, private_key: { filename: tls.privateKey } }];
    }
    common['validation_context'] = tls.insecureSkipVerify
      ? {}
      : { trusted_ca: { filename: tls.caCertificates ?? SYSTEM_TRUST_STORE }, ...(sans.length > 0 ? ({ match_typed_subject_alt_names: sans } satisfies CertificateValidationContext) : {}) };
  }
  if (isHttp2Cluster(cluster)) common['alpn_protocols'] = ['h2'];
  const autoSni = !tls.sni;
  const autoSan = autoSni && !tls.subjectAltNames?.length && tls.insecureSkipVerify !== true;
  // auto_san_validation is only ever set with auto_sni.
  if (autoSni) protocolOptions(cluster)['upstream_http_protocol_options'] = { auto_sni: true, ...(autoSan ? ({ auto_san_validation: true } satisfies UpstreamHttpProtocolOptions) : {}) };
  return { common_tls_context: common, ...(tls.sni ? ({ sni: tls.sni } satisfies UpstreamTlsContext) : {}) };
}

function applyTls(cluster: Cluster, policy: PolicyFields, target: ClusterPolicyTarget, dialect: RouteDialect, notes: NoteSink, path: string): void {
  const tls = policy.tls;
  if (!tls || tls.mode === undefined || tls.mode === 'DISABLE') return;
  // Istio's buildUpstreamTLSSettings: the rule's SANs, else the identities of the service's workloads.
  const sans = tls.subjectAltNames ?? target.serviceAccounts ?? [];
  if (dialect === 'grpc') {
    if (tls.mode === 'ISTIO_MUTUAL') {
      cluster['transport_socket'] = tlsTransportSocket('upstream', grpcUpstreamContext(sans));
      return;
    }
    notes(`${path}.tls`, `TLS mode ${tls.mode} needs certificates gRPC's xDS security does not take from a DestinationRule: proxyless gRPC connects in plaintext`);
    return;
  }
  const context = tls.mode === 'ISTIO_MUTUAL' ? istioMutualUpstreamContext(sans, tls.sni ?? target.sni) : originationContext(cluster, tls, target.serviceSubjectAltNames ?? []);
  cluster['transport_socket'] = { name: 'envoy.transport_sockets.tls', typed_config: typed(UPSTREAM_TLS_CONTEXT_TYPE, context) };
}

export interface ClusterPolicyTarget {
  readonly rule: DestinationRule | undefined;
  readonly subset: string | undefined;
  readonly port: number;
  /** Istio's SNI for ISTIO_MUTUAL: `outbound_.9080_.v1_.reviews.default.svc.cluster.local`. */
  readonly sni: string;
  /** The ServiceEntry's subjectAltNames, for SIMPLE and MUTUAL when the rule gives none. */
  readonly serviceSubjectAltNames?: readonly string[];
  /** The SPIFFE IDs the service's servers present (Istio's ServiceAccounts), for ISTIO_MUTUAL when the rule gives none. */
  readonly serviceAccounts?: readonly string[];
}

/** Applies the effective policy to a cluster built without one (mutates `cluster`). */
export function applyTrafficPolicy(cluster: Cluster, target: ClusterPolicyTarget, dialect: RouteDialect, notes: NoteSink): void {
  if (!target.rule) return;
  const { policy, path } = effectivePolicy(target.rule, target.subset, target.port);
  applyLoadBalancer(cluster, policy, dialect, notes, path);
  applyConnectionPool(cluster, policy, dialect, notes, path);
  applyOutlierDetection(cluster, policy, dialect, notes, path);
  applyTls(cluster, policy, target, dialect, notes, path);
}

/** The route hash policy a consistent-hash load balancer needs, or undefined when it has none. */
export function routeHashPolicy(hash: ConsistentHashLb | undefined, dialect: RouteDialect, notes: NoteSink, path: string): RouteAction_HashPolicy[] | undefined {
  if (!hash) return undefined;
  if (hash.httpHeaderName) return [{ header: { header_name: hash.httpHeaderName } }];
  if (dialect === 'grpc') {
    // A gRPC channel is one client: hashing its id keeps a client on one backend, as source IP would.
    if (hash.useSourceIp) return [{ filter_state: { key: 'io.grpc.channel_id' } }];
    notes(`${path}.loadBalancer.consistentHash`, 'gRPC hashes by header or channel only: cookie and query parameter hashing spread proxyless gRPC calls at random over the ring');
    return undefined;
  }
  if (hash.httpCookie) {
    const cookie: RouteAction_HashPolicy_Cookie = { name: hash.httpCookie.name };
    if (hash.httpCookie.path) cookie['path'] = hash.httpCookie.path;
    if (hash.httpCookie.ttl) cookie['ttl'] = toDurationJson(hash.httpCookie.ttl);
    return [{ cookie }];
  }
  if (hash.useSourceIp) return [{ connection_properties: { source_ip: true } }];
  if (hash.httpQueryParameterName) return [{ query_parameter: { name: hash.httpQueryParameterName } }];
  return undefined;
}

