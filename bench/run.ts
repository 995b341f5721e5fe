// `npm run bench [-- --quick] [-- --profile]`: for each scenario, meshpilot runs in one child
// process, P lightweight xDS clients in another and, in some, N real Envoys under a third; this
// process drives changes and measures.
import { fork, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { ClientMessage, ClientReport } from './clients-proc.ts';
import { CA_TABLE_HEADER, caRow, runCaBench } from './ca-bench.ts';
import { GATEWAY_TABLE_HEADER, gatewayRow, runGatewayBench } from './gateway-bench.ts';
import { ENVOY_TABLE_HEADER, EnvoyFleet, edsCounter, envoyRow, rdsCounter, type EnvoyResults, type EnvoyTimes } from './envoy-fleet.ts';
import { expect, formatConvergence, percentiles, type Convergence } from './harness.ts';
import type { ServerMessage, ServerReport } from './server-proc.ts';
import { PORT, burstIndex, hostOf, meshShape } from './synthetic-mesh.ts';
import { XDS_TRANSPORTS, type XdsTransportKind } from '../src/xds/server/transport.ts';

interface Scenario {
  readonly name: string;
  readonly services: number;
  readonly endpoints: number;
  /** Lightweight clients. */
  readonly proxies: number;
  /** Real Envoys beside them, measured apart. */
  readonly envoys?: number;
  readonly mode: 'sotw' | 'delta';
  /** The gRPC server of meshpilot's xDS port. */
  readonly transport: XdsTransportKind;
}

const quick = process.argv.includes('--quick');
const profile = process.argv.includes('--profile');
const heapSnapshot = process.argv.includes('--heap-snapshot');
const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length);
const envoysFlag = process.argv.find((a) => a.startsWith('--envoys='))?.slice('--envoys='.length);
const envoyCount = (n: number): number => (envoysFlag === undefined ? n : Number(envoysFlag));
const transportFlag = process.argv.find((a) => a.startsWith('--transport='))?.slice('--transport='.length) ?? 'node-http2';
if (!(XDS_TRANSPORTS as readonly string[]).includes(transportFlag)) throw new Error(`--transport is one of ${XDS_TRANSPORTS.join(', ')}`);
const transport = transportFlag as XdsTransportKind;
// The 2000-proxy scenarios on each transport in turn, side by side.
const compareTransports = process.argv.includes('--compare-transports');

const COMPARED: readonly Scenario[] = (['sotw', 'delta'] as const).flatMap((mode) =>
  XDS_TRANSPORTS.map((t) => ({ name: '1000 svc x 10 ep / 2000 proxies', services: 1000, endpoints: 10, proxies: 2000, mode, transport: t })),
);

const BY_SIZE: readonly Omit<Scenario, 'transport'>[] = quick
  ? [
      { name: '50 svc / 100 proxies', services: 50, endpoints: 10, proxies: 100, mode: 'sotw' },
      { name: '50 svc / 100 proxies', services: 50, endpoints: 10, proxies: 100, mode: 'delta' },
      { name: '300 svc x 10 ep / 300 proxies', services: 300, endpoints: 10, proxies: 300, mode: 'sotw' },
      { name: `50 svc / 100 light + ${envoyCount(5)} Envoy`, services: 50, endpoints: 10, proxies: 100, envoys: envoyCount(5), mode: 'sotw' },
    ]
  : [
      { name: '50 svc / 100 proxies', services: 50, endpoints: 10, proxies: 100, mode: 'sotw' },
      { name: '50 svc / 100 proxies', services: 50, endpoints: 10, proxies: 100, mode: 'delta' },
      { name: '1000 svc x 10 ep / 1000 proxies', services: 1000, endpoints: 10, proxies: 1000, mode: 'sotw' },
      { name: '1000 svc x 10 ep / 1000 proxies', services: 1000, endpoints: 10, proxies: 1000, mode: 'delta' },
      { name: '1000 svc x 10 ep / 2000 proxies', services: 1000, endpoints: 10, proxies: 2000, mode: 'sotw' },
      { name: '1000 svc x 10 ep / 2000 proxies', services: 1000, endpoints: 10, proxies: 2000, mode: 'delta' },
      { name: `1000 svc x 10 ep / 1000 light + ${envoyCount(50)} Envoy`, services: 1000, endpoints: 10, proxies: 1000, envoys: envoyCount(50), mode: 'sotw' },
      { name: `1000 svc x 10 ep / 1000 light + ${envoyCount(50)} Envoy`, services: 1000, endpoints: 10, proxies: 1000, envoys: envoyCount(50), mode: 'delta' },
    ];

const SCENARIOS: readonly Scenario[] = compareTransports ? COMPARED : BY_SIZE.map((s) => ({ ...s, transport }));

