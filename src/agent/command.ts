// `meshpilot agent`: beside Envoy (SDS on a Unix socket) or a proxyless gRPC application
// (certificate files and a gRPC xDS bootstrap), with the pod's identity from the downward API.
import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import { createLogger, LOG_LEVELS } from '../log.ts';
import { SDS_SOCKET_PATH } from '../security/names.ts';
import { splitHostPort } from '../model/address.ts';
import { KEY_TYPES, type KeyType } from './identity.ts';
import { startAgent } from './agent.ts';
import { DEFAULT_XDS_ADDRESS } from '../commands/bootstrap.ts';

export const DEFAULT_CA_ADDRESS = 'meshpilot.meshpilot-system.svc:15012';
/** Where Istio mounts the `istio-ca-root-cert` ConfigMap, and the projected token. */
export const DEFAULT_ROOT_CERT_FILE = '/var/run/secrets/istio/root-cert.pem';
export const DEFAULT_TOKEN_FILE = '/var/run/secrets/tokens/istio-token';

function seconds(value: string): number {
  const match = /^(\d+(?:\.\d+)?)(s|m|h)?$/.exec(value.trim());
  if (!match) throw new InvalidArgumentError(`"${value}" is not a duration such as 24h, 30m or 90s`);
  const n = Number(match[1]) * { s: 1, m: 60, h: 3600 }[(match[2] ?? 's') as 's' | 'm' | 'h'];
  if (n < 1) throw new InvalidArgumentError(`"${value}" is shorter than a second`);
  return Math.round(n);
}

function address(value: string): string {
  if (!splitHostPort(value)) throw new InvalidArgumentError(`"${value}" is not host:port`);
  return value;
}

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`"${value}" is not a port number (0-65535)`);
  return n;
}

interface AgentFlags {
  namespace: string;
  serviceAccount: string;
  podName: string;
  podIp: string;
  trustDomain: string;
  caAddress: string;
  caServerName?: string;
  caRootCert: string;
  tokenFile: string;
  caTimeout: number;
  certTtl: number;
  keyType: KeyType;
  sds: boolean;
  sdsSocket: string;
  outputDir?: string;
  grpcBootstrap?: string;
  xdsAddress: string;
  grpcRefresh: number;
  statusHost: string;
  statusPort: number;
  logLevel: (typeof LOG_LEVELS)[number];
}

