// meshpilot under benchmark, in its own process: the real serve() (ADS server, push controller,
// push queue) with the synthetic mesh published straight to its ConfigStore by this harness.
import { mkdtemp } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeHeapSnapshot } from 'node:v8';
import { pino, type LevelWithSilent } from 'pino';
import { serve } from '../src/main.ts';
import { parseProxy } from '../src/model/proxy.ts';
import { generate } from '../src/xds/generate/index.ts';
import { EnvoyResource } from '../src/xds/resource.ts';
import type { XdsConnection } from '../src/xds/server/connection.ts';
import type { XdsTransportKind } from '../src/xds/server/transport.ts';
import { syncStatus } from '../src/xds/server/watch-state.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, PUSH_ORDER, ROUTE_TYPE, SECRET_TYPE } from '../src/xds/type-urls.ts';
import { SyntheticMesh, burstIndex, meshShape } from './synthetic-mesh.ts';

export type ServerMessage =
  | { type: 'endpoint'; index: number }
  | { type: 'canary'; index: number; marker: string }
  | { type: 'burst'; count: number; overMs: number }
  | { type: 'stats' }
  | { type: 'floor-encode' }
  | { type: 'floor-write'; port: number; sockets: number; bytesPerSocket: number }
  | { type: 'heap-snapshot' }
  /** Keep the ACK times of these proxies (the real Envoys), to report them per proxy. */
  | { type: 'track'; proxyIds: string[] }
  | { type: 'proxy-state'; afterSequence: number }
  | { type: 'stop' };

/** A tracked proxy as meshpilot sees it; times are epoch ms. */
export interface TrackedProxy {
  readonly id: string;
  readonly connections: number;
  /** Its first connection's start, though meshpilot may have dropped it since (a missed keepalive). */
  readonly firstConnectedAt?: number;
  /** Connections after the first. */
  readonly reconnects: number;
  /** Every type sent and ACKed, nothing pending, EDS and RDS subscribed to something. */
  readonly synced: boolean;
  /** The last ACK of the initial sync (the latest ACK of any type while synced). */
  readonly lastAckAt?: number;
  /** The last ACK of a response carrying a change from a push after `afterSequence`. */
  readonly changeAckedAt?: number;
  readonly nacks: number;
}

export type ServerReport =
  | { type: 'ready'; port: number; startRss: number; cpuSeconds: number }
  /** `sequence`: the push current at the change, which the push carrying it follows. */
  | { type: 'mutated'; at: number; marker: string; sequence: number }
  | { type: 'stats'; peakRss: number; peakHeap: number; memory: NodeJS.MemoryUsage; cpuSeconds: number; bytesSent: number; connections: number; pushes: number; maxQueued: number; pushLog: unknown[] }
  | { type: 'floor-encode'; ms: number; distinct: number; bytesPerProxy: number }
  | { type: 'floor-write'; startedAt: number }
  | { type: 'proxy-state'; proxies: TrackedProxy[] };

const now = (): number => performance.timeOrigin + performance.now();
const report = (r: ServerReport): void => {
  process.send?.(r);
};

const [services = '50', endpoints = '10', transport = 'node-http2'] = process.argv.slice(2);

function numberFromEnv<K extends string>(name: string, key: K): Partial<Record<K, number>> {
  const value = process.env[name];
  return value === undefined ? {} : ({ [key]: Number(value) } as Partial<Record<K, number>>);
}
const benchLogLevel = (process.env['MESHPILOT_BENCH_LOG'] ?? 'silent') as LevelWithSilent;
const mesh = new SyntheticMesh(meshShape(Number(services), Number(endpoints)));
const dir = await mkdtemp(join(tmpdir(), 'meshpilot-bench-'));
const running = await serve({
  configDir: dir,
  xdsHost: '127.0.0.1',
  xdsPort: 0,
  adminHost: '127.0.0.1',
  adminPort: 0,
  logLevel: benchLogLevel,
  debounceQuietMs: 100,
  debounceMaxMs: 10_000,
  // MESHPILOT_BENCH_LOG=warn shows what meshpilot warns about under load (dropped peers, NACKs), on stderr.
  log: pino({ level: benchLogLevel }, pino.destination(2)),
  // Tuning experiments: MESHPILOT_BENCH_HIGH_WATER / MESHPILOT_BENCH_TOTAL_HIGH_WATER / MESHPILOT_BENCH_CONCURRENCY.
  ...numberFromEnv('MESHPILOT_BENCH_HIGH_WATER', 'xdsHighWaterBytes'),
  ...numberFromEnv('MESHPILOT_BENCH_TOTAL_HIGH_WATER', 'xdsTotalHighWaterBytes'),
  ...numberFromEnv('MESHPILOT_BENCH_CONCURRENCY', 'pushConcurrency'),
  xdsTransport: transport as XdsTransportKind,
  // A loaded machine can leave the clients too busy to answer a PING within 10 s: MESHPILOT_BENCH_KEEPALIVE_TIMEOUT_MS.
  xdsTransportTuning: numberFromEnv('MESHPILOT_BENCH_KEEPALIVE_TIMEOUT_MS', 'keepaliveTimeoutMs'),
});
running.store.publish('bench', mesh.snapshot(), 'synthetic mesh');
running.pushController.flush();

