// `npm run bench [-- --quick] [-- --profile]`: for each scenario, meshpilot runs in one child
// process and P lightweight xDS clients in another; this process drives changes and measures.
import { fork, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { ClientMessage, ClientReport } from './clients-proc.ts';
import type { ServerMessage, ServerReport } from './server-proc.ts';

interface Scenario {
  readonly name: string;
  readonly services: number;
  readonly endpoints: number;
  readonly proxies: number;
  readonly mode: 'sotw' | 'delta';
}

const quick = process.argv.includes('--quick');
const profile = process.argv.includes('--profile');
const heapSnapshot = process.argv.includes('--heap-snapshot');
const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length);

const SCENARIOS: readonly Scenario[] = quick
  ? [
      { name: '50 svc / 100 proxies', services: 50, endpoints: 10, proxies: 100, mode: 'sotw' },
      { name: '50 svc / 100 proxies', services: 50, endpoints: 10, proxies: 100, mode: 'delta' },
      { name: '300 svc x 10 ep / 300 proxies', services: 300, endpoints: 10, proxies: 300, mode: 'sotw' },
    ]
  : [
      { name: '50 svc / 100 proxies', services: 50, endpoints: 10, proxies: 100, mode: 'sotw' },
      { name: '50 svc / 100 proxies', services: 50, endpoints: 10, proxies: 100, mode: 'delta' },
      { name: '1000 svc x 10 ep / 1000 proxies', services: 1000, endpoints: 10, proxies: 1000, mode: 'sotw' },
      { name: '1000 svc x 10 ep / 1000 proxies', services: 1000, endpoints: 10, proxies: 1000, mode: 'delta' },
      { name: '1000 svc x 10 ep / 2000 proxies', services: 1000, endpoints: 10, proxies: 2000, mode: 'sotw' },
      { name: '1000 svc x 10 ep / 2000 proxies', services: 1000, endpoints: 10, proxies: 2000, mode: 'delta' },
    ];

const here = (file: string): string => fileURLToPath(new URL(file, import.meta.url));

/** Waits for the next message of `type` from a child. */
function expect<T extends { type: string }, K extends T['type']>(child: ChildProcess, type: K, timeoutMs = 120_000): Promise<Extract<T, { type: K }>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.off('message', listener);
      reject(new Error(`no "${type}" from the child within ${timeoutMs} ms`));
    }, timeoutMs);
    const listener = (message: T): void => {
      if (message.type !== type) return;
      clearTimeout(timer);
      child.off('message', listener);
      resolve(message as Extract<T, { type: K }>);
    };
    child.on('message', listener);
  });
}

const toServer = (child: ChildProcess, m: ServerMessage): void => {
  child.send(m);
};
const toClients = (child: ChildProcess, m: ClientMessage): void => {
  child.send(m);
};

interface Convergence {
  p50: number;
  p99: number;
  max: number;
  missing: number;
}

function percentiles(values: number[], missing: number): Convergence {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number): number => Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN);
  return { p50: at(0.5), p99: at(0.99), max: Math.round(sorted.at(-1) ?? NaN), missing };
}

async function converge(server: ChildProcess, clients: ChildProcess, id: string, mutation: ServerMessage, marker?: string): Promise<Convergence> {
  // The marker is known before the change for a VirtualService; an endpoint's new address comes back from the server.
  const seen = expect<ClientReport, 'seen'>(clients, 'seen', 60_000);
  if (marker) toClients(clients, { type: 'watch', id, marker });
  const mutated = expect<ServerReport, 'mutated'>(server, 'mutated');
  toServer(server, mutation);
  const { at, marker: reported } = await mutated;
  if (!marker) toClients(clients, { type: 'watch', id, marker: `"${reported}"`.slice(1, -1) });
  const result = await seen;
  return percentiles(result.times.map((t) => t - at), result.missing);
}

