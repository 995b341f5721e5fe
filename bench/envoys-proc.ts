// The benchmark's real Envoys, in their own process: N sidecars against meshpilot, one worker
// thread each, admin API on loopback. meshpilot's ACKs time them; their own stats confirm and
// stamp each update (update_time), read once per step: a /stats read costs Envoy's main thread
// milliseconds, so polling would skew what it measures.
import { adsBootstrap, startEnvoy, type RunningEnvoy } from '../test/support/envoy.ts';

export type EnvoyMessage =
  | { type: 'start'; port: number; envoys: number; mode: 'sotw' | 'delta'; namespaces: number }
  | { type: 'confirm-sync' }
  /** Read a counter (the sum of the stats matching `counter`) on every Envoy, before a change. */
  | { type: 'baseline'; id: string; counter: string }
  /** Wait until that counter has grown on every Envoy; report when each applied it, by its clock. */
  | { type: 'confirm'; id: string }
  | { type: 'usage' }
  | { type: 'stop' };

export interface EnvoySync {
  /** Envoy's own stamp (epoch ms) of the last CDS, EDS, LDS or RDS update it applied. */
  readonly appliedAt: number;
  readonly clusters: number;
  readonly listeners: number;
  readonly routeConfigs: number;
}

export type EnvoyReport =
  | { type: 'started'; startedAt: number; nodeIds: string[] }
  | { type: 'sync-confirmed'; envoys: EnvoySync[] }
  | { type: 'baseline-taken'; id: string }
  /** `appliedAt`: per Envoy, its `update_time` stamp (epoch ms) of the update. */
  | { type: 'confirmed'; id: string; appliedAt: number[] }
  | { type: 'usage'; rssBytes: number[]; cpuSeconds: number[]; peakRssSumBytes: number; rejected: Record<string, Record<string, number>> }
  | { type: 'failed'; message: string };

const now = (): number => performance.timeOrigin + performance.now();
const send = (report: EnvoyReport): void => {
  process.send?.(report);
};

/**
 * The stats a sidecar keeps, as Istio's bootstrap narrows them, plus every xDS update counter.
 * Envoy's full set for 1,400 clusters is 150,000 stats: 70 MB more per Envoy, twice the sync
 * time, and ~90 ms of its main thread for each /stats read.
 */
const STATS_CONFIG = {
  stats_matcher: {
    inclusion_list: {
      patterns: [
        { prefix: 'cluster_manager.' },
        { prefix: 'listener_manager.' },
        { prefix: 'server.' },
        { prefix: 'control_plane.' },
        { suffix: '.update_success' },
        { suffix: '.update_rejected' },
        { suffix: '.update_time' },
      ],
    },
  },
};

const envoys: RunningEnvoy[] = [];
const nodeIds: string[] = [];
const baselines = new Map<string, { counter: string; values: number[] }>();
let peakRssSum = 0;

function envoyNodeId(index: number, namespace: string): string {
  // Addresses apart from the light clients' 10.100+ range: each Envoy is a distinct sidecar.
  return `sidecar~10.99.${index >> 8}.${index & 255}~envoy-${index}.${namespace}~${namespace}.svc.cluster.local`;
}

async function start(message: Extract<EnvoyMessage, { type: 'start' }>): Promise<void> {
  const startedAt = now();
  for (let i = 0; i < message.envoys; i++) nodeIds.push(envoyNodeId(i, `ns-${i % message.namespaces}`));
  const started = await Promise.allSettled(
    nodeIds.map((nodeId) =>
      startEnvoy({
        bootstrap: adsBootstrap({ nodeId, xdsHost: '127.0.0.1', xdsPort: message.port, delta: message.mode === 'delta', extra: { stats_config: STATS_CONFIG } }),
        dieWithParent: true,
      }),
    ),
  );
  for (const result of started) if (result.status === 'fulfilled') envoys.push(result.value);
  const failure = started.find((r) => r.status === 'rejected');
  if (failure) throw failure.reason;
  setInterval(() => {
    void Promise.all(envoys.map((e) => e.usage().catch(() => ({ rssBytes: 0 })))).then((usage) => {
      peakRssSum = Math.max(peakRssSum, usage.reduce((n, u) => n + u.rssBytes, 0));
    });
  }, 500).unref();
  send({ type: 'started', startedAt, nodeIds });
}

/** Sum of the stats matching `filter` (an RE2 regex, as Envoy's admin takes it). */
async function counter(envoy: RunningEnvoy, filter: string): Promise<number> {
  const stats = await envoy.stats({ filter });
  let sum = 0;
  for (const value of stats.values()) sum += value;
  return sum;
}

