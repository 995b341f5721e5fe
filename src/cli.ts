#!/usr/bin/env node
// The meshpilot command line. `serve` is the default command (what `npm start` runs).
import { Command, InvalidArgumentError, Option } from 'commander';
import type { LevelWithSilent } from 'pino';
import { registerAgentCommand } from './agent/command.ts';
import { registerBootstrapCommand } from './commands/bootstrap.ts';
import { LOG_LEVELS, createLogger } from './log.ts';
import { LogSink } from './log-sink.ts';
import { registerAnalyzeCommand } from './commands/analyze.ts';
import { registerRenderCommand } from './commands/render.ts';
import { DEFAULT_SERVE_OPTIONS, serve } from './main.ts';
import { registerAuthzCommand } from './commands/authz.ts';
import { registerExplainCommand } from './commands/explain.ts';
import { registerPreviewCommand } from './commands/preview.ts';
import { registerProxyConfigCommand } from './commands/proxy-config.ts';
import { registerProxyStatusCommand } from './commands/proxy-status.ts';
import { inCluster } from './sources/kube/in-cluster.ts';
import { parseNamespaces, selectSources, SOURCE_KINDS, type SourceKind } from './sources/kube/select.ts';
import { DEFAULT_GATEWAY_CONTROLLER } from './sources/gateway-api-listeners.ts';

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`"${value}" is not a port number (0-65535)`);
  return n;
}

function positiveInteger(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`"${value}" is not a positive whole number`);
  return n;
}

function nonNegative(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`"${value}" is not a number of 0 or more`);
  return n;
}

