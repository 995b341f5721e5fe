// The gRPC xDS bootstrap a proxyless gRPC application reads (GRPC_XDS_BOOTSTRAP): meshpilot as its
// xDS server, Istio's node id and metadata, the agent's files as the `default` certificate
// provider (gRFC A29, file_watcher) and Istio's inbound listener name template (gRFC A36).
import { join } from 'node:path';
import { CERT_CHAIN_FILE, GRPC_CERT_PROVIDER, KEY_FILE, ROOT_CERT_FILE } from '../security/names.ts';

/** Istio's name for a proxyless gRPC server's listener (gRFC A36 template). */
export const GRPC_SERVER_LISTENER_TEMPLATE = 'xds.istio.io/grpc/lds/inbound/%s';

export interface GrpcBootstrapOptions {
  /** `host:port` of meshpilot's plaintext xDS port (grpc-js-xds 1.14 knows only `insecure` and `google_default` channel credentials). */
  readonly xdsAddress: string;
  readonly podName: string;
  readonly namespace: string;
  readonly podIp: string;
  /** Where the agent writes cert-chain.pem, key.pem and root-cert.pem. */
  readonly certificateDir: string;
  /** How often gRPC re-reads the files; a rotation is seen within this long. */
  readonly refreshIntervalSeconds: number;
  readonly dnsDomain?: string;
  readonly labels?: Readonly<Record<string, string>>;
}

/** Istio's node id: `sidecar~IP~POD.NS~NS.svc.cluster.local`. */
export function sidecarNodeId(podIp: string, podName: string, namespace: string, dnsDomain = 'cluster.local'): string {
  return `sidecar~${podIp}~${podName}.${namespace}~${namespace}.svc.${dnsDomain}`;
}

export function buildGrpcBootstrap(options: GrpcBootstrapOptions): Record<string, unknown> {
  return {
    xds_servers: [{ server_uri: options.xdsAddress, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    node: {
      id: sidecarNodeId(options.podIp, options.podName, options.namespace, options.dnsDomain),
      // As meshpilot reads a node (src/model/proxy.ts): the proxyless generator, its namespace and IPs.
      metadata: {
        GENERATOR: 'grpc',
        NAMESPACE: options.namespace,
        INSTANCE_IPS: options.podIp,
        ...(options.labels && Object.keys(options.labels).length > 0 ? { LABELS: options.labels } : {}),
      },
      locality: {},
    },
    certificate_providers: {
      [GRPC_CERT_PROVIDER]: {
        plugin_name: 'file_watcher',
        config: {
          certificate_file: join(options.certificateDir, CERT_CHAIN_FILE),
          private_key_file: join(options.certificateDir, KEY_FILE),
          ca_certificate_file: join(options.certificateDir, ROOT_CERT_FILE),
          refresh_interval: `${options.refreshIntervalSeconds}s`,
        },
      },
    },
    server_listener_resource_name_template: GRPC_SERVER_LISTENER_TEMPLATE,
  };
}
