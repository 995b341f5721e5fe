// The driver's side of the real Envoys: starts them beside the light clients, and times each one
// by meshpilot's record of its ACKs, once its own stats confirm it holds what was sent.
import type { ChildProcess } from 'node:child_process';
import { exactStat } from '../test/support/envoy.ts';
import type { EnvoyMessage, EnvoyReport, EnvoySync } from './envoys-proc.ts';
import { expect, formatConvergence, percentiles, type Convergence } from './harness.ts';
import type { ServerMessage, ServerReport, TrackedProxy } from './server-proc.ts';

/** Per Envoy: until meshpilot had its ACK, and until it applied the update by its own clock. */
export interface EnvoyTimes {
  readonly ack: Convergence;
  readonly applied: Convergence;
}

export interface EnvoyResults {
  readonly envoys: number;
  /** Per Envoy, from its first connection to meshpilot to its last ACK (and last update applied) of the initial config. */
  readonly initialSync: EnvoyTimes;
  /** From launching the Envoys until the last one holds the whole config. */
  readonly allSyncedMs: number;
  /** What each holds then (the same for all: the range is printed if they differ). */
  readonly held: { clusters: string; listeners: string; routeConfigs: string };
  readonly endpointChange?: EnvoyTimes;
  readonly virtualServiceChange?: EnvoyTimes;
  readonly burst100?: EnvoyTimes;
  readonly rssSumMB: number;
  readonly peakRssSumMB: number;
  readonly rssEachMaxMB: number;
  readonly cpuSeconds: number;
  readonly rejected: number;
  /** Envoys meshpilot dropped (a keepalive PING unanswered while busy) that connected again. */
  readonly reconnects: number;
}

/** The counter an endpoint change moves: the EDS subscription of the service's cluster. */
export const edsCounter = (host: string, port: number): string => exactStat(`cluster.outbound|${port}||${host}.update_success`);
/** The counter a route change moves: the RDS subscription of the port's route configuration. */
export const rdsCounter = (port: number): string => `\\.rds\\.${port}\\.update_success$`;

const MB = 2 ** 20;
const range = (values: readonly number[]): string => {
  const low = Math.min(...values);
  const high = Math.max(...values);
  return low === high ? String(low) : `${low}–${high}`;
};

export class EnvoyFleet {
  readonly #proc: ChildProcess;
  readonly #server: ChildProcess;
  readonly #count: number;
  #startedAt = 0;
  #sync: Pick<EnvoyResults, 'initialSync' | 'allSyncedMs' | 'held'> | undefined;
  #changes: Pick<EnvoyResults, 'endpointChange' | 'virtualServiceChange' | 'burst100'> = {};
  #reconnects = 0;

  constructor(proc: ChildProcess, server: ChildProcess, count: number) {
    this.#proc = proc;
    this.#server = server;
    this.#count = count;
  }