/** The latest of the stamps matching `filter`: when Envoy last applied one of those updates. */
async function latest(envoy: RunningEnvoy, filter: string): Promise<number> {
  return Math.max(0, ...(await envoy.stats({ filter })).values());
}

/** Each subscription's `update_success` counter has an `update_time` gauge beside it. */
const stampOf = (counterFilter: string): string => counterFilter.replace('update_success', 'update_time');

const SYNC_FILTER =
  '^cluster_manager\\.(cds\\.update_success|warming_clusters|active_clusters)$|^listener_manager\\.(lds\\.update_success|total_listeners_warming|total_listeners_active)$|\\.rds\\.[^.]+\\.update_success$';

/** What Envoy holds once in sync: CDS and LDS applied, nothing warming, every route configuration applied. */
async function holdsConfig(envoy: RunningEnvoy): Promise<EnvoySync | undefined> {
  const stats = await envoy.stats({ filter: SYNC_FILTER });
  const get = (name: string): number => stats.get(name) ?? 0;
  const routes = [...stats].filter(([name]) => name.includes('.rds.'));
  const applied =
    get('cluster_manager.cds.update_success') > 0 &&
    get('listener_manager.lds.update_success') > 0 &&
    get('cluster_manager.warming_clusters') === 0 &&
    get('listener_manager.total_listeners_warming') === 0 &&
    routes.length > 0 &&
    routes.every(([, value]) => value > 0);
  if (!applied) return undefined;
  return {
    appliedAt: await latest(envoy, 'update_time$'),
    clusters: get('cluster_manager.active_clusters'),
    listeners: get('listener_manager.total_listeners_active'),
    routeConfigs: routes.length,
  };
}

async function confirmSync(): Promise<void> {
  const held = await Promise.all(envoys.map((e) => e.waitFor('CDS, EDS, LDS and RDS applied', () => holdsConfig(e), 60_000)));
  send({ type: 'sync-confirmed', envoys: held });
}

async function baseline(message: Extract<EnvoyMessage, { type: 'baseline' }>): Promise<void> {
  const values = await Promise.all(envoys.map((e) => counter(e, message.counter)));
  baselines.set(message.id, { counter: message.counter, values });
  send({ type: 'baseline-taken', id: message.id });
}

async function confirm(message: Extract<EnvoyMessage, { type: 'confirm' }>): Promise<void> {
  const taken = baselines.get(message.id);
  if (!taken) throw new Error(`no baseline for ${message.id}`);
  const appliedAt = await Promise.all(
    envoys.map(async (e, i) => {
      await e.waitFor(`${taken.counter} to grow past ${taken.values[i] ?? 0}`, async () => (await counter(e, taken.counter)) > (taken.values[i] ?? 0), 30_000);
      return latest(e, stampOf(taken.counter));
    }),
  );
  send({ type: 'confirmed', id: message.id, appliedAt });
}

async function usage(): Promise<void> {
  const [used, rejected] = await Promise.all([Promise.all(envoys.map((e) => e.usage())), Promise.all(envoys.map((e) => e.rejectedUpdates()))]);
  const rssBytes = used.map((u) => u.rssBytes);
  peakRssSum = Math.max(peakRssSum, rssBytes.reduce((n, b) => n + b, 0));
  send({
    type: 'usage',
    rssBytes,
    cpuSeconds: used.map((u) => u.cpuSeconds),
    peakRssSumBytes: peakRssSum,
    rejected: Object.fromEntries(rejected.flatMap((r, i) => (Object.keys(r).length > 0 ? [[nodeIds[i] ?? String(i), r]] : []))),
  });
}

/** Every Envoy goes with this process, whatever ends it (setpriv's parent-death signal covers SIGKILL). */
function killAll(): void {
  for (const envoy of envoys) envoy.kill();
}
process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    process.exit(1);
  });
}
// The harness is gone: nothing will ask for these Envoys again.
process.on('disconnect', () => {
  process.exit(1);
});

function handle(work: Promise<void>): void {
  work.catch((error: unknown) => {
    send({ type: 'failed', message: error instanceof Error ? error.message : String(error) });
  });
}

process.on('message', (message: EnvoyMessage) => {
  switch (message.type) {
    case 'start':
      handle(start(message));
      break;
    case 'confirm-sync':
      handle(confirmSync());
      break;
    case 'baseline':
      handle(baseline(message));
      break;
    case 'confirm':
      handle(confirm(message));
      break;
    case 'usage':
      handle(usage());
      break;
    case 'stop':
      handle(
        Promise.all(envoys.map((e) => e.stop())).then(() => {
          process.exit(0);
        }),
      );
      break;
  }
});
