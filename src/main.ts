// Wires the house together: sources -> store -> push controller -> ADS server, plus the admin API.
import type { GatewayApiOptions } from './sources/gateway-api-listeners.ts';
import type { LevelWithSilent } from 'pino';
import { adminAccessNotice } from './admin/auth.ts';
import { readAdminToken } from './admin/token-file.ts';
import { NackLedger } from './admin/nack-ledger.ts';
import { buildAdminApp, startAdminServer } from './admin/server.ts';
import { createLogger, type Logger } from './log.ts';
import { MeshpilotMetrics } from './metrics.ts';
import { DEFAULT_MESH_CONFIG } from './model/mesh-config.ts';
import { ConfigStore } from './model/store.ts';
import { ConvergenceTracker } from './push/convergence.ts';
import { PushController } from './push/push-controller.ts';
import { DEFAULT_PUSH_CONCURRENCY, PushQueue } from './push/push-queue.ts';
import { loadMeshConfigFile } from './sources/mesh-config-file.ts';
import type { KubeConnection } from './sources/kube/kube-api.ts';
import type { KubeSource, KubeSourceTuning } from './sources/kube/kube-source.ts';
import type { LeaderElectionTiming, LeaderElector } from './sources/kube/leader-election.ts';
import type { StatusWriter, StatusWriterTuning } from './sources/kube/status-writer.ts';
import type { SourceKind } from './sources/kube/select.ts';
import { YamlSource } from './sources/yaml-source.ts';
import { generate } from './xds/generate/index.ts';
import { envoyRoot } from './xds/protos.ts';
import { AdsServer, DEFAULT_TOTAL_HIGH_WATER_BYTES } from './xds/server/ads-server.ts';
import type { TransportLimits } from './xds/server/grpc-transport.ts';
import { DEFAULT_TRANSPORT_LIMITS } from './xds/server/grpc-transport.ts';
import { DEFAULT_HIGH_WATER_BYTES } from './xds/server/connection.ts';
import { fanOutEvents } from './xds/server/connection-events.ts';
import type { XdsTransportKind } from './xds/server/transport.ts';
import type { RunningSecurity, SecureServeOptions } from './security/security.ts';
import { startSecurity, systemNamespace } from './security/security.ts';

export interface ServeOptions {
  readonly configDir: string;
  readonly xdsHost: string;
  readonly xdsPort: number;
  readonly adminHost: string;
  readonly adminPort: number;
  readonly logLevel: LevelWithSilent;
  readonly debounceQuietMs: number;
  readonly debounceMaxMs: number;
  /** Istio MeshConfig file (`--mesh-config`); Istio's defaults when absent. */
  readonly meshConfig?: string;
  /** Bearer token for /debug/* and the UI's data; without one, only loopback clients read them. */
  readonly adminToken?: string;
  /** A file holding the token (a mounted Secret), so it never shows in `ps`. */
  readonly adminTokenFile?: string;
  /** Proxies sent to per event-loop turn by the push queue. */
  readonly pushConcurrency?: number;
  /** Unwritten bytes per xDS stream above which meshpilot waits for the proxy to read. */
  readonly xdsHighWaterBytes?: number;
  /** Unwritten bytes across all xDS streams above which streams wait their turn (bounds memory). */
  readonly xdsTotalHighWaterBytes?: number;
  /** A write unfinished this long marks its xDS stream stalled: its bytes stop holding other proxies back. */
  readonly xdsStallMs?: number;
  /** Largest xDS request message, before and after decompression. */
  readonly xdsMaxMessageBytes?: number;
  /** Bytes of unfinished request messages one xDS connection may hold across its streams. */
  readonly xdsMaxConnectionBufferBytes?: number;
  /** Streams one xDS connection may have open (advertised in SETTINGS). */
  readonly xdsMaxStreamsPerConnection?: number;
  /** A connection is sent GOAWAY after this long, ±10%, so proxies rebalance (0: never). */
  readonly xdsMaxConnectionAgeMs?: number;
  /** New xDS streams admitted per second, and the burst above it; beyond, UNAVAILABLE (0 or absent: no limit). */
  readonly xdsStreamsPerSecond?: number;
  readonly xdsStreamBurst?: number;
  /** Timeouts and keepalive policy of the xDS transport (tests shorten them). */
  readonly xdsTransportTuning?: Partial<Pick<TransportLimits, 'messageTimeoutMs' | 'drainGraceMs' | 'minPingIntervalMs' | 'keepaliveMs' | 'keepaliveTimeoutMs'>>;
  /** A stream that sends no DiscoveryRequest within this long is closed. */
  readonly xdsFirstRequestTimeoutMs?: number;
  /** The gRPC server of the plaintext xDS port: the hand-written one (default) or @grpc/grpc-js. */
  readonly xdsTransport?: XdsTransportKind;
  /** Tests pass their own logger. */
  readonly log?: Logger;
  /** Log lines the logger's sink dropped, for /metrics. */
  readonly droppedLogLines?: () => number;
  /** What feeds the model (default: the directory only). With both, the directory wins a clash. */
  readonly sources?: readonly SourceKind[];
  /** Kubernetes source: a kubeconfig file; without one, the pod's service account or KUBECONFIG. */
  readonly kubeconfig?: string;
  /** Kubernetes source: watch only these namespaces. */
  readonly namespaces?: readonly string[];
  /** Which GatewayClasses (by controllerName) meshpilot serves; default meshpilot.io/gateway-controller. */
  readonly gatewayApi?: GatewayApiOptions;
  readonly kubeTuning?: Partial<KubeSourceTuning>;
  /** The secure port (15012: the CA and xDS over TLS) and its CA; absent: off. */
  readonly secure?: SecureServeOptions;
  /** meshpilot's namespace (the status Lease, the CA's Secrets); the pod's, else meshpilot-system. */
  readonly systemNamespace?: string;
  /** With Kubernetes: elect a leader on a Lease, which writes Istio objects' validation messages to their status (default on). */
  readonly writeStatus?: boolean;
  /** The pod's name, the start of this replica's holder identity (default: POD_NAME, else the host name). */
  readonly podName?: string;
  readonly leaderElection?: Partial<LeaderElectionTiming>;
  readonly statusWriterTuning?: Partial<StatusWriterTuning>;
}

