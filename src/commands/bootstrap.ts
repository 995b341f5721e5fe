// `meshpilot bootstrap`: prints an Envoy bootstrap that takes everything from meshpilot over ADS,
// for users wiring Envoy by hand (the deploy/ sample's ConfigMap holds one).
import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import { stringify } from 'yaml';
import { MeshpilotError } from '../errors.ts';
import { splitHostPort } from '../model/address.ts';
import { parseProxy } from '../model/proxy.ts';
import { RE2_MAX_PROGRAM_SIZE } from '../model/re2.ts';
import { ROOT_SECRET, SDS_CLUSTER, SDS_SOCKET_PATH, SECURE_XDS_PORT, WORKLOAD_SECRET } from '../security/names.ts';
import { SDS_CONFIG } from '../xds/generate/mtls.ts';
import { UPSTREAM_TLS_CONTEXT_TYPE } from '../xds/type-urls.ts';

export const DEFAULT_XDS_ADDRESS = 'meshpilot.meshpilot-system.svc:15010';
/** meshpilot's Service name: the DNS SAN its serving certificate carries. */
export const MESHPILOT_SERVICE_NAME = 'meshpilot.meshpilot-system.svc';
export const DEFAULT_SECURE_XDS_ADDRESS = `${MESHPILOT_SERVICE_NAME}:${SECURE_XDS_PORT}`;
/** The static cluster that carries the ADS stream; named as Istio names it. */
export const XDS_CLUSTER = 'xds-grpc';

export interface BootstrapOptions {
  readonly nodeId: string;
  /** `host:port` (or `[v6]:port`) of meshpilot's plaintext xDS port. */
  readonly xdsAddress: string;
  readonly adminPort: number;
  /** Envoy's service cluster (`--service-cluster`), for stats and tracing. */
  readonly cluster?: string;
  /** Delta xDS (`DELTA_GRPC`): Envoy is sent only what changed, and says what it has on reconnect. */
  readonly delta?: boolean;
  /** The `sds-grpc` cluster to `meshpilot agent`'s Unix socket, for the workload certificate. */
  readonly sdsSocket?: string;
  /**
   * ADS over TLS (15012): Envoy presents its workload certificate (SDS `default`) and checks
   * meshpilot's against the mesh root (SDS `ROOTCA`) and this DNS name. Needs `sdsSocket`.
   */
  readonly xdsTlsServerName?: string;
}

/** Istio's `sds-grpc` cluster: HTTP/2 to the agent's Unix socket. */
function sdsCluster(socketPath: string): Record<string, unknown> {
  return {
    name: SDS_CLUSTER,
    type: 'STATIC',
    connect_timeout: '1s',
    typed_extension_protocol_options: HTTP2_ONLY,
    load_assignment: { cluster_name: SDS_CLUSTER, endpoints: [{ lb_endpoints: [{ endpoint: { address: { pipe: { path: socketPath } } } }] }] },
  };
}

/** The xds-grpc cluster's TLS: the workload certificate out, meshpilot's name and the mesh root checked. */
function xdsTransportSocket(serverName: string): Record<string, unknown> {
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': UPSTREAM_TLS_CONTEXT_TYPE,
      sni: serverName,
      common_tls_context: {
        alpn_protocols: ['h2'],
        tls_certificate_sds_secret_configs: [{ name: WORKLOAD_SECRET, sds_config: SDS_CONFIG }],
        combined_validation_context: {
          default_validation_context: { match_typed_subject_alt_names: [{ san_type: 'DNS', matcher: { exact: serverName } }] },
          validation_context_sds_secret_config: { name: ROOT_SECRET, sds_config: SDS_CONFIG },
        },
      },
    },
  };
}

// gRPC needs HTTP/2 to the control plane and to the agent.
const HTTP2_ONLY: Record<string, unknown> = {
  'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
    '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
    explicit_http_config: { http2_protocol_options: {} },
  },
};

function splitAddress(address: string): { host: string; port: number } {
  const split = splitHostPort(address);
  if (!split) throw new MeshpilotError('MP_CONFIG', `--xds-address "${address}" is not host:port: write e.g. ${DEFAULT_XDS_ADDRESS} or 10.96.0.10:15010`);
  return split;
}

function isIp(host: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.includes(':');
}

function defaultServiceCluster(podName: string | undefined, namespace: string | undefined): string {
  if (!podName) return 'meshpilot-proxy';
  return namespace ? `${podName}.${namespace}` : podName;
}

/**
 * Envoy's runtime as Istio's bootstrap sets it: a regex may compile to an RE2 program of up to
 * 32768 instructions (Envoy's default refuses more than 100, so a route matching a few words
 * would be rejected), no global connection cap; the admin layer keeps `/runtime_modify` working.
 */
export const BOOTSTRAP_RUNTIME: Readonly<Record<string, unknown>> = {
  layered_runtime: {
    layers: [
      { name: 'global config', static_layer: { 're2.max_program_size.error_level': String(RE2_MAX_PROGRAM_SIZE), 'overload.global_downstream_max_connections': '2147483647' } },
      { name: 'admin', admin_layer: {} },
    ],
  },
};