const here = (file: string): string => fileURLToPath(new URL(file, import.meta.url));

// Interrupted: the children go too (the Envoys' process stops its Envoys as it exits).
const children = new Set<ChildProcess>();
function spawnChild(file: string, args: string[], execArgv: string[]): ChildProcess {
  const child = fork(here(file), args, { execArgv });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    for (const child of children) child.kill('SIGTERM');
    process.exit(128 + constants.signals[signal]);
  });
}

const toServer = (child: ChildProcess, m: ServerMessage): void => {
  child.send(m);
};
const toClients = (child: ChildProcess, m: ClientMessage): void => {
  child.send(m);
};

/** The Envoys, and the counter on them that a change must move. */
type EnvoyProbe = { fleet: EnvoyFleet; id: 'endpointChange' | 'virtualServiceChange' | 'burst100'; counter: string } | undefined;

async function converge(
  server: ChildProcess,
  clients: ChildProcess,
  id: string,
  mutation: ServerMessage,
  marker?: string,
  probe?: EnvoyProbe,
): Promise<{ light: Convergence; envoys?: EnvoyTimes }> {
  if (probe) await probe.fleet.before(probe.id, probe.counter);
  // The marker is known before the change for a VirtualService; an endpoint's new address comes back from the server.
  const seen = expect<ClientReport, 'seen'>(clients, 'seen', 60_000);
  if (marker) toClients(clients, { type: 'watch', id, marker });
  const mutated = expect<ServerReport, 'mutated'>(server, 'mutated');
  toServer(server, mutation);
  const { at, marker: reported, sequence } = await mutated;
  if (!marker) toClients(clients, { type: 'watch', id, marker: `"${reported}"`.slice(1, -1) });
  const result = await seen;
  const light = percentiles(result.times.map((t) => t - at), result.missing);
  return probe ? { light, envoys: await probe.fleet.after(probe.id, at, sequence) } : { light };
}

async function runScenario(s: Scenario): Promise<Record<string, unknown>> {
  const execArgv = ['--import', 'tsx', '--max-old-space-size=2048', ...(profile ? ['--cpu-prof', '--cpu-prof-dir=.bench/profiles'] : [])];
  const server = spawnChild('./server-proc.ts', [String(s.services), String(s.endpoints), s.transport], execArgv);
  const clientsArgv = ['--import', 'tsx', '--max-old-space-size=4096', ...(profile ? ['--cpu-prof', '--cpu-prof-dir=.bench/profiles/clients'] : [])];
  const clients = spawnChild('./clients-proc.ts', [], clientsArgv);
  const fleet = s.envoys ? new EnvoyFleet(spawnChild('./envoys-proc.ts', [], ['--import', 'tsx']), server, s.envoys) : undefined;
  try {
    return await measure(s, server, clients, fleet);
  } finally {
    await fleet?.stop();
    // A clean exit lets --cpu-prof write its profile; a child that does not leave in time is killed.
    const exited = new Promise((resolve) => server.once('exit', resolve));
    if (server.connected) toServer(server, { type: 'stop' });
    if (clients.connected) toClients(clients, { type: 'stop' });
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
    server.kill();
    clients.kill();
  }
}

