// BookInfo's reviews path with real sidecars: pods in network namespaces (netns.ts), Istio's
// capture, Envoy as uid 1337 in productpage and reviews-v2, plain applications elsewhere, and
// meshpilot serving the YAML directory on the bridge. Rules change by rewriting one file. With
// `identity`, ratings has a sidecar too and every sidecar holds a certificate (sidecar-identity.ts).
import assert from 'node:assert/strict';
import { rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { after, afterEach, before, it, type TestContext } from 'node:test';
import { TLS_MODE_LABEL } from '../../src/security/names.ts';
import { adsBootstrap, envoyBinary, envoyVersion, exactStat, LOOPBACK_DNS, requireEnvoy, startEnvoy, type RunningEnvoy } from './envoy.ts';
import { MeshDir, endpointSlice, eventually, pod, service, toYaml, type K8sObject } from './mesh-dir.ts';
import { startMeshpilot, type TestMeshpilot } from './meshpilot.ts';
import { MeshCa, sdsBootstrapFromCli, type ServiceAccountRef } from './sidecar-identity.ts';
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
  /**
   * Workload identities: each pod runs as its app's service account; productpage, reviews-v2 and
   * ratings have sidecars labelled with Istio's tlsMode, each with its own agent serving SDS
   * certificates from meshpilot's CA, and a bootstrap from `meshpilot bootstrap --sds`.
   */
  readonly identity?: boolean;
  /** Pods whose application calls out too, besides productpage's (a `PodClient` each). */
  readonly callers?: readonly string[];
}

const REVIEWS = ['reviews-v1', 'reviews-v2', 'reviews-v3'] as const;
/** Pods with a sidecar; reviews-v2's takes Delta xDS, the others SotW. */
const SIDECARS = ['productpage', 'reviews-v2'] as const;
const IDENTITY_SIDECARS = [...SIDECARS, 'ratings'] as const;

/** A pod's app (`reviews-v2`: `reviews`), which is also its service account's name. */
export function appOf(podName: string): string {
  return podName.replace(/-v\d+$/, '');
}

/** The labels of a pod's Pod object, which a sidecar without identities also sends as node metadata. */
function podLabels(podName: string): Record<string, string> {
  return { app: appOf(podName), version: /-(v\d+)$/.exec(podName)?.[1] ?? 'v1' };
}

function nodeId(p: Pod): string {
  return `sidecar~${p.ip}~${p.name}-0.${NS}~${NS}.svc.cluster.local`;
}

/** With identities, pods run as their service accounts, and sidecar pods carry Istio's tlsMode label (auto mTLS sends them mTLS). */
function withIdentity(object: K8sObject, sidecar: boolean): K8sObject {
  const metadata = object['metadata'] as { name: string; labels: Record<string, string> };
  return {
    ...object,
    metadata: { ...metadata, labels: { ...metadata.labels, ...(sidecar ? { [TLS_MODE_LABEL]: 'istio' } : {}) } },
    spec: { ...(object['spec'] as object), serviceAccountName: appOf(metadata.name.replace(/-0$/, '')) },
  };
}