export const DEFAULT_SERVE_OPTIONS: Omit<ServeOptions, 'log'> = {
  configDir: 'fixtures/bookinfo',
  xdsHost: '127.0.0.1',
  xdsPort: 15010,
  adminHost: '127.0.0.1',
  adminPort: 15014,
  logLevel: 'info',
  debounceQuietMs: 100,
  debounceMaxMs: 10_000,
  pushConcurrency: DEFAULT_PUSH_CONCURRENCY,
  xdsHighWaterBytes: DEFAULT_HIGH_WATER_BYTES,
  xdsTotalHighWaterBytes: DEFAULT_TOTAL_HIGH_WATER_BYTES,
  xdsMaxMessageBytes: DEFAULT_TRANSPORT_LIMITS.maxMessageBytes,
  xdsMaxConnectionBufferBytes: DEFAULT_TRANSPORT_LIMITS.maxConnectionBufferBytes,
  xdsMaxStreamsPerConnection: DEFAULT_TRANSPORT_LIMITS.maxStreamsPerConnection,
  xdsMaxConnectionAgeMs: DEFAULT_TRANSPORT_LIMITS.maxConnectionAgeMs,
  // Istio's PILOT_MAX_REQUESTS_PER_SECOND idea: a restart of every proxy at once is spread out.
  xdsStreamsPerSecond: 100,
  xdsStreamBurst: 200,
  xdsTransport: 'node-http2',
};

/** The transport's bounds from the serve options (absent ones keep the transport's defaults). */
function transportLimits(options: ServeOptions): Partial<TransportLimits> {
  const given: Record<string, number | undefined> = {
    ...options.xdsTransportTuning,
    maxMessageBytes: options.xdsMaxMessageBytes,
    maxConnectionBufferBytes: options.xdsMaxConnectionBufferBytes,
    maxStreamsPerConnection: options.xdsMaxStreamsPerConnection,
    maxConnectionAgeMs: options.xdsMaxConnectionAgeMs,
    streamsPerSecond: options.xdsStreamsPerSecond,
    streamBurst: options.xdsStreamBurst,
  };
  return Object.fromEntries(Object.entries(given).filter(([, value]) => value !== undefined));
}

export interface RunningMeshpilot {
  readonly xdsPort: number;
  readonly adminPort: number;
  readonly store: ConfigStore;
  readonly pushController: PushController;
  readonly adsServer: AdsServer;
  readonly metrics: MeshpilotMetrics;
  readonly pushQueue: PushQueue;
  readonly convergence: ConvergenceTracker;
  readonly log: Logger;
  /** The CA and the secure port, when on. */
  readonly security?: RunningSecurity;
  /** Re-reads the config directory now (what a file change triggers), resolving once it is published. */
  reloadConfig(): Promise<void>;
  close(): Promise<void>;
}