async function measure(s: Scenario, server: ChildProcess, clients: ChildProcess, fleet: EnvoyFleet | undefined): Promise<Record<string, unknown>> {
  const ready = await expect<ServerReport, 'ready'>(server, 'ready');
  const synced = expect<ClientReport, 'synced'>(clients, 'synced', 300_000);
  const shape = meshShape(s.services, s.endpoints);
  toClients(clients, { type: 'start', port: ready.port, proxies: s.proxies, mode: s.mode, namespaces: shape.namespaces });
  const sync = await synced;
  const initialSyncMs = Math.round(sync.at - sync.startedAt);
  toServer(server, { type: 'stats' });
  const afterSync = await expect<ServerReport, 'stats'>(server, 'stats');
  // The Envoys join a mesh that already serves the light clients, all at once: the light clients'
  // figures stay comparable with the other scenarios', and 1000 light clients and N Envoys syncing
  // together on two cores leave peers too busy to answer meshpilot's keepalive PINGs.
  let beforeChanges = afterSync;
  if (fleet) {
    await fleet.start(ready.port, s.mode, shape.namespaces);
    await fleet.initialSync();
    toServer(server, { type: 'stats' });
    beforeChanges = await expect<ServerReport, 'stats'>(server, 'stats');
  }
  if (heapSnapshot) {
    toServer(server, { type: 'heap-snapshot' });
    const { file } = await expect<{ type: 'heap-snapshot'; file: string }, 'heap-snapshot'>(server, 'heap-snapshot', 600_000);
    console.log(`heap snapshot after initial sync: ${file}`);
  }
  await new Promise((resolve) => setTimeout(resolve, 500));

  const moved = Math.floor(s.services / 2) + 1;
  const probe = (id: NonNullable<EnvoyProbe>['id'], counter: string): EnvoyProbe => (fleet ? { fleet, id, counter } : undefined);
  const endpoint = await converge(server, clients, 'endpoint', { type: 'endpoint', index: moved }, undefined, probe('endpointChange', edsCounter(hostOf(shape, moved), PORT)));
  toServer(server, { type: 'stats' });
  const afterEndpoint = await expect<ServerReport, 'stats'>(server, 'stats');
  await new Promise((resolve) => setTimeout(resolve, 300));
  const canary = await converge(server, clients, 'canary', { type: 'canary', index: 0, marker: 'bench-canary-1' }, 'bench-canary-1', probe('virtualServiceChange', rdsCounter(PORT)));
  await new Promise((resolve) => setTimeout(resolve, 300));
  const burstCount = 100;
  const lastMoved = burstIndex(burstCount - 1, s.services);
  const burst = await converge(server, clients, 'burst', { type: 'burst', count: burstCount, overMs: 1000 }, undefined, probe('burst100', edsCounter(hostOf(shape, lastMoved), PORT)));
  const envoys = await fleet?.finish();

  toServer(server, { type: 'stats' });
  const stats = await expect<ServerReport, 'stats'>(server, 'stats');
  toServer(server, { type: 'floor-encode' });
  const encode = await expect<ServerReport, 'floor-encode'>(server, 'floor-encode');
  const bytesPerSocket = Math.round(afterSync.bytesSent / s.proxies);
  toClients(clients, { type: 'sink', sockets: s.proxies, bytesPerSocket });
  const sink = await expect<ClientReport, 'sink-ready'>(clients, 'sink-ready');
  const sinkDone = expect<ClientReport, 'sink-done'>(clients, 'sink-done');
  toServer(server, { type: 'floor-write', port: sink.port, sockets: s.proxies, bytesPerSocket });
  const writeStart = await expect<ServerReport, 'floor-write'>(server, 'floor-write');
  const writeMs = (await sinkDone).at - writeStart.startedAt;
  const floorMs = Math.round(encode.ms + writeMs);

  return {
    scenario: s.name,
    mode: s.mode,
    transport: s.transport,
    services: s.services,
    endpointsPerService: s.endpoints,
    proxies: s.proxies,
    initialSyncMs,
    // meshpilot's CPU from serving the first proxy to the last one synced (start-up excluded).
    initialSyncCpuSeconds: Math.round((afterSync.cpuSeconds - ready.cpuSeconds) * 10) / 10,
    // The proxies' process over the same time: both share the machine's cores.
    initialSyncClientsCpuSeconds: Math.round(sync.cpuSeconds * 10) / 10,
    floorMs,
    syncOverFloor: Math.round((initialSyncMs / floorMs) * 100) / 100,
    floor: { encodeMs: Math.round(encode.ms), writeMs: Math.round(writeMs), distinctResources: encode.distinct, bytesPerProxy: bytesPerSocket },
    endpointChange: { ...endpoint.light, bytesSent: afterEndpoint.bytesSent - beforeChanges.bytesSent },
    virtualServiceChange: canary.light,
    burst100: burst.light,
    ...(envoys ? { envoys } : {}),
    peakRssMB: Math.round(stats.peakRss / 2 ** 20),
    peakHeapMB: Math.round(stats.peakHeap / 2 ** 20),
    memoryAfterMB: Object.fromEntries(Object.entries(stats.memory).map(([k, v]) => [k, Math.round(v / 2 ** 20)])),
    cpuSeconds: Math.round(stats.cpuSeconds * 10) / 10,
    bytesSentMB: Math.round((stats.bytesSent / 2 ** 20) * 10) / 10,
    pushes: stats.pushes,
    recentPushes: stats.pushLog,
  };
}

function row(r: Record<string, unknown>): string {
  const c = (k: string): Convergence => r[k] as Convergence;
  const conv = formatConvergence;
  return [
    r['scenario'], r['transport'] === 'node-http2' ? r['mode'] : `${String(r['mode'])}, ${String(r['transport'])}`, r['initialSyncMs'], `${String(r['initialSyncCpuSeconds'])}/${String(r['initialSyncClientsCpuSeconds'])}`, r['floorMs'], r['syncOverFloor'],
    conv(c('endpointChange')), conv(c('virtualServiceChange')), conv(c('burst100')),
    r['peakRssMB'], r['cpuSeconds'], r['bytesSentMB'],
  ].join(' | ');
}

