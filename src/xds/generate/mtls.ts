// Istio mutual TLS in Envoy's and gRPC's terms: the workload certificate and trust bundle (over
// SDS for Envoy, from certificate providers for gRPC, gRFC A29), the peers' SPIFFE identities,
// and the mode a proxy's own workload accepts (PeerAuthentication).
import { workloadNamespace } from '../../model/workload-labels.ts';
import type { WorkloadMtls } from '../../model/peer-authentication.ts';
import type { Proxy } from '../../model/proxy.ts';
import type { PushContext } from '../../model/push-context.ts';
import type { Endpoint, Service } from '../../model/service.ts';
import { GRPC_CERT_PROVIDER, ROOT_SECRET, SDS_CLUSTER, spiffeId, TLS_MODE_LABEL, WORKLOAD_SECRET } from '../../security/names.ts';
import type {
  CertificateValidationContext,
  Cluster_TransportSocketMatch,
  CommonTlsContext,
  ConfigSource,
  DownstreamTlsContext,
  StringMatcher,
  SubjectAltNameMatcher,
  TransportSocket,
  UpstreamTlsContext,
} from '../envoy-types.generated.ts';
import { DOWNSTREAM_TLS_CONTEXT_TYPE, RAW_BUFFER_TYPE, UPSTREAM_TLS_CONTEXT_TYPE } from '../type-urls.ts';
import { typed } from './common.ts';
import { endpointsByAddress } from './inbound.ts';

export const TLS_TRANSPORT_SOCKET = 'envoy.transport_sockets.tls';
/** The value of the tlsMode label (and of the EDS transport-socket-match metadata) of a workload with an identity. */
export const ISTIO_TLS_MODE = 'istio';
/** The EDS endpoint metadata key Envoy matches `transport_socket_matches` against. */
export const TRANSPORT_SOCKET_MATCH_KEY = 'envoy.transport_socket_match';

/** Where Envoy fetches secrets: the agent's SDS server (Istio's ConstructSdsSecretConfig). */
export const SDS_CONFIG: ConfigSource = {
  api_config_source: { api_type: 'GRPC', set_node_on_first_message_only: true, transport_api_version: 'V3', grpc_services: [{ envoy_grpc: { cluster_name: SDS_CLUSTER } }] },
  resource_api_version: 'V3',
};

/** The workload certificate and the trust bundle are waited for however long the agent takes, as Istio does: never served without them. */
const MESH_SDS_CONFIG: ConfigSource = { ...SDS_CONFIG, initial_fetch_timeout: '0s' };

/** What an Istio client offers (the in-mesh markers a server's PERMISSIVE chain matches). */
export const ISTIO_CLIENT_ALPN: readonly string[] = ['istio-peer-exchange', 'istio'];
/** The ALPN values a PERMISSIVE server takes as mTLS from a mesh client (Istio's allIstioMtlsALPNs). */
const ISTIO_MTLS_ALPNS: readonly string[] = ['istio', 'istio-peer-exchange', 'istio-http/1.0', 'istio-http/1.1', 'istio-h2'];
/** Istio's server ALPN: HTTP chains negotiate h2 or http/1.1; TCP chains also metadata exchange. */
const SERVER_HTTP_ALPN: readonly string[] = ['h2', 'http/1.1'];
const SERVER_TCP_ALPN: readonly string[] = ['istio-peer-exchange', 'h2', 'http/1.1'];
/** Istio's server cipher suites (authn utils SupportedCiphers). */
const SERVER_CIPHERS: readonly string[] = [
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'AES256-GCM-SHA384',
  'AES128-GCM-SHA256',
];

function exactSans(sans: readonly string[]): StringMatcher[] {
  return sans.map((san): StringMatcher => ({ exact: san }));
}

/** Exact SAN matchers: a SPIFFE ID is a URI SAN, any other name a DNS one. */
export function subjectAltNameMatchers(sans: readonly string[]): SubjectAltNameMatcher[] {
  return sans.map((san): SubjectAltNameMatcher => ({ san_type: san.startsWith('spiffe://') ? 'URI' : 'DNS', matcher: { exact: san } }));
}

