// Prometheus metrics with Istio's names, fed by the ConnectionEvents and push seams.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ConfigChanges } from './model/config-changes.ts';
import { ENDPOINTS_KIND } from './model/config-changes.ts';
import { PROXY_KINDS, proxyKind, type ProxyKind } from './model/proxy.ts';
import type { PushContext } from './model/push-context.ts';
import type { ConvergenceSample } from './push/convergence.ts';
import type { PushRecord } from './push/push-controller.ts';
import type { ConnectionEvents, XdsConnection } from './xds/server/connection.ts';
import type { TransportStats } from './xds/server/grpc-transport.ts';
import { syncStatus } from './xds/server/connection.ts';
import type { ShortType } from './xds/type-urls.ts';
import { SHORT_TYPE, TYPE_BY_SHORT } from './xds/type-urls.ts';

export interface MetricsSources {
  connections(): readonly XdsConnection[];
  currentPush(): PushContext | undefined;
  /** Log lines dropped because the log could not be written (full disk, gone reader). */
  droppedLogLines?(): number;
  /** What the xDS transport counted (refusals, buffers, connection errors). */
  transport?(): TransportStats;
  /** Proxies that stopped reading: bytes parked for them, and streams reset for it. */
  slowProxies?(): { readonly parkedBytes: number; readonly reset: number };
}

/** A counter read from a running total kept elsewhere. */
function counterFrom(registers: Registry[], name: string, help: string, read: () => number | undefined): void {
  new Counter({
    name,
    help,
    registers,
    collect() {
      this.reset();
      this.inc(read() ?? 0);
    },
  });
}

/** A response sent this long after its push was built still counts as part of that push. */
const PUSH_WINDOW_MS = 1000;
/** How many recent pushes to remember for queue timing. */
const REMEMBERED_PUSHES = 64;
const SECONDS_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 3, 5, 10, 20, 30];
const SIZE_BUCKETS = [1, 1_000, 10_000, 100_000, 1_000_000, 10_000_000];

export class MeshpilotMetrics {
  readonly registry = new Registry();
  /** When each recent push was built (Date ms), by sequence. */
  readonly #builtAt = new Map<number, number>();

  readonly #pushes: Counter<'type'>;
  readonly #pushTime: Histogram<'type'>;
  readonly #convergence: Histogram;
  readonly #queueTime: Histogram;
  readonly #debounceTime: Histogram;
  readonly #rejects: Counter<'type'>;
  readonly #expiredNonce: Counter<'type'>;
  readonly #sdsErrors: Counter;
  readonly #configSize: Histogram<'type'>;
  readonly #cfgEvents: Counter<'type' | 'event'>;

