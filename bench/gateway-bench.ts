// Gateway figures: what one gateway proxy costs with 1,000 HTTPRoutes on one Gateway listener
// (load and conversion, the push, generation and the bytes it is sent), and how many status
// writes the leader makes per minute while routes churn on the (fake) Kubernetes API.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { parseProxy } from '../src/model/proxy.ts';
import { buildPushContext } from '../src/model/push-context.ts';
import { loadDirectory } from '../src/sources/config-dir.ts';
import { renderForProxy } from '../src/xds/render.ts';
import { PUSH_ORDER, SHORT_TYPE } from '../src/xds/type-urls.ts';
import { startMeshpilotOnKube } from '../test/support/fake-kube-api-meshpilot.ts';
import { FakeKubeApi, GATEWAY_API_GATEWAY_CRDS, GATEWAY_API_ROUTE_CRDS, type KubeObject } from '../test/support/fake-kube-api.ts';

const GROUP = 'gateway.networking.k8s.io';
const GATEWAY_NODE = 'router~198.51.100.10~edge-0.infra~infra.svc.cluster.local';
const GATEWAY_LABELS = { 'gateway.networking.k8s.io/gateway-name': 'edge' };

export interface GatewayBenchResult {
  readonly routes: number;
  readonly loadMs: number;
  readonly pushMs: number;
  readonly generateMs: number;
  /** Encoded (protobuf) bytes the gateway proxy is sent, per short type. */
  readonly bytes: Readonly<Record<string, number>>;
  readonly resources: Readonly<Record<string, number>>;
  readonly churn: {
    readonly seconds: number;
    readonly routeChanges: number;
    readonly statusWrites: number;
    readonly writesPerMinute: number;
    readonly changesPerMinute: number;
  };
}

function gatewayObjects(): KubeObject[] {
  return [
    { apiVersion: `${GROUP}/v1`, kind: 'GatewayClass', metadata: { name: 'meshpilot' }, spec: { controllerName: 'meshpilot.io/gateway-controller' } },
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'infra' } },
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } },
    {
      apiVersion: `${GROUP}/v1`,
      kind: 'Gateway',
      metadata: { name: 'edge', namespace: 'infra', generation: 1 },
      spec: { gatewayClassName: 'meshpilot', listeners: [{ name: 'http', port: 8080, protocol: 'HTTP', allowedRoutes: { namespaces: { from: 'All' } } }] },
    },
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'edge-meshpilot', namespace: 'infra' }, spec: { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 8080 }] } },
  ];
}

function backend(i: number): KubeObject[] {
  const name = `svc-${String(i)}`;
  const ip = `10.244.${String(Math.floor(i / 250))}.${String((i % 250) + 1)}`;
  return [
    { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'shop' }, spec: { clusterIP: `10.96.${String(1 + Math.floor(i / 250))}.${String((i % 250) + 1)}`, selector: { app: name }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] } },
    {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: `${name}-x1`, namespace: 'shop', labels: { 'kubernetes.io/service-name': name } },
      addressType: 'IPv4',
      ports: [{ name: 'http', port: 8080 }],
      endpoints: [{ addresses: [ip], conditions: { ready: true } }],
    },
  ];
}

function httpRoute(i: number, prefix = '/'): KubeObject {
  return {
    apiVersion: `${GROUP}/v1`,
    kind: 'HTTPRoute',
    metadata: { name: `route-${String(i)}`, namespace: 'shop' },
    spec: {
      parentRefs: [{ name: 'edge', namespace: 'infra' }],
      hostnames: [`app-${String(i)}.example.com`],
      rules: [
        { matches: [{ path: { type: 'PathPrefix', value: `${prefix}api` } }], backendRefs: [{ name: `svc-${String(i)}`, port: 80, weight: 90 }, { name: `svc-${String((i + 1) % 1000)}`, port: 80, weight: 10 }] },
        { backendRefs: [{ name: `svc-${String(i)}`, port: 80 }] },
      ],
    },
  };
}