async function runScenario(s: Scenario): Promise<Record<string, unknown>> {
  const execArgv = ['--import', 'tsx', '--max-old-space-size=2048', ...(profile ? ['--cpu-prof', '--cpu-prof-dir=.bench/profiles'] : [])];
  const server = fork(here('./server-proc.ts'), [String(s.services), String(s.endpoints)], { execArgv });
  const clientsArgv = ['--import', 'tsx', '--max-old-space-size=4096', ...(profile ? ['--cpu-prof', '--cpu-prof-dir=.bench/profiles/clients'] : [])];
  const clients = fork(here('./clients-proc.ts'), [], { execArgv: clientsArgv });
  try {
    return await measure(s, server, clients);
  } finally {
    // A clean exit lets --cpu-prof write its profile; a child that does not leave in time is killed.
    const exited = new Promise((resolve) => server.once('exit', resolve));
    if (server.connected) toServer(server, { type: 'stop' });
    if (clients.connected) toClients(clients, { type: 'stop' });
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
    server.kill();
    clients.kill();
  }
}

async function measure(s: Scenario, server: ChildProcess, clients: ChildProcess): Promise<Record<string, unknown>> {
  const ready = await expect<ServerReport, 'ready'>(server, 'ready');
  const synced = expect<ClientReport, 'synced'>(clients, 'synced', 300_000);
  toClients(clients, { type: 'start', port: ready.port, proxies: s.proxies, mode: s.mode, namespaces: Math.max(1, Math.ceil(s.services / 100)) });
  const sync = await synced;
  const initialSyncMs = Math.round(sync.at - sync.startedAt);
  toServer(server, { type: 'stats' });
  const afterSync = await expect<ServerReport, 'stats'>(server, 'stats');
  if (heapSnapshot) {
    toServer(server, { type: 'heap-snapshot' });
    const { file } = await expect<{ type: 'heap-snapshot'; file: string }, 'heap-snapshot'>(server, 'heap-snapshot', 600_000);
    console.log(`heap snapshot after initial sync: ${file}`);
  }
  await new Promise((resolve) => setTimeout(resolve, 500));

  const endpoint = await converge(server, clients, 'endpoint', { type: 'endpoint', index: Math.floor(s.services / 2) + 1 });
  toServer(server, { type: 'stats' });
  const afterEndpoint = await expect<ServerReport, 'stats'>(server, 'stats');
  await new Promise((resolve) => setTimeout(resolve, 300));
  const canary = await converge(server, clients, 'canary', { type: 'canary', index: 0, marker: 'bench-canary-1' }, 'bench-canary-1');
  await new Promise((resolve) => setTimeout(resolve, 300));
  const burst = await converge(server, clients, 'burst', { type: 'burst', count: 100, overMs: 1000 });

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
    endpointChange: { ...endpoint, bytesSent: afterEndpoint.bytesSent - afterSync.bytesSent },
    virtualServiceChange: canary,
    burst100: burst,
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
  const conv = (x: Convergence): string => `${x.p50}/${x.p99}/${x.max}${x.missing > 0 ? ` (${x.missing} missing)` : ''}`;
  return [
    r['scenario'], r['mode'], r['initialSyncMs'], `${String(r['initialSyncCpuSeconds'])}/${String(r['initialSyncClientsCpuSeconds'])}`, r['floorMs'], r['syncOverFloor'],
    conv(c('endpointChange')), conv(c('virtualServiceChange')), conv(c('burst100')),
    r['peakRssMB'], r['cpuSeconds'], r['bytesSentMB'],
  ].join(' | ');
}

await mkdir('.bench', { recursive: true });
const results: Record<string, unknown>[] = [];
console.log('| scenario | mode | initial sync ms | sync CPU s meshpilot/clients | floor ms | sync/floor | endpoint p50/p99/max ms | VirtualService p50/p99/max ms | burst of 100 p50/p99/max ms | peak RSS MB | CPU s | sent MB |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const scenario of SCENARIOS) {
  if (only && !`${scenario.name} ${scenario.mode}`.includes(only)) continue;
  try {
    const result = await runScenario(scenario);
    results.push(result);
    console.log(`| ${row(result)} |`);
  } catch (error) {
    // Report the shortfall and go on with the next scenario.
    const message = error instanceof Error ? error.message : String(error);
    results.push({ scenario: scenario.name, mode: scenario.mode, proxies: scenario.proxies, error: message });
    console.log(`| ${scenario.name} | ${scenario.mode} | failed: ${message} |`);
  }
}
const file = `.bench/results${quick ? '-quick' : ''}.json`;
await writeFile(file, JSON.stringify({ at: new Date().toISOString(), node: process.version, results }, null, 2));
console.log(`\nwritten to ${file}`);
