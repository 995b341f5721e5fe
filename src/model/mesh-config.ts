// The mesh-wide settings Istio keeps in its MeshConfig (`--mesh-config`), with Istio's defaults.

export type OutboundTrafficMode = 'ALLOW_ANY' | 'REGISTRY_ONLY';

export type AccessLogEncoding = 'TEXT' | 'JSON';

export interface AccessLogConfig {
  /** File Envoy appends to (`/dev/stdout` is usual). */
  readonly path: string;
  readonly encoding: AccessLogEncoding;
  /** TEXT: an Envoy format string. JSON: the keys and command operators of each line. */
  readonly format: string | Readonly<Record<string, string>>;
}

export interface MeshConfig {
  /** Absent: no access log (Istio's default, `accessLogFile: ""`). */
  readonly accessLog?: AccessLogConfig;
  /** Percentage of requests traced, 0..100 (Istio's `defaultConfig.tracing.sampling`). */
  readonly tracingSampling: number;
  readonly outboundTrafficPolicy: OutboundTrafficMode;
  /** Connect timeout of every outbound cluster, as a proto3 JSON duration (`10s`). */
  readonly connectTimeout: string;
  /** Namespace whose Sidecar without workloadSelector is every namespace's default; `istio-system` when unset. */
  readonly rootNamespace?: string;
  /** The trust domain of workload identities (`spiffe://<trustDomain>/ns/...`); `cluster.local` when unset. */
  readonly trustDomain: string;
  /** Auto mTLS: with no DestinationRule TLS, clients send mTLS to endpoints with a workload identity and plaintext to the others. */
  readonly enableAutoMtls: boolean;
  /** `defaultServiceExportTo`, `defaultVirtualServiceExportTo`, `defaultDestinationRuleExportTo`: unset is `*`. */
  readonly defaultExportTo?: {
    readonly service?: readonly string[];
    readonly virtualService?: readonly string[];
    readonly destinationRule?: readonly string[];
  };
  /** Where the settings came from (a file path), or `defaults`. */
  readonly source: string;
}

export const DEFAULT_MESH_CONFIG: MeshConfig = {
  tracingSampling: 1,
  outboundTrafficPolicy: 'ALLOW_ANY',
  connectTimeout: '10s',
  trustDomain: 'cluster.local',
  enableAutoMtls: true,
  source: 'defaults',
};

export const DEFAULT_ROOT_NAMESPACE = 'istio-system';

export function rootNamespaceOf(mesh: MeshConfig): string {
  return mesh.rootNamespace ?? DEFAULT_ROOT_NAMESPACE;
}


/** Envoy command operators for a TEXT log line when `accessLogFormat` is empty. */
export const DEFAULT_TEXT_ACCESS_LOG_FORMAT =
  '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% ' +
  '%BYTES_RECEIVED% %BYTES_SENT% %DURATION% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" ' +
  '"%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER% %DOWNSTREAM_REMOTE_ADDRESS%\n';

/** The fields of a JSON log line when `accessLogFormat` is empty. */
export const DEFAULT_JSON_ACCESS_LOG_FORMAT: Readonly<Record<string, string>> = {
  start_time: '%START_TIME%',
  method: '%REQ(:METHOD)%',
  path: '%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%',
  protocol: '%PROTOCOL%',
  response_code: '%RESPONSE_CODE%',
  response_flags: '%RESPONSE_FLAGS%',
  bytes_received: '%BYTES_RECEIVED%',
  bytes_sent: '%BYTES_SENT%',
  duration: '%DURATION%',
  x_forwarded_for: '%REQ(X-FORWARDED-FOR)%',
  user_agent: '%REQ(USER-AGENT)%',
  request_id: '%REQ(X-REQUEST-ID)%',
  authority: '%REQ(:AUTHORITY)%',
  upstream_host: '%UPSTREAM_HOST%',
  upstream_cluster: '%UPSTREAM_CLUSTER%',
  downstream_remote_address: '%DOWNSTREAM_REMOTE_ADDRESS%',
};