export async function serve(options: ServeOptions): Promise<RunningMeshpilot> {
  const log = options.log ?? createLogger(options.logLevel);
  const adminToken = await readAdminToken(options.adminToken, options.adminTokenFile);
  const adminNotice = adminAccessNotice({ host: options.adminHost, token: adminToken });
  if (adminNotice) log.warn(adminNotice);
  envoyRoot(); // load the protos before anything can need them
  const meshConfig = options.meshConfig ? await loadMeshConfigFile(options.meshConfig) : undefined;
  const store = new ConfigStore();

  const metrics = new MeshpilotMetrics({
    connections: () => adsServer.connections(),
    currentPush: () => pushController.current(),
    transport: () => adsServer.transportStats(),
    slowProxies: () => ({ parkedBytes: adsServer.budget.parked, reset: adsServer.slowStreamsReset }),
    ...(options.droppedLogLines ? { droppedLogLines: options.droppedLogLines } : {}),
  });
  const nacks = new NackLedger({ currentPush: () => pushController.current() });
  const pushQueue = new PushQueue({ concurrency: options.pushConcurrency ?? DEFAULT_PUSH_CONCURRENCY });
  const convergence = new ConvergenceTracker();
  convergence.onSample((sample) => {
    metrics.recordConvergence(sample);
  });
  // grpc-js is loaded only when it is chosen.
  const createTransport = options.xdsTransport === 'grpc-js' ? (await import('./xds/server/grpcjs-transport.ts')).createGrpcJsTransport : undefined;
  const adsServer: AdsServer = new AdsServer({
    generate,
    currentPush: () => pushController.current(),
    log: log.child({ component: 'xds' }),
    scheduler: pushQueue,
    events: fanOutEvents(metrics.events, nacks.events, convergence.events),
    ...(options.xdsHighWaterBytes !== undefined ? { highWaterBytes: options.xdsHighWaterBytes } : {}),
    ...(options.xdsTotalHighWaterBytes !== undefined ? { totalHighWaterBytes: options.xdsTotalHighWaterBytes } : {}),
    transport: transportLimits(options),
    ...(createTransport ? { createTransport } : {}),
    ...(options.xdsFirstRequestTimeoutMs !== undefined ? { firstRequestTimeoutMs: options.xdsFirstRequestTimeoutMs } : {}),
    ...(options.xdsStallMs !== undefined ? { stallMs: options.xdsStallMs } : {}),
  });

  const pushController: PushController = new PushController({
    store,
    target: adsServer,
    log: log.child({ component: 'push' }),
    debounce: { quietMs: options.debounceQuietMs, maxMs: options.debounceMaxMs },
    ...(meshConfig ? { meshConfig } : {}),
  });
  pushController.onPush((push, changes) => {
    metrics.recordPush(push, pushController.lastPush(), changes);
  });
  const sources = options.sources ?? ['file'];
  const yamlSource = sources.includes('file') ? new YamlSource({ dir: options.configDir, store, log: log.child({ component: 'yaml-source' }), ...(options.gatewayApi ? { gatewayApi: options.gatewayApi } : {}) }) : undefined;
  // The Kubernetes client is loaded only when it is used: importing it costs over 100 MB.
  const kube = sources.includes('kube') ? await Promise.all([import('./sources/kube/kube-source.ts'), import('./sources/kube/kube-api.ts')]) : undefined;
  const kubeConnection = kube ? kube[1].connect(options.kubeconfig) : undefined;
  const kubeSource = kube && kubeConnection
    ? new kube[0].KubeSource({
        connection: kubeConnection,
        store,
        log: log.child({ component: 'kube-source' }),
        ...(options.namespaces ? { namespaces: options.namespaces } : {}),
        ...(options.gatewayApi ? { gatewayApi: options.gatewayApi } : {}),
        ...(options.kubeTuning ? { tuning: options.kubeTuning } : {}),
      })
    : undefined;
  const namespace = systemNamespace(options.secure?.namespace ?? options.systemNamespace);
  const statusWriting = kubeSource && kubeConnection && options.writeStatus !== false ? await startStatusWriting(options, namespace, kubeSource, kubeConnection, () => pushController.current(), log) : undefined;
  statusWriting?.writer.registerMetrics(metrics.registry, statusWriting.elector.name);
  pushController.onPush(() => {
    statusWriting?.writer.reconcile();
  });
  const security = options.secure
    ? await startSecurity(
        { limits: transportLimits(options), ...options.secure, host: options.xdsHost, namespace, trustDomain: (meshConfig ?? DEFAULT_MESH_CONFIG).trustDomain },
        {
          ads: adsServer,
          registry: metrics.registry,
          log,
          ...(kubeSource && kubeConnection ? { kube: { connection: kubeConnection, namespaces: () => kubeSource.namespaces() } } : {}),
        },
      )
    : undefined;
  if (security) {
    pushController.onPush(() => {
      void security.publishRoot();
    });
  }
  // Precedence: the directory first, so a local file overrides the cluster's object of the same name.
  if (yamlSource) store.register(yamlSource.sourceId);
  if (kubeSource) store.register(kubeSource.sourceId);
  await yamlSource?.start();
  let closed = false;
  if (kubeSource) {
    kubeSource.start();
    // No model (so no xDS answer and no /ready) until every informer has listed once.
    void kubeSource.whenSynced.then(() => {
      if (closed) return;
      pushController.start();
      // Only a replica that has listed the cluster stands for election.
      statusWriting?.elector.start();
      statusWriting?.writer.start();
    });
  } else {
    pushController.start();
  }

  const xdsPort = await adsServer.listen(options.xdsHost, options.xdsPort);
  const admin = await buildAdminApp(
    {
      currentPush: () => pushController.current(),
      lastPush: () => pushController.lastPush(),
      connections: () => adsServer.connections(),
      ready: () => adsServer.port !== undefined && pushController.current() !== undefined,
      snapshot: () => store.current(),
      nacks: () => nacks,
      certificateAuthority: () => security?.ca,
      leaderElection: () => ({
        election: statusWriting?.elector.state(),
        status: statusWriting?.writer.stats(),
        why: statusWriting ? undefined : kubeSource ? 'status writing is off (--write-status off)' : 'no Kubernetes source: nothing is elected and no status is written; each object\'s problems are in /debug/configz',
      }),
    },
    log,
    { metrics, access: { host: options.adminHost, ...(adminToken !== undefined ? { token: adminToken } : {}) } },
  );
  const adminPort = await startAdminServer(admin, options.adminHost, options.adminPort);
  log.info({ xdsPort, adminPort, ...(security ? { securePort: security.port } : {}), sources, ...(yamlSource ? { configDir: options.configDir } : {}), ...(kubeSource ? { kubernetes: kubeSource.sourceId } : {}) }, 'meshpilot is serving');

  return {
    xdsPort,
    adminPort,
    store,
    pushController,
    adsServer,
    metrics,
    pushQueue,
    convergence,
    log,
    ...(security ? { security } : {}),
    reloadConfig: () => yamlSource?.reload() ?? Promise.resolve(),
    async close() {
      closed = true;
      pushController.stop();
      pushQueue.stop();
      // The leader hands over before its informers stop: the Lease is released, not left to run out.
      await statusWriting?.writer.stop();
      await statusWriting?.elector.stop();
      await Promise.all([yamlSource?.stop(), kubeSource?.stop()]);
      await Promise.all([adsServer.close(), admin.close(), security?.close()]);
    },
  };
}