/** Envoy's side of ISTIO_MUTUAL: the workload certificate, the server's SPIFFE IDs checked against the mesh root. */
export function istioMutualUpstreamContext(sans: readonly string[], sni: string): UpstreamTlsContext {
  return {
    common_tls_context: {
      tls_certificate_sds_secret_configs: [{ name: WORKLOAD_SECRET, sds_config: MESH_SDS_CONFIG }],
      combined_validation_context: {
        default_validation_context: sans.length > 0 ? { match_typed_subject_alt_names: subjectAltNameMatchers(sans) } : {},
        validation_context_sds_secret_config: { name: ROOT_SECRET, sds_config: MESH_SDS_CONFIG },
      },
      alpn_protocols: [...ISTIO_CLIENT_ALPN],
    },
    sni,
  };
}

/**
 * gRPC's side (A29): certificates from the bootstrap's certificate provider; SANs in the field
 * gRPC reads (the deprecated match_subject_alt_names).
 */
function grpcCommonTlsContext(sans: readonly string[]): CommonTlsContext {
  return {
    tls_certificate_provider_instance: { instance_name: GRPC_CERT_PROVIDER, certificate_name: WORKLOAD_SECRET },
    validation_context: {
      ...(sans.length > 0 ? ({ match_subject_alt_names: exactSans(sans) } satisfies CertificateValidationContext) : {}),
      ca_certificate_provider_instance: { instance_name: GRPC_CERT_PROVIDER, certificate_name: ROOT_SECRET },
    },
  };
}

export function grpcUpstreamContext(sans: readonly string[]): UpstreamTlsContext {
  return { common_tls_context: grpcCommonTlsContext(sans) };
}

/** A gRPC server's mTLS: its certificate, and a client certificate required and checked against the root (gRPC matches no SAN on servers). */
export function grpcDownstreamContext(): DownstreamTlsContext {
  return { common_tls_context: grpcCommonTlsContext([]), require_client_certificate: true };
}

/** Istio's inbound mTLS (authn BuildInboundTLS): certificate `default`, client certificates required and checked against `ROOTCA`. */
export function sidecarDownstreamContext(protocol: 'http' | 'tcp'): DownstreamTlsContext {
  return {
    common_tls_context: {
      tls_params: { tls_minimum_protocol_version: 'TLSv1_2', tls_maximum_protocol_version: 'TLSv1_3', cipher_suites: [...SERVER_CIPHERS] },
      tls_certificate_sds_secret_configs: [{ name: WORKLOAD_SECRET, sds_config: MESH_SDS_CONFIG }],
      combined_validation_context: {
        default_validation_context: {},
        validation_context_sds_secret_config: { name: ROOT_SECRET, sds_config: MESH_SDS_CONFIG },
      },
      alpn_protocols: [...(protocol === 'http' ? SERVER_HTTP_ALPN : SERVER_TCP_ALPN)],
    },
    require_client_certificate: true,
  };
}

export function tlsTransportSocket(...[contextType, context]: ['upstream', UpstreamTlsContext] | ['downstream', DownstreamTlsContext]): TransportSocket {
  return { name: TLS_TRANSPORT_SOCKET, typed_config: contextType === 'upstream' ? typed(UPSTREAM_TLS_CONTEXT_TYPE, context) : typed(DOWNSTREAM_TLS_CONTEXT_TYPE, context) };
}

/** Istio's auto mTLS sockets: TLS to endpoints labelled `tlsMode: istio`, plaintext to the rest. */
export function autoMtlsSocketMatches(tlsSocket: TransportSocket): Cluster_TransportSocketMatch[] {
  return [
    { name: `tlsMode-${ISTIO_TLS_MODE}`, match: { tlsMode: ISTIO_TLS_MODE }, transport_socket: tlsSocket },
    { name: 'tlsMode-disabled', match: {}, transport_socket: { name: 'envoy.transport_sockets.raw_buffer', typed_config: typed(RAW_BUFFER_TYPE, {}) } },
  ];
}

/** Istio's rule: an endpoint accepts mTLS when its workload carries `security.istio.io/tlsMode: istio` (the injector sets it). */
export function acceptsIstioMtls(endpoint: Pick<Endpoint, 'labels'>): boolean {
  return endpoint.labels[TLS_MODE_LABEL] === ISTIO_TLS_MODE;
}