async function routesOnOneGateway(routes: number): Promise<Omit<GatewayBenchResult, 'churn'>> {
  const dir = await mkdtemp(join(tmpdir(), 'meshpilot-bench-gateway-'));
  try {
    const objects = [...gatewayObjects(), ...Array.from({ length: Math.max(routes, 2) }, (_, i) => backend(i)).flat(), ...Array.from({ length: routes }, (_, i) => httpRoute(i))];
    await writeFile(join(dir, 'mesh.yaml'), stringify({ apiVersion: 'v1', kind: 'List', items: objects }));
    let started = performance.now();
    const converted = await loadDirectory(dir);
    const loadMs = performance.now() - started;
    const rejected = converted.rejected.flatMap((r) => r.issues.filter((i) => i.severity === 'error').map((i) => `${r.object}: ${i.message}`));
    if (rejected.length > 0) throw new Error(`the benchmark's own objects were refused: ${rejected.slice(0, 3).join('; ')}`);
    started = performance.now();
    const push = buildPushContext(converted);
    const pushMs = performance.now() - started;
    const proxy = parseProxy(GATEWAY_NODE, { LABELS: GATEWAY_LABELS, NAMESPACE: 'infra' });
    started = performance.now();
    const rendered = renderForProxy(push, proxy);
    const generateMs = performance.now() - started;
    const bytes: Record<string, number> = {};
    const resources: Record<string, number> = {};
    for (const typeUrl of PUSH_ORDER) {
      const list = rendered[typeUrl];
      bytes[SHORT_TYPE[typeUrl]] = list.reduce((sum, r) => sum + r.bytes.length, 0);
      resources[SHORT_TYPE[typeUrl]] = list.length;
    }
    if ((resources['rds'] ?? 0) === 0) throw new Error('the gateway proxy was sent no routes: the benchmark does not measure what it says');
    return { routes, loadMs: Math.round(loadMs), pushMs: Math.round(pushMs), generateMs: Math.round(generateMs), bytes, resources };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Routes change one at a time (a new path, so a new generation) while the leader keeps status current. */
async function statusUnderChurn(seconds: number): Promise<GatewayBenchResult['churn']> {
  const api = await FakeKubeApi.start();
  const routes = 50;
  for (const crd of [...GATEWAY_API_ROUTE_CRDS, ...GATEWAY_API_GATEWAY_CRDS]) api.installCrd(crd);
  api.applyAll([...gatewayObjects(), ...Array.from({ length: routes }, (_, i) => backend(i)).flat(), ...Array.from({ length: routes }, (_, i) => httpRoute(i))]);
  const meshpilot = await startMeshpilotOnKube(api, { user: 'meshpilot-a' });
  try {
    const accepted = (): number => Array.from({ length: routes }, (_, i) => api.get('HTTPRoute', 'shop', `route-${String(i)}`)).filter((r) => (r?.['status'] as { parents?: unknown[] } | undefined)?.parents?.length).length;
    // Status is first written for every route before churn starts; those writes are not counted.
    const settleBy = Date.now() + 30_000;
    while (accepted() < routes && Date.now() < settleBy) await new Promise((resolve) => setTimeout(resolve, 100));
    if (accepted() < routes) throw new Error(`only ${String(accepted())} of ${String(routes)} routes got status before the churn`);
    const before = api.writesBy('meshpilot-a', '/status').length;
    const until = Date.now() + seconds * 1000;
    let changes = 0;
    while (Date.now() < until) {
      const i = changes % routes;
      api.apply(httpRoute(i, `/v${String(changes)}/`));
      changes++;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    // The last change's status lands within the writer's own pacing.
    const last = api.writesBy('meshpilot-a', '/status').length;
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const writes = Math.max(last, api.writesBy('meshpilot-a', '/status').length) - before;
    const perMinute = (n: number): number => Math.round((n / seconds) * 60);
    return { seconds, routeChanges: changes, statusWrites: writes, writesPerMinute: perMinute(writes), changesPerMinute: perMinute(changes) };
  } finally {
    await meshpilot.close();
    await api.close();
  }
}

export async function runGatewayBench(options: { quick: boolean }): Promise<GatewayBenchResult> {
  const routes = await routesOnOneGateway(options.quick ? 200 : 1000);
  const churn = await statusUnderChurn(options.quick ? 10 : 30);
  return { ...routes, churn };
}

export const GATEWAY_TABLE_HEADER = [
  '| HTTPRoutes on one listener | load + convert ms | push ms | generate ms | LDS/RDS/CDS/EDS KB (resources) | status writes per minute (route changes per minute) |',
  '|---|---|---|---|---|---|',
];

export function gatewayRow(r: GatewayBenchResult): string {
  const kb = (short: string): string => `${String(Math.round((r.bytes[short] ?? 0) / 102.4) / 10)} (${String(r.resources[short] ?? 0)})`;
  return `| ${String(r.routes)} | ${String(r.loadMs)} | ${String(r.pushMs)} | ${String(r.generateMs)} | ${['lds', 'rds', 'cds', 'eds'].map(kb).join(' / ')} | ${String(r.churn.writesPerMinute)} (${String(r.churn.changesPerMinute)}) |`;
}
