// Wires the house together: sources -> store -> push controller -> ADS server, plus the admin API.
import type { LevelWithSilent } from 'pino';
import { buildAdminApp, startAdminServer } from './admin/server.ts';
import { createLogger, type Logger } from './log.ts';
import { ConfigStore } from './model/store.ts';
import { ConvergenceTracker } from './push/convergence.ts';
import { PushController } from './push/push-controller.ts';
import { PushQueue } from './push/push-queue.ts';
import { YamlSource } from './sources/yaml-source.ts';
import { generate } from './xds/generate/index.ts';
import { envoyRoot } from './xds/protos.ts';
import { AdsServer } from './xds/server/ads-server.ts';

export interface ServeOptions {
  readonly configDir: string;
  readonly xdsHost: string;
  readonly xdsPort: number;
  readonly adminHost: string;
  readonly adminPort: number;
  readonly logLevel: LevelWithSilent;
  readonly debounceQuietMs: number;
  readonly debounceMaxMs: number;
  /** Proxies sent to per event-loop turn by the push queue. */
  readonly pushConcurrency?: number;
  /** Unwritten bytes per xDS stream above which meshpilot waits for the proxy to read. */
  readonly xdsHighWaterBytes?: number;
  /** Tests pass their own logger. */
  readonly log?: Logger;
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
};

export interface RunningMeshpilot {
  readonly xdsPort: number;
  readonly adminPort: number;
  readonly store: ConfigStore;
  readonly pushController: PushController;
  readonly adsServer: AdsServer;
  readonly pushQueue: PushQueue;
  readonly convergence: ConvergenceTracker;
  readonly log: Logger;
  close(): Promise<void>;
}

export async function serve(options: ServeOptions): Promise<RunningMeshpilot> {
  const log = options.log ?? createLogger(options.logLevel);
  envoyRoot(); // load the protos before anything can need them
  const store = new ConfigStore();

  const pushQueue = new PushQueue({ concurrency: options.pushConcurrency ?? 100 });
  const convergence = new ConvergenceTracker();
  const adsServer = new AdsServer({
    generate,
    currentPush: () => pushController.current(),
    log: log.child({ component: 'xds' }),
    scheduler: pushQueue,
    events: convergence.events,
    ...(options.xdsHighWaterBytes !== undefined ? { highWaterBytes: options.xdsHighWaterBytes } : {}),
  });

  const pushController: PushController = new PushController({
    store,
    target: adsServer,
    log: log.child({ component: 'push' }),
    debounce: { quietMs: options.debounceQuietMs, maxMs: options.debounceMaxMs },
  });
  const source = new YamlSource({ dir: options.configDir, store, log: log.child({ component: 'yaml-source' }) });
  await source.start();
  pushController.start();

  const xdsPort = await adsServer.listen(options.xdsHost, options.xdsPort);
  const admin = buildAdminApp(
    {
      currentPush: () => pushController.current(),
      lastPush: () => pushController.lastPush(),
      connections: () => adsServer.connections(),
      ready: () => adsServer.port !== undefined && pushController.current() !== undefined,
    },
    log,
  );
  const adminPort = await startAdminServer(admin, options.adminHost, options.adminPort);
  log.info({ xdsPort, adminPort, configDir: options.configDir }, 'meshpilot is serving');

  return {
    xdsPort,
    adminPort,
    store,
    pushController,
    adsServer,
    pushQueue,
    convergence,
    log,
    async close() {
      pushController.stop();
      pushQueue.stop();
      await source.stop();
      await Promise.all([adsServer.close(), admin.close()]);
    },
  };
}