  #send(message: EnvoyMessage): void {
    this.#proc.send(message);
  }

  #toServer(message: ServerMessage): void {
    this.#server.send(message);
  }

  /** Launches the Envoys; meshpilot keeps each one's ACK times from then on. */
  async start(port: number, mode: 'sotw' | 'delta', namespaces: number): Promise<void> {
    const started = expect<EnvoyReport, 'started'>(this.#proc, 'started', 120_000);
    this.#send({ type: 'start', port, envoys: this.#count, mode, namespaces });
    const { startedAt, nodeIds } = await started;
    this.#startedAt = startedAt;
    this.#toServer({ type: 'track', proxyIds: nodeIds });
  }

  /** Polls meshpilot (a cheap look at its own streams) until every Envoy passes `ready`. */
  async #waitForProxies(afterSequence: number, what: string, ready: (p: TrackedProxy) => boolean, timeoutMs: number): Promise<TrackedProxy[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const state = expect<ServerReport, 'proxy-state'>(this.#server, 'proxy-state');
      this.#toServer({ type: 'proxy-state', afterSequence });
      const { proxies } = await state;
      const nacked = proxies.filter((p) => p.nacks > 0);
      if (nacked.length > 0) throw new Error(`meshpilot saw Envoy reject an update: ${nacked.map((p) => p.id).join(', ')}`);
      const waiting = proxies.filter((p) => !ready(p));
      if (waiting.length === 0) return proxies;
      if (Date.now() > deadline) throw new Error(`${waiting.length} of ${proxies.length} Envoys not ${what} within ${timeoutMs} ms: ${waiting.slice(0, 3).map((p) => p.id).join(', ')}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async initialSync(): Promise<void> {
    const proxies = await this.#waitForProxies(0, 'in sync', (p) => p.synced, 300_000);
    this.#reconnects = proxies.reduce((n, p) => n + p.reconnects, 0);
    const confirmed = expect<EnvoyReport, 'sync-confirmed'>(this.#proc, 'sync-confirmed', 120_000);
    this.#send({ type: 'confirm-sync' });
    const held: readonly EnvoySync[] = (await confirmed).envoys;
    const lastAcks = proxies.map((p) => p.lastAckAt ?? NaN);
    const initialSync: EnvoyTimes = {
      ack: percentiles(proxies.map((p) => (p.lastAckAt ?? NaN) - (p.firstConnectedAt ?? NaN)), 0),
      applied: percentiles(proxies.map((p, i) => (held[i]?.appliedAt ?? NaN) - (p.firstConnectedAt ?? NaN)), 0),
    };
    this.#sync = {
      initialSync,
      allSyncedMs: Math.round(Math.max(...lastAcks) - this.#startedAt),
      held: { clusters: range(held.map((h) => h.clusters)), listeners: range(held.map((h) => h.listeners)), routeConfigs: range(held.map((h) => h.routeConfigs)) },
    };
  }

  /** Before a change: reads on every Envoy the counter that must grow once it applies it. */
  async before(id: string, counter: string): Promise<void> {
    const taken = expect<EnvoyReport, 'baseline-taken'>(this.#proc, 'baseline-taken');
    this.#send({ type: 'baseline', id, counter });
    await taken;
  }

  /** After a change made at `at` (after push `sequence`): each Envoy's ACK of it, confirmed by its counter. */
  async after(id: 'endpointChange' | 'virtualServiceChange' | 'burst100', at: number, sequence: number): Promise<EnvoyTimes> {
    const proxies = await this.#waitForProxies(sequence, 'ACKing the change', (p) => p.synced && p.changeAckedAt !== undefined, 60_000);
    const confirmed = expect<EnvoyReport, 'confirmed'>(this.#proc, 'confirmed', 60_000);
    this.#send({ type: 'confirm', id });
    const { appliedAt } = await confirmed;
    this.#reconnects = proxies.reduce((n, p) => n + p.reconnects, 0);
    const result: EnvoyTimes = {
      ack: percentiles(proxies.map((p) => (p.changeAckedAt ?? NaN) - at), 0),
      applied: percentiles(appliedAt.map((t) => t - at), 0),
    };
    this.#changes = { ...this.#changes, [id]: result };
    return result;
  }

  /** Memory, CPU and rejected updates; any rejected update fails the scenario. */
  async finish(): Promise<EnvoyResults> {
    const usage = expect<EnvoyReport, 'usage'>(this.#proc, 'usage');
    this.#send({ type: 'usage' });
    const { rssBytes, cpuSeconds, peakRssSumBytes, rejected } = await usage;
    const rejectedCount = Object.values(rejected).reduce((n, byStat) => n + Object.values(byStat).reduce((m, v) => m + v, 0), 0);
    if (rejectedCount > 0) throw new Error(`Envoy rejected updates: ${JSON.stringify(rejected)}`);
    if (!this.#sync) throw new Error('the Envoys were never in sync');
    return {
      envoys: this.#count,
      ...this.#sync,
      ...this.#changes,
      rssSumMB: Math.round(rssBytes.reduce((n, b) => n + b, 0) / MB),
      peakRssSumMB: Math.round(peakRssSumBytes / MB),
      rssEachMaxMB: Math.round(Math.max(...rssBytes) / MB),
      cpuSeconds: Math.round(cpuSeconds.reduce((n, c) => n + c, 0) * 10) / 10,
      rejected: rejectedCount,
      reconnects: this.#reconnects,
    };
  }

  /** Stops every Envoy; the process is killed if that does not end in time. */
  async stop(): Promise<void> {
    if (!this.#proc.connected) return;
    const exited = new Promise((resolve) => this.#proc.once('exit', resolve));
    this.#send({ type: 'stop' });
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
    this.#proc.kill();
  }
}

export const ENVOY_TABLE_HEADER = [
  '| scenario | mode | Envoys | initial sync p50/p99/max ms | all synced ms | endpoint p50/p99/max ms | VirtualService p50/p99/max ms | burst of 100 p50/p99/max ms | clusters each | RSS MB sum (peak) / each | CPU s | rejected | reconnects |',
  '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
];

export function envoyRow(scenario: string, mode: string, r: EnvoyResults): string {
  // meshpilot's ACK times, and in brackets the latest Envoy applied it by its own clock.
  const conv = (c: EnvoyTimes | undefined): string => (c ? `${formatConvergence(c.ack)} (${c.applied.max})` : '-');
  return `| ${[
    scenario, mode, r.envoys, conv(r.initialSync), r.allSyncedMs, conv(r.endpointChange), conv(r.virtualServiceChange), conv(r.burst100),
    r.held.clusters, `${r.rssSumMB} (${r.peakRssSumMB}) / ${r.rssEachMaxMB}`, r.cpuSeconds, r.rejected, r.reconnects,
  ].join(' | ')} |`;
}