/** A duration as Istio writes them (`30m`, `90s`, `1h`, `500ms`; a bare number is seconds), in milliseconds. */
function duration(value: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  if (!match) throw new InvalidArgumentError(`"${value}" is not a duration such as 30m, 90s or 0`);
  return Number(match[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(match[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
}

/** A port, or `off`. */
function portOrOff(value: string): number | 'off' {
  return value === 'off' ? 'off' : port(value);
}

function milliseconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`"${value}" is not a number of milliseconds`);
  return n;
}

const d = DEFAULT_SERVE_OPTIONS;
const program = new Command('meshpilot')
  .description('An xDS control plane: services from Kubernetes or YAML, Istio traffic rules, CDS/EDS/LDS/RDS over ADS')
  .showHelpAfterError();

program
  .command('serve', { isDefault: true })
  .description('serve xDS to Envoy sidecars and proxyless gRPC clients, and the admin API')
  .addOption(new Option('--config-dir <dir>', 'directory of Kubernetes and Istio YAML to serve').default(d.configDir).env('MESHPILOT_CONFIG_DIR'))
  .addOption(new Option('--xds-host <address>', 'address the xDS (ADS) server binds').default(d.xdsHost).env('MESHPILOT_XDS_HOST'))
  .addOption(new Option('--xds-port <port>', 'plaintext xDS port').default(d.xdsPort).argParser(port).env('MESHPILOT_XDS_PORT'))
  .addOption(new Option('--admin-host <address>', 'address the admin API binds').default(d.adminHost).env('MESHPILOT_ADMIN_HOST'))
  .addOption(new Option('--admin-port <port>', 'admin API and /metrics port').default(d.adminPort).argParser(port).env('MESHPILOT_ADMIN_PORT'))
  .addOption(new Option('--admin-token <token>', 'bearer token required for /debug/*, the UI data and preview (prefer --admin-token-file)').env('MESHPILOT_ADMIN_TOKEN'))
  .addOption(new Option('--admin-token-file <file>', 'file holding the admin bearer token (e.g. a mounted Secret)').env('MESHPILOT_ADMIN_TOKEN_FILE'))
  .addOption(new Option('--log-level <level>', 'log level').default(d.logLevel).choices(LOG_LEVELS).env('MESHPILOT_LOG_LEVEL'))
  .addOption(new Option('--mesh-config <file>', 'Istio MeshConfig YAML (access log, tracing, outboundTrafficPolicy, connectTimeout)').env('MESHPILOT_MESH_CONFIG'))
  .addOption(
    new Option('--debounce-quiet-ms <ms>', 'push after this long without a new change').default(d.debounceQuietMs).argParser(milliseconds).env('MESHPILOT_DEBOUNCE_QUIET_MS'),
  )
  .addOption(
    new Option('--debounce-max-ms <ms>', 'push at the latest this long after the first change').default(d.debounceMaxMs).argParser(milliseconds).env('MESHPILOT_DEBOUNCE_MAX_MS'),
  )
  .addOption(new Option('--push-concurrency <n>', 'proxies sent their pending updates per turn of the event loop').default(d.pushConcurrency).argParser(positiveInteger).env('MESHPILOT_PUSH_CONCURRENCY'))
  .addOption(
    new Option('--xds-stream-buffer <bytes>', 'unwritten bytes on one xDS stream above which it waits for its proxy to read').default(d.xdsHighWaterBytes).argParser(positiveInteger).env('MESHPILOT_XDS_STREAM_BUFFER'),
  )
  .addOption(
    new Option('--xds-total-buffer <bytes>', 'unwritten bytes across all xDS streams above which streams wait their turn').default(d.xdsTotalHighWaterBytes).argParser(positiveInteger).env('MESHPILOT_XDS_TOTAL_BUFFER'),
  )
  .addOption(new Option('--xds-max-message-bytes <bytes>', 'largest xDS request message, before and after decompression').default(d.xdsMaxMessageBytes).argParser(positiveInteger).env('MESHPILOT_XDS_MAX_MESSAGE_BYTES'))
  .addOption(
    new Option('--xds-max-connection-buffer <bytes>', 'bytes of unfinished request messages one xDS connection may hold across its streams').default(d.xdsMaxConnectionBufferBytes).argParser(positiveInteger).env('MESHPILOT_XDS_MAX_CONNECTION_BUFFER'),
  )
  .addOption(new Option('--xds-max-streams <n>', 'streams one xDS connection may have open (advertised in SETTINGS)').default(d.xdsMaxStreamsPerConnection).argParser(positiveInteger).env('MESHPILOT_XDS_MAX_STREAMS'))
  .addOption(
    new Option('--xds-stall-time <duration>', 'an xDS write unfinished this long marks its proxy as not reading: its bytes stop holding other proxies back, and past --xds-total-buffer of such bytes the slowest streams are reset').default('5s').argParser(duration).env('MESHPILOT_XDS_STALL_TIME'),
  )
  .addOption(
    new Option('--xds-max-connection-age <duration>', 'send an xDS connection GOAWAY after this long, ±10%, so proxies rebalance across replicas (0: never)').default('30m').argParser(duration).env('MESHPILOT_XDS_MAX_CONNECTION_AGE'),
  )
  .addOption(new Option('--xds-stream-rate <n>', 'new xDS streams admitted per second; beyond, UNAVAILABLE and the client retries (0: no limit)').default(d.xdsStreamsPerSecond).argParser(nonNegative).env('MESHPILOT_XDS_STREAM_RATE'))
  .addOption(new Option('--xds-stream-burst <n>', 'new xDS streams admitted at once above the rate').default(d.xdsStreamBurst).argParser(positiveInteger).env('MESHPILOT_XDS_STREAM_BURST'))
  .addOption(new Option('--source <kind>', 'where services and rules come from: file (--config-dir) or kube (the Kubernetes API)').choices(SOURCE_KINDS).env('MESHPILOT_SOURCE'))
  .addOption(new Option('--kubeconfig <file>', 'watch the cluster this kubeconfig points at (in a pod: its service account)').env('MESHPILOT_KUBECONFIG'))
  .addOption(new Option('--namespaces <list>', 'comma-separated namespaces to watch (default: all)').argParser(parseNamespaces).env('MESHPILOT_NAMESPACES'))
  .addOption(
    new Option('--gateway-controllers <list>', "comma-separated GatewayClass controllerNames whose Gateways meshpilot serves (add istio.io/gateway-controller to serve Istio's classes)").default([DEFAULT_GATEWAY_CONTROLLER]).argParser(parseNamespaces).env('MESHPILOT_GATEWAY_CONTROLLERS'),
  )
  .addOption(new Option('--secure-port <port>', 'port of the CA and xDS over TLS (Istio\'s 15012); off to disable').default(15012).argParser(portOrOff).env('MESHPILOT_SECURE_PORT'))
  .addOption(new Option('--ca-dir <dir>', "your own CA: a directory with Istio's ca-cert.pem, ca-key.pem, root-cert.pem and cert-chain.pem").env('MESHPILOT_CA_DIR'))
  .addOption(new Option('--ca-root-dir <dir>', 'without Kubernetes: where the self-signed root is created once and kept').env('MESHPILOT_CA_ROOT_DIR'))
  .addOption(new Option('--ca-cert-ttl <duration>', 'lifetime of a workload certificate when the request names none').default('24h').argParser(duration).env('MESHPILOT_CA_CERT_TTL'))
  .addOption(new Option('--ca-max-ttl <duration>', 'longest lifetime a workload certificate may ask for').default('2160h').argParser(duration).env('MESHPILOT_CA_MAX_TTL'))
  .addOption(new Option('--system-namespace <namespace>', "meshpilot's namespace (its CA Secrets, its serving names); in a pod, the pod's namespace").env('MESHPILOT_SYSTEM_NAMESPACE'))
  .addOption(new Option('--secure-dns-names <list>', 'comma-separated extra DNS names of the secure port\'s certificate').argParser(parseNamespaces).env('MESHPILOT_SECURE_DNS_NAMES'))
  .addOption(new Option('--write-status <on|off>', "with Kubernetes: elect a leader on the Lease meshpilot-status-leader, which writes Istio objects' validation messages to their status").default('on').choices(['on', 'off']).env('MESHPILOT_WRITE_STATUS'))
  .addOption(new Option('--pod-name <name>', "this replica's pod name, the start of its holder identity in the Lease (default: the host name)").env('POD_NAME'))
  .addOption(new Option('--leader-lease-duration <duration>', 'a follower takes the Lease after seeing it unrenewed this long').default('15s').argParser(duration).env('MESHPILOT_LEADER_LEASE_DURATION'))
  .addOption(new Option('--leader-renew-deadline <duration>', 'a leader that could not renew for this long stops writing status').default('10s').argParser(duration).env('MESHPILOT_LEADER_RENEW_DEADLINE'))
  .addOption(new Option('--leader-retry-period <duration>', 'how often the leader renews and followers look').default('2s').argParser(duration).env('MESHPILOT_LEADER_RETRY_PERIOD'))
  .action(async (flags: { writeStatus: 'on' | 'off'; podName?: string; leaderLeaseDuration: number | string; leaderRenewDeadline: number | string; leaderRetryPeriod: number | string; securePort: number | 'off'; caDir?: string; caRootDir?: string; caCertTtl: number | string; caMaxTtl: number | string; systemNamespace?: string; secureDnsNames?: string[]; configDir: string; xdsHost: string; xdsPort: number; adminHost: string; adminPort: number; adminToken?: string; adminTokenFile?: string; logLevel: LevelWithSilent; debounceQuietMs: number; debounceMaxMs: number; pushConcurrency: number; xdsStreamBuffer: number; xdsTotalBuffer: number; xdsMaxMessageBytes: number; xdsMaxConnectionBuffer: number; xdsMaxStreams: number; xdsMaxConnectionAge: number | string; xdsStallTime: number | string; xdsStreamRate: number; xdsStreamBurst: number; meshConfig?: string; source?: SourceKind; kubeconfig?: string; namespaces?: string[]; gatewayControllers: string[] }, command: Command) => {
    const logSink = new LogSink();
    const log = createLogger(flags.logLevel, logSink);
    const exit = (code: number): never => {
      logSink.flushSync();
      process.exit(code);
    };
    let running: Awaited<ReturnType<typeof serve>>;
    try {
      const configDirGiven = command.getOptionValueSource('configDir') !== 'default';
      const sources = selectSources({ source: flags.source, kubeconfig: flags.kubeconfig, configDirGiven, inCluster: inCluster() });
      const { xdsStreamBuffer, xdsTotalBuffer, xdsMaxConnectionBuffer, xdsMaxStreams, xdsMaxConnectionAge, xdsStallTime, xdsStreamRate, xdsStreamBurst, securePort, caDir, caRootDir, caCertTtl, caMaxTtl, systemNamespace, secureDnsNames, writeStatus, podName, leaderLeaseDuration, leaderRenewDeadline, leaderRetryPeriod, gatewayControllers, ...rest } = flags;
      // commander hands a default through as given: '15s' is parsed here.
      const ms = (value: number | string): number => (typeof value === 'number' ? value : duration(value));
      // Without Kubernetes the root needs a directory: unless asked for, the secure port stays off then.
      const rootHasAHome = sources.includes('kube') || caDir !== undefined || caRootDir !== undefined;
      const secureWanted = securePort !== 'off' && (rootHasAHome || command.getOptionValueSource('securePort') !== 'default');
      if (!secureWanted && securePort !== 'off') log.info('the secure port (CA and xDS over TLS) is off: without Kubernetes it needs --ca-root-dir DIR or --ca-dir DIR');
      running = await serve({
        ...rest,
        gatewayApi: { controllerNames: gatewayControllers },
        ...(secureWanted
          ? {
              secure: {
                port: securePort,
                ...(caDir !== undefined ? { caDir } : {}),
                ...(caRootDir !== undefined ? { caRootDir } : {}),
                ...(systemNamespace !== undefined ? { namespace: systemNamespace } : {}),
                ...(secureDnsNames ? { dnsNames: secureDnsNames } : {}),
                ca: { defaultTtlMs: typeof caCertTtl === 'number' ? caCertTtl : duration(caCertTtl), maxTtlMs: typeof caMaxTtl === 'number' ? caMaxTtl : duration(caMaxTtl) },
              },
            }
          : {}),
        xdsHighWaterBytes: xdsStreamBuffer,
        xdsTotalHighWaterBytes: xdsTotalBuffer,
        xdsMaxConnectionBufferBytes: xdsMaxConnectionBuffer,
        xdsMaxStreamsPerConnection: xdsMaxStreams,
        // commander hands a default through as given: '30m' is parsed here.
        xdsMaxConnectionAgeMs: typeof xdsMaxConnectionAge === 'number' ? xdsMaxConnectionAge : duration(xdsMaxConnectionAge),
        xdsStallMs: typeof xdsStallTime === 'number' ? xdsStallTime : duration(xdsStallTime),
        xdsStreamsPerSecond: xdsStreamRate,
        xdsStreamBurst,
        ...(systemNamespace !== undefined ? { systemNamespace } : {}),
        writeStatus: writeStatus === 'on',
        ...(podName !== undefined ? { podName } : {}),
        leaderElection: { leaseDurationMs: ms(leaderLeaseDuration), renewDeadlineMs: ms(leaderRenewDeadline), retryPeriodMs: ms(leaderRetryPeriod) },
        sources,
        log,
        droppedLogLines: () => logSink.droppedLines,
      });
    } catch (error) {
      log.fatal({ err: error }, error instanceof Error ? error.message : String(error));
      exit(1);
    }
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'shutting down');
      // A stuck close must not keep a terminating pod alive.
      setTimeout(() => exit(1), 5000).unref();
      running.close().then(
        () => exit(0),
        (error: unknown) => {
          log.error({ err: error }, 'error while shutting down');
          exit(1);
        },
      );
    };
    process.on('SIGINT', () => {
      stop('SIGINT');
    });
    process.on('SIGTERM', () => {
      stop('SIGTERM');
    });
  });

registerRenderCommand(program);
registerAnalyzeCommand(program);
registerProxyStatusCommand(program);
registerProxyConfigCommand(program);
registerExplainCommand(program);
registerAuthzCommand(program);
registerPreviewCommand(program);
registerAgentCommand(program);
registerBootstrapCommand(program);

await program.parseAsync(process.argv);
