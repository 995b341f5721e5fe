// `meshpilot bootstrap`: prints an Envoy bootstrap that takes everything from meshpilot over ADS,
// for users wiring Envoy by hand (the deploy/ sample's ConfigMap holds one).
import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import { stringify } from 'yaml';
import { MeshpilotError } from '../errors.ts';
import { parseProxy } from '../model/proxy.ts';
import { RE2_MAX_PROGRAM_SIZE } from '../model/re2.ts';

export const DEFAULT_XDS_ADDRESS = 'meshpilot.meshpilot-system.svc:15010';
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
}

function splitAddress(address: string): { host: string; port: number } {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d+)$/.exec(address);
  const port = Number(match?.[3]);
  const host = match?.[1] ?? match?.[2];
  if (!match || host === undefined || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new MeshpilotError('MP_CONFIG', `--xds-address "${address}" is not host:port: write e.g. ${DEFAULT_XDS_ADDRESS} or 10.96.0.10:15010`);
  }
  return { host, port };
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
          // gRPC needs HTTP/2 to the control plane.
          typed_extension_protocol_options: {
            'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
              '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
              explicit_http_config: { http2_protocol_options: {} },
            },
          },
          upstream_connection_options: { tcp_keepalive: {} },
          load_assignment: {
            cluster_name: XDS_CLUSTER,
            endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: host, port_value: port } } } }] }],
          },
        },
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
    .addOption(new Option('--xds-address <host:port>', "meshpilot's plaintext xDS address").default(DEFAULT_XDS_ADDRESS))
    .addOption(new Option('--cluster <name>', 'Envoy service cluster name (node.cluster)'))
    .addOption(new Option('--admin-port <port>', "Envoy's admin port, bound to 127.0.0.1").default(15000).argParser(portNumber))
    .addOption(new Option('--delta', 'use Delta xDS (DELTA_GRPC) instead of state of the world'))
    .addOption(new Option('--output <format>', 'yaml or json').default('yaml').choices(['yaml', 'json']))
    .action((flags: { nodeId: string; xdsAddress: string; cluster?: string; adminPort: number; delta?: boolean; output: 'yaml' | 'json' }) => {
      let bootstrap: Record<string, unknown>;
      try {
        bootstrap = buildBootstrap(flags);
      } catch (error) {
        process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
        process.exit(1);
      }
      process.stdout.write(flags.output === 'json' ? `${JSON.stringify(bootstrap, null, 2)}\n` : stringify(bootstrap));
    });
}
