// BookInfo's reviews path with real sidecars: pods in network namespaces (netns.ts), Istio's
// capture, Envoy as uid 1337 in productpage and reviews-v2, plain applications elsewhere, and
// meshpilot serving the YAML directory on the bridge. Rules change by rewriting one file.
import assert from 'node:assert/strict';
import { rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { after, afterEach, before, it, type TestContext } from 'node:test';
import { adsBootstrap, envoyBinary, envoyVersion, requireEnvoy, startEnvoy, type RunningEnvoy } from './envoy.ts';
import { MeshDir, endpointSlice, eventually, pod, service, toYaml, type K8sObject } from './mesh-dir.ts';
import { startMeshpilot, type TestMeshpilot } from './meshpilot.ts';
import { PROXY_ADMIN_PORT, PROXY_UID, PodNetwork, netnsUnsupported, requireNetns, type Pod } from './netns.ts';
import { PodBackend, PodClient } from './pod-apps.ts';
import type { HttpBatch, HttpResult } from './pod-client.ts';
import { recordInterop, recordInteropVersion, type InteropRule } from './interop-results.ts';

export const NS = 'default';
/** Service VIPs (203.0.113.0/26, owned by no interface: only a sidecar's capture answers them). */
export const VIP = { productpage: '203.0.113.10', reviews: '203.0.113.11', ratings: '203.0.113.12', tcpEcho: '203.0.113.13', cart: '203.0.113.20' } as const;
export const EXTERNAL_IP = '203.0.113.70';
export const HTTP_PORT = 9080;
export const TCP_PORT = 9000;

export interface SidecarMeshOptions {
  /** Istio MeshConfig (YAML text) given to meshpilot with `--mesh-config`. */
  readonly meshConfig?: string;
  /** More Envoy command-line flags for every sidecar (e.g. a short `--drain-time-s`). */
  readonly envoyArgs?: readonly string[];
}

const REVIEWS = ['reviews-v1', 'reviews-v2', 'reviews-v3'] as const;

function nodeId(p: Pod): string {
  return `sidecar~${p.ip}~${p.name}-0.${NS}~${NS}.svc.cluster.local`;
}

function workloads(pods: Record<string, Pod>): K8sObject[] {
  const ip = (name: string): string => pods[name]?.ip ?? assert.fail(`no pod ${name}`);
  const http = { name: 'http', port: HTTP_PORT };
  return [
    service('productpage', NS, [{ ...http, targetPort: HTTP_PORT }], VIP.productpage),
    service('reviews', NS, [{ ...http, targetPort: HTTP_PORT }], VIP.reviews),
    service('ratings', NS, [{ ...http, targetPort: HTTP_PORT }], VIP.ratings),
    service('tcp-echo', NS, [{ name: 'tcp', port: TCP_PORT, targetPort: TCP_PORT }], VIP.tcpEcho),
    service('cart', 'shop', [{ ...http, targetPort: HTTP_PORT }], VIP.cart),
    pod('productpage-0', NS, ip('productpage'), { app: 'productpage', version: 'v1' }),
    ...REVIEWS.map((name) => pod(`${name}-0`, NS, ip(name), { app: 'reviews', version: name.slice('reviews-'.length) })),
    pod('ratings-0', NS, ip('ratings'), { app: 'ratings', version: 'v1' }),
    pod('cart-0', 'shop', ip('cart'), { app: 'cart', version: 'v1' }),
    endpointSlice('productpage', NS, http, [{ name: 'productpage-0', ip: ip('productpage') }]),
    endpointSlice('reviews', NS, http, REVIEWS.map((name) => ({ name: `${name}-0`, ip: ip(name) }))),
    endpointSlice('ratings', NS, http, [{ name: 'ratings-0', ip: ip('ratings') }]),
    endpointSlice('tcp-echo', NS, { name: 'tcp', port: TCP_PORT }, REVIEWS.map((name) => ({ name: `${name}-0`, ip: ip(name) }))),
    endpointSlice('cart', 'shop', http, [{ name: 'cart-0', ip: ip('cart') }]),
  ];
}

/** The running mesh; `close()` removes all of it. */
export class SidecarMesh {
  #rulesText = '';

  private constructor(
    readonly network: PodNetwork,
    readonly dir: MeshDir,
    readonly meshpilot: TestMeshpilot,
    readonly pods: Readonly<Record<string, Pod>>,
    readonly backends: Readonly<Record<string, PodBackend>>,
    /** productpage's sidecar (SotW xDS), the one every outbound request goes through. */
    readonly productpageProxy: RunningEnvoy,
    /** reviews-v2's sidecar (Delta xDS): requests to it arrive through virtualInbound. */
    readonly reviewsV2Proxy: RunningEnvoy,
    readonly client: PodClient,
  ) {}

  static async start(options: SidecarMeshOptions = {}): Promise<SidecarMesh> {
    const network = await PodNetwork.create();
    const dir = await MeshDir.create();
    const undo: (() => Promise<void>)[] = [];
    try {
      const pods: Record<string, Pod> = {};
      for (const name of ['productpage', ...REVIEWS, 'ratings', 'cart']) pods[name] = await network.addPod(name);
      pods['external'] = await network.addExternalHost('external', EXTERNAL_IP);
      const sidecars = [pods['productpage'], pods['reviews-v2']].filter((p) => p !== undefined);
      await Promise.all(sidecars.map((p) => network.captureLikeIstio(p)));

      await dir.write('workloads.yaml', workloads(pods));
      await dir.write('rules.yaml', '');
      let meshConfigFile: string | undefined;
      if (options.meshConfig !== undefined) {
        meshConfigFile = join(dir.path, '.mesh-config.yaml');
        await writeFile(meshConfigFile, options.meshConfig);
      }
      const meshpilot = await startMeshpilot(dir.path, { xdsHost: network.hostIp, ...(meshConfigFile ? { meshConfig: meshConfigFile } : {}) });
      undo.push(() => meshpilot.close());

      const backendOf = (name: string, namespace: string, ports: { http: number[]; tcp?: number[] }) => {
        const p = pods[name] ?? assert.fail(`no pod ${name}`);
        return PodBackend.start(network, p, namespace, ports);
      };
      const envoyOf = (p: Pod, labels: Record<string, string>, delta: boolean) => {
        const bootstrap = adsBootstrap({ nodeId: nodeId(p), xdsHost: network.hostIp, xdsPort: meshpilot.xdsPort, adminHost: p.ip, delta, metadata: { NAMESPACE: NS, LABELS: labels } });
        (bootstrap['admin'] as { address: { socket_address: { port_value: number } } }).address.socket_address.port_value = PROXY_ADMIN_PORT;
        return startEnvoy({
          bootstrap,
          netns: p.netns,
          uid: PROXY_UID,
          logLevel: process.env['MESHPILOT_ENVOY_LOG_LEVEL'] ?? 'warning',
          // Access log lines within 100 ms rather than Envoy's default 10 s.
          args: ['--file-flush-interval-msec', '100', ...(options.envoyArgs ?? [])],
        }).then((envoy) => {
          undo.push(() => envoy.stop());
          return envoy;
        });
      };
      // Applications and sidecars start side by side, as a pod's containers do.
      const [productpageProxy, reviewsV2Proxy, client, started] = await Promise.all([
        envoyOf(pods['productpage'] ?? assert.fail(), { app: 'productpage', version: 'v1' }, false),
        // One sidecar on each xDS variant: every rule change reaches a SotW and a Delta Envoy.
        envoyOf(pods['reviews-v2'] ?? assert.fail(), { app: 'reviews', version: 'v2' }, true),
        PodClient.start(network, pods['productpage'] ?? assert.fail()),
        Promise.all([
          ...REVIEWS.map((name) => backendOf(name, NS, { http: [HTTP_PORT], tcp: [TCP_PORT] })),
          backendOf('ratings', NS, { http: [HTTP_PORT] }),
          backendOf('cart', 'shop', { http: [HTTP_PORT] }),
          backendOf('external', 'external', { http: [80, 8081] }),
        ]),
      ]);
      const backends = Object.fromEntries(started.map((b) => [b.name, b]));
      const mesh = new SidecarMesh(network, dir, meshpilot, pods, backends, productpageProxy, reviewsV2Proxy, client);
      await mesh.waitSynced();
      for (const proxy of mesh.proxies) await proxy.waitForStat('listener_manager.total_listeners_active', 3);
      return mesh;
    } catch (error) {
      for (const step of undo.reverse()) await step();
      await network.close();
      await dir.remove();
      throw error;
    }
  }

  get proxies(): RunningEnvoy[] {
    return [this.productpageProxy, this.reviewsV2Proxy];
  }

  backend(name: string): PodBackend {
    return this.backends[name] ?? assert.fail(`no backend ${name}`);
  }

  pod(name: string): Pod {
    return this.pods[name] ?? assert.fail(`no pod ${name}`);
  }

  /**
   * Replaces the rules file (renamed into place: one change) and returns once meshpilot has
   * pushed it and every Envoy has ACKed everything it was sent.
   */
  async applyRules(objects: K8sObject[]): Promise<void> {
    const text = toYaml(objects);
    if (text === this.#rulesText) return;
    this.#rulesText = text;
    const before = this.meshpilot.pushController.lastPush()?.sequence ?? 0;
    const file = join(this.dir.path, 'rules.yaml');
    if (objects.length === 0) {
      // Deleting the file is how its objects are removed (an emptied file keeps its last good objects).
      await rm(file, { force: true });
    } else {
      const temp = join(this.dir.path, '.rules.yaml.next');
      await writeFile(temp, text);
      await rename(temp, file);
    }
    await eventually(() => ((this.meshpilot.pushController.lastPush()?.sequence ?? 0) > before ? true : undefined), 10_000, 'the push of the new rules');
    await this.waitSynced();
  }

  /** Every connected Envoy has nothing pending and has ACKed every type it was last sent. */
  async waitSynced(): Promise<void> {
    let last = '';
    try {
      await eventually(async () => {
        const connections = this.meshpilot.adsServer.connections();
        const pending = connections.filter((c) => c.pendingTypes().length > 0).map((c) => c.proxy?.id ?? c.id);
        const body = (await (await this.meshpilot.admin('/debug/syncz')).json()) as { proxies: { proxy: string; types: Record<string, { status: string }> }[] };
        const notSynced = body.proxies.flatMap((p) => Object.entries(p.types).filter(([, s]) => s.status !== 'SYNCED').map(([t, s]) => `${p.proxy} ${t} ${s.status}`));
        last = `${body.proxies.length} proxies, pending: [${pending.join(', ')}], not synced: [${notSynced.join('; ')}]`;
        if (notSynced.some((s) => s.endsWith('ERROR'))) assert.fail(`an Envoy rejected its config: ${notSynced.join('; ')}`);
        return body.proxies.length >= this.proxies.length && pending.length === 0 && notSynced.length === 0 ? true : undefined;
      }, 15_000, 'every Envoy SYNCED in /debug/syncz');
    } catch (error) {
      throw new Error(`${(error as Error).message}: ${last}\n${this.proxies.map((p) => p.log.slice(-2000)).join('\n')}`, { cause: error });
    }
  }

  /** Requests from productpage's application through its sidecar. */
  call(batch: Omit<HttpBatch, 'address' | 'port' | 'host'> & Partial<Pick<HttpBatch, 'address' | 'port' | 'host'>>): Promise<HttpResult[]> {
    return this.client.http({ address: VIP.reviews, port: HTTP_PORT, host: `reviews:${HTTP_PORT}`, ...batch });
  }

  /** The one request of `call`, with its result. */
  async callOnce(batch: Parameters<SidecarMesh['call']>[0] = {}): Promise<HttpResult> {
    const [result] = await this.call({ ...batch, count: 1 });
    return result ?? assert.fail('no result');
  }

  /** No Envoy has rejected anything it was sent. */
  async assertNothingRejected(): Promise<void> {
    for (const proxy of this.proxies) assert.deepEqual(await proxy.rejectedUpdates(), {}, `rejected updates on ${proxy.adminUrl}`);
  }

  async close(): Promise<void> {
    await Promise.all(this.proxies.map((p) => p.stop()));
    await this.meshpilot.close();
    await this.network.close();
    await this.dir.remove();
  }
}

/**
 * One mesh for a test file's suite: started before its tests when Envoy is installed, checked
 * for rejected updates after each, removed after all. Each test asks for it with its context
 * (skipped without Envoy or without root and iproute2/iptables, except in CI, where that fails).
 */
export function useSidecarMesh(options: SidecarMeshOptions = {}): (t: TestContext) => Promise<SidecarMesh | undefined> {
  let mesh: SidecarMesh | undefined;
  before(async () => {
    const bin = await envoyBinary();
    if (bin && (await netnsUnsupported()) === undefined) {
      mesh = await SidecarMesh.start(options);
      recordInteropVersion('envoy', await envoyVersion(bin));
    }
  });
  after(async () => {
    await mesh?.close();
  });
  afterEach(async () => {
    if (!mesh) return;
    await mesh.assertNothingRejected();
    recordInterop('no-nack', 'envoy', 'pass');
  });
  return async (t) => {
    if (!(await requireEnvoy(t)) || !(await requireNetns(t))) return undefined;
    // Envoy and pods are available, so a mesh that did not start is a failure, never a silent pass.
    if (!mesh) throw new Error('the sidecar mesh did not start');
    return mesh;
  };
}

/** A table row: the rules in force, and what a user then sees. */
export interface RuleRow {
  readonly name: string;
  readonly rules: K8sObject[];
  readonly check: (mesh: SidecarMesh) => Promise<void>;
  /** The interop table's row this proves for Envoy, with a note where Envoy's form differs. */
  readonly interop?: InteropRule;
  readonly interopNote?: string;
}

/** Each row as a test: its rules written and ACKed by every Envoy, then its checks. */
export function testRows(meshFor: (t: TestContext) => Promise<SidecarMesh | undefined>, rows: readonly RuleRow[]): void {
  for (const row of rows) {
    it(row.name, async (t) => {
      const mesh = await meshFor(t);
      if (!mesh) return;
      await mesh.applyRules(row.rules);
      await row.check(mesh);
      await mesh.assertNothingRejected();
      if (row.interop) recordInterop(row.interop, 'envoy', 'pass', row.interopNote);
    });
  }
}

/** Which backend answered each request (`x-served-by`), counted. */
export function servedBy(results: readonly HttpResult[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of results) {
    const by = r.headers?.['x-served-by'] ?? (r.error ? `error:${r.error}` : `status:${String(r.status)}`);
    counts[by] = (counts[by] ?? 0) + 1;
  }
  return counts;
}

/** Statuses (or connection errors) of the results, counted. */
export function statuses(results: readonly HttpResult[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of results) {
    const key = r.error ?? String(r.status);
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

export function meshConfigYaml(mesh: Record<string, unknown>): string {
  return stringify(mesh);
}