/** Leader election on the status Lease, and the writer that works while this replica leads; loaded only with Kubernetes. */
async function startStatusWriting(
  options: ServeOptions,
  namespace: string,
  source: KubeSource,
  connection: KubeConnection,
  currentPush: () => ReturnType<PushController['current']>,
  log: Logger,
): Promise<{ elector: LeaderElector; writer: StatusWriter }> {
  const [{ LeaderElector, holderIdentity }, { StatusWriter, DEFAULT_STATUS_WRITER_TUNING }] = await Promise.all([import('./sources/kube/leader-election.ts'), import('./sources/kube/status-writer.ts')]);
  const elector = new LeaderElector({
    connection,
    namespace,
    identity: holderIdentity(options.podName),
    ...(options.leaderElection ? { timing: options.leaderElection } : {}),
    log: log.child({ component: 'leader-election' }),
  });
  // A write begun as leader ends before a successor can have taken over (lease duration minus renew deadline later).
  const timeoutMs = Math.min(DEFAULT_STATUS_WRITER_TUNING.timeoutMs, elector.timing.leaseDurationMs - elector.timing.renewDeadlineMs);
  const writer = new StatusWriter({ connection, source, elector, currentPush, log: log.child({ component: 'status' }), tuning: { timeoutMs, ...options.statusWriterTuning } });
  return { elector, writer };
}