  constructor(sources: MetricsSources) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    new Gauge({
      name: 'pilot_xds',
      help: 'Number of proxies connected to this instance over ADS.',
      registers,
      collect() {
        this.set(sources.connections().length);
      },
    });
    new Gauge({
      name: 'meshpilot_xds_proxies',
      help: 'Proxies connected to this instance over ADS, by type: sidecar, router (gateway), proxyless-grpc, unknown (a node id not in Istio form).',
      labelNames: ['type'],
      registers,
      collect() {
        const counts = new Map<ProxyKind, number>(PROXY_KINDS.map((kind) => [kind, 0]));
        for (const { proxy } of sources.connections()) {
          if (proxy) counts.set(proxyKind(proxy), (counts.get(proxyKind(proxy)) ?? 0) + 1);
        }
        for (const [kind, count] of counts) this.labels(kind).set(count);
      },
    });
    new Gauge({
      name: 'meshpilot_log_dropped_lines',
      help: 'Log lines dropped since start because the log could not be written (full disk, closed pipe, a reader that stopped).',
      registers,
      collect() {
        this.set(sources.droppedLogLines?.() ?? 0);
      },
    });
    const transport = (): TransportStats | undefined => sources.transport?.();
    counterFrom(registers, 'meshpilot_xds_session_errors', 'xDS connections that failed (protocol errors, resets); each is logged once.', () => transport()?.sessionErrors);
    counterFrom(registers, 'meshpilot_xds_too_many_pings', 'xDS connections closed with GOAWAY ENHANCE_YOUR_CALM for PINGing too often.', () => transport()?.tooManyPings);
    counterFrom(registers, 'meshpilot_xds_max_age_goaways', 'xDS connections sent GOAWAY at their maximum age, so proxies rebalance.', () => transport()?.maxAgeGoaways);
    counterFrom(registers, 'meshpilot_xds_discarded_bytes', 'Request bytes dropped because their call had already ended with an error.', () => transport()?.discardedBytes);
    new Counter({
      name: 'meshpilot_xds_refused_streams',
      help: 'New xDS streams not served: over the admission rate, or on a connection being closed.',
      labelNames: ['reason'],
      registers,
      collect() {
        this.reset();
        for (const reason of ['rate', 'draining'] as const) this.labels(reason).inc(transport()?.refusedStreams.get(reason) ?? 0);
      },
    });
    new Counter({
      name: 'meshpilot_xds_refused_messages',
      help: 'xDS calls ended because of what the client sent (too large, too slow, bad compression), by gRPC status code.',
      labelNames: ['code'],
      registers,
      collect() {
        this.reset();
        for (const [code, count] of transport()?.refusedMessages ?? []) this.labels(String(code)).inc(count);
      },
    });
    counterFrom(registers, 'meshpilot_xds_slow_streams_reset', 'xDS streams reset because their proxy stopped reading while too many bytes waited on such proxies.', () => sources.slowProxies?.().reset);
    new Gauge({
      name: 'meshpilot_xds_stalled_streams',
      help: 'xDS streams whose proxy has stopped reading: their unwritten bytes no longer hold other proxies back.',
      registers,
      collect() {
        this.set(sources.connections().filter((c) => c.stalled).length);
      },
    });
    new Gauge({
      name: 'meshpilot_xds_parked_bytes',
      help: 'Unwritten response bytes waiting on proxies that stopped reading.',
      registers,
      collect() {
        this.set(sources.slowProxies?.().parkedBytes ?? 0);
      },
    });
    new Gauge({
      name: 'meshpilot_xds_receive_buffered_bytes',
      help: 'Bytes of half-received xDS request messages held now, across all connections.',
      registers,
      collect() {
        this.set(transport()?.bufferedBytes ?? 0);
      },
    });
    new Gauge({
      name: 'pilot_services',
      help: 'Total services known to this instance.',
      registers,
      collect() {
        this.set(sources.currentPush()?.services.length ?? 0);
      },
    });
    new Gauge({
      name: 'pilot_virt_services',
      help: 'Total VirtualServices known to this instance.',
      registers,
      collect() {
        const push = sources.currentPush();
        this.set(push ? [...push.ruleStatus.values()].filter((s) => s.rule.meta.kind === 'VirtualService').length : 0);
      },
    });
    for (const short of ['cds', 'eds', 'lds', 'rds'] as const satisfies readonly ShortType[]) {
      new Gauge({
        name: `pilot_xds_${short}_reject`,
        help: `Proxies whose latest ${short.toUpperCase()} response they rejected (NACK).`,
        registers,
        collect() {
          const typeUrl = TYPE_BY_SHORT[short];
          this.set(sources.connections().filter((c) => syncStatus(c.watches.get(typeUrl)) === 'ERROR').length);
        },
      });
    }
    this.#pushes = new Counter({ name: 'pilot_xds_pushes', help: 'xDS responses sent, by type.', labelNames: ['type'], registers });
    this.#pushTime = new Histogram({
      name: 'pilot_xds_push_time',
      help: 'Seconds spent generating one xDS response, by type.',
      labelNames: ['type'],
      buckets: SECONDS_BUCKETS,
      registers,
    });
    this.#convergence = new Histogram({
      name: 'pilot_proxy_convergence_time',
      help: 'Seconds from the first config change of a push to a proxy ACKing what it was sent.',
      buckets: SECONDS_BUCKETS,
      registers,
    });
    this.#queueTime = new Histogram({
      name: 'pilot_proxy_queue_time',
      help: 'Seconds a proxy waited between its push being built and its response being sent.',
      buckets: SECONDS_BUCKETS,
      registers,
    });
    this.#debounceTime = new Histogram({
      name: 'pilot_debounce_time',
      help: 'Seconds config changes waited in the debouncer before a push.',
      buckets: SECONDS_BUCKETS,
      registers,
    });
    this.#rejects = new Counter({ name: 'pilot_total_xds_rejects', help: 'xDS responses proxies rejected (NACK), by type.', labelNames: ['type'], registers });
    this.#sdsErrors = new Counter({ name: 'pilot_sds_certificate_errors_total', help: 'Secrets refused to a proxy that may not read them.', registers });
    this.#expiredNonce = new Counter({
      name: 'pilot_xds_expired_nonce',
      help: 'Requests that answered a superseded response (stale nonce), by type.',
      labelNames: ['type'],
      registers,
    });
    this.#configSize = new Histogram({
      name: 'pilot_xds_config_size_bytes',
      help: 'Encoded size of one xDS response, by type.',
      labelNames: ['type'],
      buckets: SIZE_BUCKETS,
      registers,
    });
    this.#cfgEvents = new Counter({
      name: 'pilot_k8s_cfg_events',
      help: 'Config objects added, updated or deleted, by kind.',
      labelNames: ['type', 'event'],
      registers,
    });
    for (const short of Object.values(SHORT_TYPE)) {
      // Zero series exist from the start, so rate() works before the first event.
      this.#pushes.labels(short).inc(0);
      this.#rejects.labels(short).inc(0);
      this.#expiredNonce.labels(short).inc(0);
    }
  }

  readonly events: ConnectionEvents = {
    onSend: (_connection, typeUrl, sent, { bytes, generateMs }) => {
      const type = SHORT_TYPE[typeUrl];
      this.#pushes.labels(type).inc();
      this.#pushTime.labels(type).observe(generateMs / 1000);
      this.#configSize.labels(type).observe(bytes);
      const builtAt = this.#builtAt.get(sent.pushSequence);
      const waited = builtAt !== undefined ? sent.at.getTime() - builtAt : undefined;
      if (waited !== undefined && waited <= PUSH_WINDOW_MS) this.#queueTime.observe(Math.max(0, waited) / 1000);
    },
    onNack: (_connection, typeUrl) => {
      this.#rejects.labels(SHORT_TYPE[typeUrl]).inc();
    },
    onStaleNonce: (_connection, typeUrl) => {
      this.#expiredNonce.labels(SHORT_TYPE[typeUrl]).inc();
    },
    onSecretDenied: () => {
      this.#sdsErrors.inc();
    },
  };

  /** Called after each push: debounce time, push timing, and the config objects it carries. */
  recordPush(push: PushContext, record: PushRecord | undefined, changes: ConfigChanges): void {
    const debounceMs = record?.sequence === push.sequence ? record.debounceMs : 0;
    this.#debounceTime.observe(debounceMs / 1000);
    this.#builtAt.set(push.sequence, push.builtAt.getTime());
    for (const sequence of this.#builtAt.keys()) {
      if (this.#builtAt.size <= REMEMBERED_PUSHES) break;
      this.#builtAt.delete(sequence);
    }
    // Config objects, as Istio counts them: a service's endpoints are not one.
    for (const change of changes.values()) if (change.kind !== ENDPOINTS_KIND) this.#cfgEvents.labels(change.kind, change.event).inc();
  }

  /** A proxy ACKed a response carrying a config change (src/push/convergence.ts). */
  recordConvergence(sample: ConvergenceSample): void {
    this.#convergence.observe(sample.ms / 1000);
  }

  async render(): Promise<{ contentType: string; body: string }> {
    // prom-client writes NaN as "Nan"; the exposition format spells it "NaN".
    return { contentType: this.registry.contentType, body: (await this.registry.metrics()).replace(/ Nan$/gm, ' NaN') };
  }
}