export function registerAgentCommand(program: Command): void {
  program
    .command('agent')
    .description("the workload's certificate from meshpilot's CA, renewed before expiry: SDS for Envoy on a Unix socket, files and a gRPC xDS bootstrap for proxyless gRPC")
    .addOption(new Option('--namespace <ns>', "the pod's namespace (its identity)").env('POD_NAMESPACE').makeOptionMandatory())
    .addOption(new Option('--service-account <sa>', "the pod's service account (its identity)").default('default').env('SERVICE_ACCOUNT'))
    .addOption(new Option('--pod-name <name>', "the pod's name (the gRPC bootstrap's node id)").default('pod').env('POD_NAME'))
    .addOption(new Option('--pod-ip <ip>', "the pod's IP (the gRPC bootstrap's node id)").default('127.0.0.1').env('INSTANCE_IP'))
    .addOption(new Option('--trust-domain <domain>', 'the mesh trust domain (MeshConfig trustDomain)').default('cluster.local').env('TRUST_DOMAIN'))
    .addOption(new Option('--ca-address <host:port>', "meshpilot's CA (IstioCertificateService over TLS)").default(DEFAULT_CA_ADDRESS).argParser(address).env('CA_ADDR'))
    .addOption(new Option('--ca-server-name <name>', "the name the CA's serving certificate must carry (default: the --ca-address host)").env('MESHPILOT_AGENT_CA_SERVER_NAME'))
    .addOption(new Option('--ca-root-cert <file>', "PEM root the CA's certificate must chain to (the istio-ca-root-cert ConfigMap, mounted)").default(DEFAULT_ROOT_CERT_FILE).env('MESHPILOT_AGENT_CA_ROOT_CERT'))
    .addOption(new Option('--token-file <file>', "the pod's service-account token (audience istio-ca), read on every call").default(DEFAULT_TOKEN_FILE).env('MESHPILOT_AGENT_TOKEN_FILE'))
    .addOption(new Option('--ca-timeout <duration>', 'deadline of one certificate request').default(10, '10s').argParser(seconds).env('MESHPILOT_AGENT_CA_TIMEOUT'))
    .addOption(new Option('--cert-ttl <duration>', 'certificate lifetime asked of the CA (validity_duration)').default(86_400, '24h').argParser(seconds).env('MESHPILOT_AGENT_CERT_TTL'))
    .addOption(new Option('--key-type <type>', 'the workload key').default('ecdsa-p256').choices(KEY_TYPES).env('MESHPILOT_AGENT_KEY_TYPE'))
    .addOption(new Option('--sds-socket <path>', "Unix socket Envoy's sds-grpc cluster reaches").default(SDS_SOCKET_PATH).env('MESHPILOT_AGENT_SDS_SOCKET'))
    .addOption(new Option('--no-sds', 'serve no SDS (a proxyless gRPC pod)'))
    .addOption(new Option('--output-dir <dir>', 'write cert-chain.pem, key.pem (0600) and root-cert.pem here, replaced atomically on rotation').env('MESHPILOT_AGENT_OUTPUT_DIR'))
    .addOption(new Option('--grpc-bootstrap <file>', 'write a gRPC xDS bootstrap (GRPC_XDS_BOOTSTRAP) using the files in --output-dir').env('MESHPILOT_AGENT_GRPC_BOOTSTRAP'))
    .addOption(new Option('--xds-address <host:port>', "meshpilot's plaintext xDS address, for the gRPC bootstrap").default(DEFAULT_XDS_ADDRESS).argParser(address).env('MESHPILOT_AGENT_XDS_ADDRESS'))
    .addOption(new Option('--grpc-refresh <duration>', 'how often gRPC re-reads the certificate files (the bootstrap refresh_interval)').default(60, '60s').argParser(seconds))
    .addOption(new Option('--status-host <address>', 'address the status endpoint binds').default('127.0.0.1').env('MESHPILOT_AGENT_STATUS_HOST'))
    .addOption(new Option('--status-port <port>', 'status endpoint (/healthz, /healthz/ready, /status); 0: any free port').default(15020).argParser(port).env('MESHPILOT_AGENT_STATUS_PORT'))
    .addOption(new Option('--log-level <level>', 'log level').default('info').choices(LOG_LEVELS).env('MESHPILOT_LOG_LEVEL'))
    .action(async (flags: AgentFlags) => {
      const log = createLogger(flags.logLevel);
      let running: Awaited<ReturnType<typeof startAgent>>;
      try {
        running = await startAgent({
          trustDomain: flags.trustDomain,
          namespace: flags.namespace,
          serviceAccount: flags.serviceAccount,
          podName: flags.podName,
          podIp: flags.podIp,
          keyType: flags.keyType,
          validitySeconds: flags.certTtl,
          ca: { address: flags.caAddress, rootCertFile: flags.caRootCert, tokenFile: flags.tokenFile, deadlineMs: flags.caTimeout * 1000, ...(flags.caServerName ? { serverName: flags.caServerName } : {}) },
          ...(flags.sds ? { sdsSocket: flags.sdsSocket } : {}),
          ...(flags.outputDir ? { outputDir: flags.outputDir } : {}),
          ...(flags.grpcBootstrap ? { grpcBootstrap: flags.grpcBootstrap } : {}),
          xdsAddress: flags.xdsAddress,
          grpcRefreshSeconds: flags.grpcRefresh,
          status: { host: flags.statusHost, port: flags.statusPort },
          log,
        });
      } catch (error) {
        log.fatal({ err: error }, error instanceof Error ? error.message : String(error));
        log.flush();
        process.exit(1);
      }
      log.info({ identity: running.certificate.identity, statusPort: running.statusPort, sdsSocket: flags.sds ? flags.sdsSocket : undefined }, 'agent started');
      const stop = (): void => {
        setTimeout(() => process.exit(1), 3000).unref();
        running.close().then(() => process.exit(0), () => process.exit(1));
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
