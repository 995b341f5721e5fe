// Every type URL meshpilot speaks, in one place; the literal types let the compiler
// tell which resource kind a URL names.
export const CLUSTER_TYPE = 'type.googleapis.com/envoy.config.cluster.v3.Cluster';
export const ENDPOINT_TYPE = 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment';
export const LISTENER_TYPE = 'type.googleapis.com/envoy.config.listener.v3.Listener';
export const ROUTE_TYPE = 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration';

/**
 * SDS: Kubernetes Secrets a gateway's TLS names (`kubernetes://<name>`) come on the ADS stream;
 * the workload certificate (`default`, `ROOTCA`) from `meshpilot agent` on its Unix socket.
 */
export const SECRET_TYPE = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';

export type ResourceTypeUrl = typeof CLUSTER_TYPE | typeof ENDPOINT_TYPE | typeof LISTENER_TYPE | typeof ROUTE_TYPE | typeof SECRET_TYPE;

/** Push order required by xds_protocol: clusters before their endpoints, listeners before their routes and secrets (Istio's order). */
export const PUSH_ORDER: readonly ResourceTypeUrl[] = [CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, SECRET_TYPE];

export type ShortType = 'cds' | 'eds' | 'lds' | 'rds' | 'sds';

export const SHORT_TYPE: Readonly<Record<ResourceTypeUrl, ShortType>> = {
  [CLUSTER_TYPE]: 'cds',
  [ENDPOINT_TYPE]: 'eds',
  [LISTENER_TYPE]: 'lds',
  [ROUTE_TYPE]: 'rds',
  [SECRET_TYPE]: 'sds',
};

export const TYPE_BY_SHORT: Readonly<Record<ShortType, ResourceTypeUrl>> = {
  cds: CLUSTER_TYPE,
  eds: ENDPOINT_TYPE,
  lds: LISTENER_TYPE,
  rds: ROUTE_TYPE,
  sds: SECRET_TYPE,
};

/** Types whose empty subscription means "everything" (wildcard) in SotW. */
export const WILDCARD_TYPES: ReadonlySet<ResourceTypeUrl> = new Set([CLUSTER_TYPE, LISTENER_TYPE]);

export function isResourceTypeUrl(url: string): url is ResourceTypeUrl {
  return url === CLUSTER_TYPE || url === ENDPOINT_TYPE || url === LISTENER_TYPE || url === ROUTE_TYPE || url === SECRET_TYPE;
}

/** `type.googleapis.com/a.b.C` -> `a.b.C` */
export function messageNameOf(typeUrl: string): string {
  return typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
}

export function typeUrlOf(messageName: string): string {
  return `type.googleapis.com/${messageName}`;
}

// Extension type URLs used inside typed_config fields.
export const HTTP_CONNECTION_MANAGER_TYPE =
  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
export const ROUTER_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
export const FAULT_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault';
export const TCP_PROXY_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
export const HTTP_PROTOCOL_OPTIONS_TYPE = 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
export const CORS_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors';
export const CORS_POLICY_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy';
export const PREVIOUS_HOSTS_TYPE = 'type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate';
export const PREVIOUS_PRIORITIES_TYPE =
  'type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig';
export const UPSTREAM_TLS_CONTEXT_TYPE = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';
export const DOWNSTREAM_TLS_CONTEXT_TYPE = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext';
export const RAW_BUFFER_TYPE = 'type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer';
export const FILE_ACCESS_LOG_TYPE = 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog';
export const ORIGINAL_DST_TYPE = 'type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst';
export const TLS_INSPECTOR_TYPE = 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector';
export const RBAC_HTTP_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC';
export const RBAC_NETWORK_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC';