function workloads(pods: Record<string, Pod>, sidecars: readonly string[] | undefined): K8sObject[] {
  const ip = (name: string): string => pods[name]?.ip ?? assert.fail(`no pod ${name}`);
  const http = { name: 'http', port: HTTP_PORT };
  const objects = [
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
  if (!sidecars) return objects;
  return objects.map((o) => (o['kind'] === 'Pod' ? withIdentity(o, sidecars.includes((o['metadata'] as { name: string }).name.replace(/-0$/, ''))) : o));
}

/** The running mesh; `close()` removes all of it. */
export class SidecarMesh {
  #rulesText = '';
  /** What start() started, stopped in reverse order by close(). */
  readonly #undo: readonly (() => Promise<void>)[];

  private constructor(
    readonly network: PodNetwork,
    readonly dir: MeshDir,
    readonly meshpilot: TestMeshpilot,
    readonly pods: Readonly<Record<string, Pod>>,
    readonly backends: Readonly<Record<string, PodBackend>>,
    /** Each sidecar pod's Envoy, by pod name. */
    readonly sidecars: Readonly<Record<string, RunningEnvoy>>,
    /** Each calling pod's application, by pod name. */
    readonly clients: Readonly<Record<string, PodClient>>,
    undo: readonly (() => Promise<void>)[],
  ) {
    this.#undo = undo;
  }

  static async start(options: SidecarMeshOptions = {}): Promise<SidecarMesh> {
    const network = await PodNetwork.create();
    const dir = await MeshDir.create();
    const undo: (() => Promise<void>)[] = [];
    try {
      const pods: Record<string, Pod> = {};
      for (const name of ['productpage', ...REVIEWS, 'ratings', 'cart']) pods[name] = await network.addPod(name);
      pods['external'] = await network.addExternalHost('external', EXTERNAL_IP);
      const sidecarNames: readonly string[] = options.identity ? IDENTITY_SIDECARS : SIDECARS;
      const podOf = (name: string): Pod => pods[name] ?? assert.fail(`no pod ${name}`);
      await Promise.all(sidecarNames.map((name) => network.captureLikeIstio(podOf(name))));
      const backendOf = (name: string, namespace: string, ports: { http: number[]; tcp?: number[] }) => PodBackend.start(network, podOf(name), namespace, ports);
      const callers = ['productpage', ...(options.callers ?? [])];
      // Applications start while meshpilot and the sidecars do, as a pod's containers do.
      const applications = Promise.all([
        Promise.all(callers.map(async (name) => [name, await PodClient.start(network, podOf(name))] as const)),
        Promise.all([
          ...REVIEWS.map((name) => backendOf(name, NS, { http: [HTTP_PORT], tcp: [TCP_PORT] })),
          backendOf('ratings', NS, { http: [HTTP_PORT] }),
          backendOf('cart', 'shop', { http: [HTTP_PORT] }),
          backendOf('external', 'external', { http: [80, 8081] }),
        ]),
      ]);
      // Awaited below; a failure before then is reported by the step that failed.
      applications.catch(() => undefined);

      await dir.write('workloads.yaml', workloads(pods, options.identity ? sidecarNames : undefined));
      await dir.write('rules.yaml', '');
      let meshConfigFile: string | undefined;
      if (options.meshConfig !== undefined) {
        meshConfigFile = join(dir.path, '.mesh-config.yaml');
        await writeFile(meshConfigFile, options.meshConfig);
      }
      const serve = { xdsHost: network.hostIp, ...(meshConfigFile ? { meshConfig: meshConfigFile } : {}) };
      let ca: MeshCa | undefined;
      let meshpilot: TestMeshpilot;
      if (options.identity) {
        const accounts: ServiceAccountRef[] = sidecarNames.map((name) => ({ namespace: NS, name: appOf(name) }));
        const started = await MeshCa.start(dir.path, serve, accounts);
        undo.push(() => started.close());
        ca = started;
        meshpilot = started.meshpilot;
      } else {
        const started = await startMeshpilot(dir.path, serve);
        undo.push(() => started.close());
        meshpilot = started;
      }
      const xdsAddress = `${network.hostIp}:${String(meshpilot.xdsPort)}`;

      const bootstrapOf = async (p: Pod, delta: boolean): Promise<Record<string, unknown>> => {
        if (!ca) {
          return adsBootstrap({ nodeId: nodeId(p), xdsHost: network.hostIp, xdsPort: meshpilot.xdsPort, delta, metadata: { NAMESPACE: NS, LABELS: podLabels(p.name) } });
        }
        const agent = await ca.agentFor(p, { namespace: NS, name: appOf(p.name) });
        undo.push(() => agent.close());
        return { ...(await sdsBootstrapFromCli({ nodeId: nodeId(p), xdsAddress, sdsSocket: agent.sdsSocket, delta })), ...LOOPBACK_DNS };
      };
      const envoyOf = async (name: string): Promise<[string, RunningEnvoy]> => {
        const p = podOf(name);
        const bootstrap = await bootstrapOf(p, name === 'reviews-v2');
        // Admin on the pod's address (excluded from capture), so the test can read its stats.
        bootstrap['admin'] = { address: { socket_address: { address: p.ip, port_value: PROXY_ADMIN_PORT } } };
        const envoy = await startEnvoy({
          bootstrap,
          netns: p.netns,
          uid: PROXY_UID,
          logLevel: process.env['MESHPILOT_ENVOY_LOG_LEVEL'] ?? 'warning',
          // Access log lines within 100 ms rather than Envoy's default 10 s.
          args: ['--file-flush-interval-msec', '100', ...(options.envoyArgs ?? [])],
        });
        undo.push(() => envoy.stop());
        return [name, envoy];
      };
      const [sidecars, [clients, started]] = await Promise.all([Promise.all(sidecarNames.map(envoyOf)), applications]);
      const backends = Object.fromEntries(started.map((b) => [b.name, b]));
      const mesh = new SidecarMesh(network, dir, meshpilot, pods, backends, Object.fromEntries(sidecars), Object.fromEntries(clients), undo);
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
    return Object.values(this.sidecars);
  }

  /** productpage's sidecar (SotW xDS), the one every outbound request goes through. */
  get productpageProxy(): RunningEnvoy {
    return this.proxy('productpage');
  }

  /** reviews-v2's sidecar (Delta xDS): requests to it arrive through virtualInbound. */
  get reviewsV2Proxy(): RunningEnvoy {
    return this.proxy('reviews-v2');
  }

  proxy(podName: string): RunningEnvoy {
    return this.sidecars[podName] ?? assert.fail(`no sidecar in ${podName}`);
  }

  /** productpage's application. */
  get client(): PodClient {
    return this.clientIn('productpage');
  }

  clientIn(podName: string): PodClient {
    return this.clients[podName] ?? assert.fail(`no calling application in ${podName} (SidecarMeshOptions.callers)`);
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

  /**
   * Connections opened before a listener change keep the filter chain they were accepted with
   * until Envoy has drained them (Istio's agent runs Envoy with the immediate drain strategy).
   */
  async oldConnectionsDrained(proxy: RunningEnvoy): Promise<void> {
    const gauge = 'listener_manager.total_filter_chains_draining';
    await eventually(async () => ((await proxy.stats({ filter: exactStat(gauge) })).get(gauge) === 0 ? true : undefined), 10_000, 'old filter chains drained');
  }

  async close(): Promise<void> {
    for (const step of [...this.#undo].reverse()) await step();
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