let peakRss = process.memoryUsage.rss();
let peakHeap = 0;
setInterval(() => {
  peakRss = Math.max(peakRss, process.memoryUsage.rss());
}, 25).unref();
setInterval(() => {
  const m = process.memoryUsage();
  peakHeap = Math.max(peakHeap, m.heapUsed);
  if (process.env['MESHPILOT_BENCH_TRACE']) process.stderr.write(`mem rss=${m.rss >> 20} heapTotal=${m.heapTotal >> 20} heapUsed=${m.heapUsed >> 20} external=${m.external >> 20} conns=${running.adsServer.connections().length}\n`);
}, 250).unref();
let pushes = 0;
const pushLog: { sequence: number; durationMs: number; scope: unknown; at: number; drainedAt?: number }[] = [];
running.pushController.onPush(() => {
  pushes++;
  const last = running.pushController.lastPush();
  if (!last) return;
  const entry: (typeof pushLog)[number] = { sequence: last.sequence, durationMs: last.durationMs, scope: last.scope, at: now() };
  pushLog.push(entry);
  // When the push queue has handed every proxy its update.
  const poll = setInterval(() => {
    if (running.pushQueue.size > 0) return;
    clearInterval(poll);
    entry.drainedAt = now();
  }, 2);
});

function publish(reason: string): void {
  running.store.publish('bench', mesh.snapshot(), reason);
}
const pushSequence = (): number => running.pushController.current()?.sequence ?? 0;

const tracked = new Set<string>();
// Seen by each look at the tracked proxies: a first connection lives for seconds at least (a keepalive timeout), looks come every 50 ms.
const connectionsSeen = new Map<string, { first: number; ids: Set<string> }>();
const changeAcks = new Map<string, { at: number; pushSequence: number }[]>();
running.convergence.onSample((sample) => {
  if (sample.proxyId === undefined || !tracked.has(sample.proxyId)) return;
  const acks = changeAcks.get(sample.proxyId) ?? [];
  acks.push({ at: now(), pushSequence: sample.pushSequence });
  changeAcks.set(sample.proxyId, acks);
});

function isSynced(connection: XdsConnection): boolean {
  if (connection.pendingTypes().length > 0) return false;
  // Secrets count only for a proxy that asks for them (a gateway); sidecars never do.
  return PUSH_ORDER.filter((typeUrl) => typeUrl !== SECRET_TYPE || connection.watches.has(typeUrl)).every((typeUrl) => {
    const watch = connection.watches.get(typeUrl);
    if (!watch) return false;
    // A Delta client that reconnects holding everything (initial_resource_versions) is sent nothing for that type.
    const upToDate = syncStatus(watch) === 'SYNCED' || (connection.mode === 'delta' && watch.sent === undefined && watch.held.size > 0);
    return upToDate && (typeUrl === CLUSTER_TYPE || typeUrl === LISTENER_TYPE || watch.subscription.names.length > 0);
  });
}

function proxyState(afterSequence: number): TrackedProxy[] {
  const byProxy = new Map<string, XdsConnection[]>();
  for (const connection of running.adsServer.connections()) {
    const id = connection.proxy?.id;
    if (id !== undefined && tracked.has(id)) byProxy.set(id, [...(byProxy.get(id) ?? []), connection]);
  }
  return [...tracked].map((id) => {
    const connections = byProxy.get(id) ?? [];
    const connection = connections[0];
    const watches = connection ? [...connection.watches.values()] : [];
    const acks = watches.flatMap((w) => (w.acked ? [w.acked.at.getTime()] : []));
    const changeAcked = (changeAcks.get(id) ?? []).filter((a) => a.pushSequence > afterSequence).map((a) => a.at);
    for (const c of connections) {
      const seen = connectionsSeen.get(id) ?? { first: c.connectedAt.getTime(), ids: new Set<string>() };
      seen.first = Math.min(seen.first, c.connectedAt.getTime());
      seen.ids.add(c.id);
      connectionsSeen.set(id, seen);
    }
    const seen = connectionsSeen.get(id);
    return {
      id,
      connections: connections.length,
      ...(seen ? { firstConnectedAt: seen.first } : {}),
      reconnects: Math.max(0, (seen?.ids.size ?? 0) - 1),
      synced: connections.length === 1 && connection !== undefined && isSynced(connection),
      ...(acks.length > 0 ? { lastAckAt: Math.max(...acks) } : {}),
      ...(changeAcked.length > 0 ? { changeAckedAt: Math.max(...changeAcked) } : {}),
      nacks: watches.filter((w) => w.nack !== undefined).length,
    };
  });
}