/** The bootstrap as proto3 JSON (`envoy.config.bootstrap.v3.Bootstrap`). */
export function buildBootstrap(options: BootstrapOptions): Record<string, unknown> {
  const { host, port } = splitAddress(options.xdsAddress);
  if (options.xdsTlsServerName !== undefined && options.sdsSocket === undefined) {
    throw new MeshpilotError('MP_CONFIG', 'ADS over TLS takes its certificates from the agent: give the SDS socket too');
  }
  const proxy = parseProxy(options.nodeId);
  const fromAds = (): Record<string, unknown> => ({ ads: {}, resource_api_version: 'V3' });
  return {
    node: {
      id: options.nodeId,
      // Envoy refuses ADS without a service cluster; Istio's default is the pod's `name.namespace`.
      cluster: options.cluster ?? defaultServiceCluster(proxy.podName, proxy.namespace),
      ...(proxy.namespace ? { metadata: { NAMESPACE: proxy.namespace } } : {}),
    },
    dynamic_resources: {
      ads_config: {
        api_type: options.delta ? 'DELTA_GRPC' : 'GRPC',
        transport_api_version: 'V3',
        grpc_services: [{ envoy_grpc: { cluster_name: XDS_CLUSTER } }],
        set_node_on_first_message_only: true,
      },
      cds_config: fromAds(),
      lds_config: fromAds(),
    },
    static_resources: {
      clusters: [
        {
          name: XDS_CLUSTER,
          type: isIp(host) ? 'STATIC' : 'STRICT_DNS',
          connect_timeout: '1s',
          typed_extension_protocol_options: HTTP2_ONLY,
          upstream_connection_options: { tcp_keepalive: {} },
          load_assignment: {
            cluster_name: XDS_CLUSTER,
            endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: host, port_value: port } } } }] }],
          },
          ...(options.xdsTlsServerName !== undefined ? { transport_socket: xdsTransportSocket(options.xdsTlsServerName) } : {}),
        },
        ...(options.sdsSocket !== undefined ? [sdsCluster(options.sdsSocket)] : []),
      ],
    },
    // Envoy's admin API can change the proxy's state: loopback only.
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: options.adminPort } } },
    ...BOOTSTRAP_RUNTIME,
  };
}

function portNumber(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new InvalidArgumentError(`"${value}" is not a port number (1-65535)`);
  return n;
}

export function registerBootstrapCommand(program: Command): void {
  program
    .command('bootstrap')
    .description('print an Envoy bootstrap that gets clusters and listeners from meshpilot over ADS')
    .addOption(new Option('--node-id <id>', 'Envoy node id, e.g. sidecar~10.244.0.9~productpage-v1-0.default~default.svc.cluster.local').makeOptionMandatory())
    .addOption(new Option('--xds-address <host:port>', `meshpilot's xDS address (default ${DEFAULT_XDS_ADDRESS}; with --xds-tls ${DEFAULT_SECURE_XDS_ADDRESS})`))
    .addOption(new Option('--cluster <name>', 'Envoy service cluster name (node.cluster)'))
    .addOption(new Option('--admin-port <port>', "Envoy's admin port, bound to 127.0.0.1").default(15000).argParser(portNumber))
    .addOption(new Option('--delta', 'use Delta xDS (DELTA_GRPC) instead of state of the world'))
    .addOption(new Option('--sds', "add the sds-grpc cluster to meshpilot agent's Unix socket (the workload certificate for mTLS)"))
    .addOption(new Option('--sds-socket <path>', "meshpilot agent's SDS socket, relative to Envoy's working directory").default(SDS_SOCKET_PATH))
    .addOption(new Option('--xds-tls', 'ADS over TLS (15012) with the workload certificate from the agent (implies --sds)'))
    .addOption(new Option('--xds-server-name <name>', "the DNS name meshpilot's serving certificate must carry (and the SNI sent)").default(MESHPILOT_SERVICE_NAME))
    .addOption(new Option('--output <format>', 'yaml or json').default('yaml').choices(['yaml', 'json']))
    .action((flags: { nodeId: string; xdsAddress?: string; cluster?: string; adminPort: number; delta?: boolean; sds?: boolean; sdsSocket: string; xdsTls?: boolean; xdsServerName: string; output: 'yaml' | 'json' }) => {
      let bootstrap: Record<string, unknown>;
      try {
        const { sds, sdsSocket, xdsTls, xdsServerName, xdsAddress, ...rest } = flags;
        bootstrap = buildBootstrap({
          ...rest,
          xdsAddress: xdsAddress ?? (xdsTls ? DEFAULT_SECURE_XDS_ADDRESS : DEFAULT_XDS_ADDRESS),
          ...(sds || xdsTls ? { sdsSocket } : {}),
          ...(xdsTls ? { xdsTlsServerName: xdsServerName } : {}),
        });
      } catch (error) {
        process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
        process.exit(1);
      }
      // Plain YAML, no anchors: the output is read by people and pasted into ConfigMaps.
      process.stdout.write(flags.output === 'json' ? `${JSON.stringify(bootstrap, null, 2)}\n` : stringify(bootstrap, { aliasDuplicateObjects: false }));
    });
}