/** The SPIFFE IDs of the service accounts behind a service's endpoints, sorted (Istio's ServiceAccounts). */
export function serviceAccountSans(push: PushContext, service: Service): readonly string[] {
  return push.memo(`sans:${service.hostname}`, () => {
    const ids = new Set<string>();
    for (const endpoint of push.endpointsByHost.get(service.hostname) ?? []) {
      if (!endpoint.serviceAccount) continue;
      const namespace = workloadNamespace(endpoint) ?? service.namespace;
      ids.add(spiffeId(push.meshConfig.trustDomain, namespace, endpoint.serviceAccount));
    }
    return [...ids].sort();
  });
}

/** Every endpoint of the push by its workload (`namespace/pod`). */
function endpointsByWorkload(push: PushContext): ReadonlyMap<string, readonly Endpoint[]> {
  return push.memo('endpoints-by-workload', () => {
    const index = new Map<string, Endpoint[]>();
    for (const endpoints of push.endpointsByHost.values()) {
      for (const endpoint of endpoints) {
        if (!endpoint.workload) continue;
        const list = index.get(endpoint.workload);
        if (list) list.push(endpoint);
        else index.set(endpoint.workload, [endpoint]);
      }
    }
    return index;
  });
}

/** Where a proxy's identity was learned: its node's SERVICE_ACCOUNT (as istio-agent sends it), or the pod at its address or of its name. */
export type IdentitySource = 'node metadata' | 'workload';

export interface ProxyIdentity {
  /** `spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>` */
  readonly spiffeId: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly source: IdentitySource;
}

/** The SPIFFE identity the proxy's workload runs as, or undefined when neither its node nor a known pod says. */
export function workloadIdentity(push: PushContext, proxy: Proxy): ProxyIdentity | undefined {
  const identity = (namespace: string, serviceAccount: string, source: IdentitySource): ProxyIdentity => ({
    spiffeId: spiffeId(push.meshConfig.trustDomain, namespace, serviceAccount),
    namespace,
    serviceAccount,
    source,
  });
  const declared = proxy.metadata['SERVICE_ACCOUNT'];
  if (typeof declared === 'string' && declared !== '' && proxy.namespace) return identity(proxy.namespace, declared, 'node metadata');
  const fits = (endpoint: Endpoint): ProxyIdentity | undefined => {
    const namespace = workloadNamespace(endpoint);
    if (!endpoint.serviceAccount || !namespace || (proxy.namespace !== undefined && namespace !== proxy.namespace)) return undefined;
    return identity(namespace, endpoint.serviceAccount, 'workload');
  };
  const byAddress = endpointsByAddress(push);
  for (const ip of proxy.ipAddresses) {
    for (const { endpoint } of byAddress.get(ip) ?? []) {
      const found = fits(endpoint);
      if (found) return found;
    }
  }
  // A proxy at an address no endpoint has (a VM, NAT) may still be a known pod by name.
  const podName = proxy.podName && proxy.namespace ? `${proxy.namespace}/${proxy.podName}` : undefined;
  if (!podName) return undefined;
  for (const endpoint of endpointsByWorkload(push).get(podName) ?? []) {
    const found = fits(endpoint);
    if (found) return found;
  }
  return undefined;
}

/**
 * Whether the proxy holds a workload certificate: its workload carries Istio's tlsMode label, which
 * the injector sets exactly where the agent runs. Without one it can neither present a client
 * certificate nor terminate mTLS, so it gets no auto mTLS and no PERMISSIVE TLS chains.
 */
export function proxyHasIdentity(push: PushContext, proxy: Proxy): boolean {
  return acceptsIstioMtls({ labels: push.workloadLabels(proxy) });
}

/** The PeerAuthentication that decides what the proxy's own workload accepts. */
export function workloadMtls(push: PushContext, proxy: Proxy): WorkloadMtls {
  const labels = push.workloadLabels(proxy);
  return push.peerAuthentication.forWorkload(proxy.namespace ?? '', labels);
}

/** The ALPN a PERMISSIVE chain matches to tell mesh mTLS from other TLS. */
export function istioMtlsAlpns(): string[] {
  return [...ISTIO_MTLS_ALPNS];
}