/** Each distinct resource the proxies get, encoded once from fresh objects. */
function floorEncode(): void {
  const push = running.pushController.current();
  if (!push) return;
  const distinct = new Set<EnvoyResource>();
  let bytesPerProxy = 0;
  for (let ns = 0; ns < mesh.shape.namespaces; ns++) {
    const proxy = parseProxy(`sidecar~10.0.0.1~floor.ns-${ns}~ns-${ns}.svc.cluster.local`);
    const clusters = generate(CLUSTER_TYPE, push, proxy);
    const all = [
      ...clusters,
      ...generate(ENDPOINT_TYPE, push, proxy, clusters.filter((c) => c.name.startsWith('outbound|')).map((c) => c.name)),
      ...generate(LISTENER_TYPE, push, proxy),
      ...generate(ROUTE_TYPE, push, proxy),
    ];
    for (const r of all) distinct.add(r);
    if (ns === 0) bytesPerProxy = all.reduce((n, r) => n + r.bytes.length, 0);
  }
  const fresh = [...distinct].map((r) => new EnvoyResource(r.typeUrl, r.name, r.json));
  const started = performance.now();
  let encoded = 0;
  for (const r of fresh) encoded += r.bytes.length;
  report({ type: 'floor-encode', ms: performance.now() - started, distinct: encoded > 0 ? fresh.length : 0, bytesPerProxy });
}

/** The same number of bytes to the same number of raw sockets, as fast as the kernel takes them. */
function floorWrite(message: Extract<ServerMessage, { type: 'floor-write' }>): void {
  const payload = Buffer.alloc(message.bytesPerSocket, 7);
  const startedAt = now();
  const connect = (attempt: number): void => {
    const socket = net.connect(message.port, '127.0.0.1', () => {
      socket.end(payload);
    });
    // A connection refused while thousands open at once is tried again, so every byte arrives.
    socket.on('error', () => {
      if (attempt < 5)
        setTimeout(() => {
          connect(attempt + 1);
        }, 10);
    });
  };
  for (let i = 0; i < message.sockets; i++) connect(0);
  report({ type: 'floor-write', startedAt });
}

process.on('message', (message: ServerMessage) => {
  if (process.env['MESHPILOT_BENCH_TRACE']) process.stderr.write(`message ${message.type}\n`);
  switch (message.type) {
    case 'endpoint': {
      const marker = mesh.moveEndpoint(message.index);
      const sequence = pushSequence();
      const at = now();
      publish('endpoint moved');
      report({ type: 'mutated', at, marker, sequence });
      break;
    }
    case 'canary': {
      mesh.setCanary(message.index, 70, message.marker);
      const sequence = pushSequence();
      const at = now();
      publish('canary moved');
      report({ type: 'mutated', at, marker: message.marker, sequence });
      break;
    }
    case 'burst': {
      let done = 0;
      const timer = setInterval(() => {
        const marker = mesh.moveEndpoint(burstIndex(done, mesh.shape.services));
        const sequence = pushSequence();
        const at = now();
        publish('burst');
        if (++done === message.count) {
          clearInterval(timer);
          report({ type: 'mutated', at, marker, sequence });
        }
      }, message.overMs / message.count);
      break;
    }
    case 'stats': {
      const cpu = process.cpuUsage();
      const connections = running.adsServer.connections();
      report({
        type: 'stats',
        peakRss,
        peakHeap,
        memory: process.memoryUsage(),
        cpuSeconds: (cpu.user + cpu.system) / 1e6,
        bytesSent: connections.reduce((n, c) => n + c.bytesSent, 0),
        connections: connections.length,
        pushes,
        maxQueued: running.pushQueue.maxQueued,
        pushLog: pushLog.slice(-8).map((p) => ({ ...p, drainMs: p.drainedAt === undefined ? undefined : Math.round(p.drainedAt - p.at) })),
      });
      break;
    }
    case 'floor-encode':
      floorEncode();
      break;
    case 'heap-snapshot':
      process.send?.({ type: 'heap-snapshot', file: writeHeapSnapshot() });
      break;
    case 'floor-write':
      floorWrite(message);
      break;
    case 'track':
      for (const id of message.proxyIds) tracked.add(id);
      break;
    case 'proxy-state':
      report({ type: 'proxy-state', proxies: proxyState(message.afterSequence) });
      break;
    case 'stop':
      void running.close().then(() => process.exit(0));
      break;
  }
});

const startCpu = process.cpuUsage();
report({ type: 'ready', port: running.xdsPort, startRss: process.memoryUsage.rss(), cpuSeconds: (startCpu.user + startCpu.system) / 1e6 });
// The harness is gone: nothing will ask this process for anything again.
process.on('disconnect', () => {
  process.exit(1);
});