/** Each mode's figures on each transport side by side, with grpc-js's over the hand-written one's. */
function transportComparison(all: readonly Record<string, unknown>[]): string[] {
  const [base, other] = XDS_TRANSPORTS;
  const figures: [string, (r: Record<string, unknown>) => number | undefined][] = [
    ['initial sync ms', (r) => r['initialSyncMs'] as number],
    ['meshpilot CPU s to sync', (r) => r['initialSyncCpuSeconds'] as number],
    ['peak RSS MB', (r) => r['peakRssMB'] as number],
    ['meshpilot CPU s, whole run', (r) => r['cpuSeconds'] as number],
    ...(['endpointChange', 'virtualServiceChange', 'burst100'] as const).flatMap((k) =>
      (['p50', 'p99'] as const).map((q): [string, (r: Record<string, unknown>) => number | undefined] => [`${k} ${q} ms`, (r) => (r[k] as Convergence | undefined)?.[q]]),
    ),
  ];
  const lines = [`| mode | figure | ${base} | ${other} | ${other} / ${base} |`, '|---|---|---|---|---|'];
  for (const mode of ['sotw', 'delta']) {
    const of = (t: string): Record<string, unknown> | undefined => all.find((r) => r['mode'] === mode && r['transport'] === t && r['error'] === undefined);
    const a = of(base);
    const b = of(other);
    for (const [label, read] of figures) {
      const x = a ? read(a) : undefined;
      const y = b ? read(b) : undefined;
      const ratio = x !== undefined && y !== undefined && x > 0 ? (y / x).toFixed(2) : '-';
      lines.push(`| ${mode} | ${label} | ${String(x ?? 'failed')} | ${String(y ?? 'failed')} | ${ratio} |`);
    }
  }
  return lines;
}

await mkdir('.bench', { recursive: true });
const results: Record<string, unknown>[] = [];
const envoyRows: string[] = [];
console.log('| scenario | mode | initial sync ms | sync CPU s meshpilot/clients | floor ms | sync/floor | endpoint p50/p99/max ms | VirtualService p50/p99/max ms | burst of 100 p50/p99/max ms | peak RSS MB | CPU s | sent MB |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const scenario of SCENARIOS) {
  if (only && !`${scenario.name} ${scenario.mode}`.includes(only)) continue;
  try {
    const result = await runScenario(scenario);
    results.push(result);
    console.log(`| ${row(result)} |`);
    if (result['envoys']) envoyRows.push(envoyRow(scenario.name, scenario.mode, result['envoys'] as EnvoyResults));
  } catch (error) {
    // Report the shortfall and go on with the next scenario.
    const message = error instanceof Error ? error.message : String(error);
    results.push({ scenario: scenario.name, mode: scenario.mode, proxies: scenario.proxies, error: message });
    console.log(`| ${scenario.name} | ${scenario.mode} | failed: ${message} |`);
    process.exitCode = 1;
  }
}
if (compareTransports) console.log(['', ...transportComparison(results)].join('\n'));
if (envoyRows.length > 0) console.log(['', 'Real Envoys, beside the light clients above (p50/p99/max until meshpilot has the Envoy\'s ACK; in brackets, the last Envoy applied it, by its own update_time):', ...ENVOY_TABLE_HEADER, ...envoyRows].join('\n'));
if (!compareTransports && (!only || only === 'ca')) {
  try {
    const ca = await runCaBench({ quick });
    results.push({ scenario: 'ca', ...ca });
    console.log(['', 'The CA (its own process, one libuv thread; callers authenticate with client certificates over TLS):', ...CA_TABLE_HEADER, caRow(ca)].join('\n'));
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    results.push({ scenario: 'ca', error: message });
    console.log(`\nthe CA benchmark failed: ${message}`);
    process.exitCode = 1;
  }
}
if (!compareTransports && (!only || only === 'gateway')) {
  try {
    const gateway = await runGatewayBench({ quick });
    results.push({ scenario: 'gateway', ...gateway });
    console.log(['', 'A gateway proxy (Gateway API HTTPRoutes on one listener; status written by the leader on the fake Kubernetes API while one route changes every 100 ms):', ...GATEWAY_TABLE_HEADER, gatewayRow(gateway)].join('\n'));
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    results.push({ scenario: 'gateway', error: message });
    console.log(`\nthe gateway benchmark failed: ${message}`);
    process.exitCode = 1;
  }
}
const file = `.bench/results${compareTransports ? '-transports' : quick ? '-quick' : ''}.json`;
await writeFile(file, JSON.stringify({ at: new Date().toISOString(), node: process.version, results }, null, 2));
console.log(`\nwritten to ${file}`);
