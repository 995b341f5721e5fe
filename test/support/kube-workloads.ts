// What a cluster's controllers and kubelet do for workloads, on a FakeKubeApi: Deployments get
// their Pods, each Pod a network namespace running its container's command, Ready once the
// process listens; Services get a cluster IP and EndpointSlices of their ready Pods. Containers
// run from a map of image to local binary; secret volumes are files the env paths point at.
import { ReconcileLoop } from './reconcile-loop.ts';
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { FakeKubeApi, KubeObject } from './fake-kube-api.ts';
import type { ClusterDns } from './cluster-dns.ts';
import type { Pod, PodNetwork, PodProcess } from './netns.ts';

const run = promisify(execFile);

type Fields = Record<string, unknown>;
const fields = (value: unknown): Fields => (typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Fields) : {});
const list = (value: unknown): Fields[] => (Array.isArray(value) ? value.map(fields) : []);
const text = (value: unknown): string => (typeof value === 'string' ? value : '');
const nameOf = (object: KubeObject): string => text(fields(object.metadata)['name']);
const namespaceOf = (object: KubeObject): string => text(fields(object.metadata)['namespace']);
const labelsOf = (object: KubeObject): Record<string, string> => fields(fields(object.metadata)['labels']) as Record<string, string>;

/**
 * How an image runs here: a local binary (with the files the image carries, by their path in the
 * image, and the commands an exec may run in it), or nothing (the Pod is reported running without
 * a process).
 */
export type ImageRunner =
  | { readonly binary: string; readonly files?: Readonly<Record<string, string>>; readonly commands?: Readonly<Record<string, string>> }
  | { readonly none: string };

/** A sidecar an injector started in a pod (Ready only once it is); stopped before the pod goes. */
export interface Sidecar {
  /** Its proxy's node id. */
  readonly nodeId: string;
  stop(): Promise<void>;
}

export interface KubeWorkloadsOptions {
  /** The cluster's DNS: each pod resolves with it (Kubernetes' search path for its namespace). */
  readonly dns?: ClusterDns;
  /** Starts a sidecar in a pod whose container listens, or returns undefined for a pod without one. */
  readonly inject?: (pod: RunningPod, object: KubeObject) => Promise<Sidecar | undefined>;
}

/** What `kubectl exec` returns. */
export interface ExecResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number;
}

export interface RunningPod {
  readonly name: string;
  readonly namespace: string;
  readonly ip: string;
  readonly process?: PodProcess;
  /** Its container's stdout and stderr lines, with when each came (what `kubectl logs` reads). */
  readonly log: { readonly at: Date; readonly line: string }[];
  /** Its network namespace. */
  readonly netns: Pod;
  readonly image: ImageRunner;
  sidecar?: Sidecar;
}

/** The rules of a selector (matchLabels only, as Deployments and Services here use). */
function selects(selector: Record<string, string>, labels: Record<string, string>): boolean {
  const entries = Object.entries(selector);
  return entries.length > 0 && entries.every(([key, value]) => labels[key] === value);
}

function shortHash(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 10);
}

/** Whether anything in the namespace listens on TCP (`ss` inside it). */
async function listening(netns: string): Promise<boolean> {
  const { stdout } = await run('ip', ['netns', 'exec', netns, 'ss', '-Hltn']).catch(() => ({ stdout: '' }));
  return stdout.trim() !== '';
}

export class KubeWorkloads {
  readonly pods = new Map<string, RunningPod>();
  readonly #starting = new Set<string>();
  /** Service VIPs in use, by `namespace/name`. */
  readonly #vips = new Map<string, string>();
  #dir = '';
  readonly #loop = new ReconcileLoop('kubelet', () => this.#reconcile());
  readonly #unsubscribe: () => void;

  private constructor(
    readonly api: FakeKubeApi,
    readonly network: PodNetwork,
    readonly images: (image: string) => ImageRunner,
    readonly options: KubeWorkloadsOptions,
  ) {
    this.#unsubscribe = api.subscribe((event) => {
      if (['Deployment', 'Service', 'Pod', 'Secret', 'Namespace'].includes(event.kind)) this.poke();
    });
  }

  static async start(api: FakeKubeApi, network: PodNetwork, images: (image: string) => ImageRunner, options: KubeWorkloadsOptions = {}): Promise<KubeWorkloads> {
    const workloads = new KubeWorkloads(api, network, images, options);
    workloads.#dir = await mkdtemp(join(tmpdir(), 'meshpilot-kubelet-'));
    api.serveLogs((namespace, name, since) => {
      const pod = workloads.pods.get(`${namespace}/${name}`);
      return pod?.log.filter((entry) => since === undefined || entry.at >= since).map((entry) => `${entry.line}\n`).join('');
    });
    api.serveExec((request) => workloads.exec(request.namespace, request.pod, request.command));
    workloads.poke();
    return workloads;
  }

  /** Schedules a reconcile of everything (coalesced; one at a time). */
  poke(): void {
    this.#loop.poke();
  }

  /**
   * `kubectl exec`: runs a command the pod's image has (its `commands`) inside the pod, as its
   * container does (its network namespace, its resolv.conf, its hostname), to the end.
   */
  async exec(namespace: string, name: string, command: readonly string[]): Promise<ExecResult> {
    const pod = this.pods.get(`${namespace}/${name}`);
    if (!pod) throw new Error(`pod ${namespace}/${name} is not running`);
    const [program = '', ...args] = command;
    const binary = 'binary' in pod.image ? pod.image.commands?.[program] : undefined;
    // What the container runtime answers, which the API server reports as the exec's error.
    if (binary === undefined) throw new Error(`exec: "${program}": executable file not found in $PATH`);
    const child = this.network.spawn(pod.netns, 'unshare', withHostname(name, binary, args));
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.child.stdout?.on('data', (chunk: Buffer) => out.push(chunk));
    child.child.stderr?.on('data', (chunk: Buffer) => err.push(chunk));
    child.child.stdin?.end();
    const exitCode = await new Promise<number>((resolve) => child.child.once('close', (code) => { resolve(code ?? 137); }));
    return { stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), exitCode };
  }

  async close(): Promise<void> {
    this.#unsubscribe();
    await this.#loop.stop();
    for (const pod of this.pods.values()) await pod.sidecar?.stop();
    await rm(this.#dir, { recursive: true, force: true });
  }

  async #reconcile(): Promise<void> {
    this.#deployments();
    await this.#kubelet();
    this.#services();
  }

  /** The Deployment controller: `replicas` Pods per Deployment, named by its template's hash; others go. */
  #deployments(): void {
    const wanted = new Set<string>();
    for (const deployment of this.api.list('Deployment')) {
      const spec = fields(deployment['spec']);
      const template = fields(spec['template']);
      const hash = shortHash(template);
      const replicas = typeof spec['replicas'] === 'number' ? spec['replicas'] : 1;
      const namespace = namespaceOf(deployment);
      for (let i = 0; i < replicas; i++) {
        const name = `${nameOf(deployment)}-${hash}-${String(i)}`;
        wanted.add(`${namespace}/${name}`);
        if (this.api.get('Pod', namespace, name)) continue;
        const meta = fields(template['metadata']);
        this.api.apply({
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: {
            name,
            namespace,
            labels: { ...(fields(meta['labels']) as Record<string, string>), 'pod-template-hash': hash },
            ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: nameOf(deployment), uid: fields(deployment.metadata)['uid'], controller: true }],
          },
          spec: { ...fields(template['spec']), nodeName: 'conformance-node' },
          status: { phase: 'Pending' },
        });
      }
      const ready = this.api.list('Pod', namespace).filter((pod) => wanted.has(`${namespace}/${nameOf(pod)}`) && podReady(pod) && nameOf(pod).startsWith(`${nameOf(deployment)}-${hash}-`)).length;
      const status = { observedGeneration: fields(deployment.metadata)['generation'] ?? 1, replicas, readyReplicas: ready, availableReplicas: ready, updatedReplicas: replicas };
      if (JSON.stringify(deployment['status']) !== JSON.stringify(status)) this.api.apply({ ...deployment, status });
    }
    // Pods a Deployment owns that it no longer wants (scaled down, template changed, Deployment gone).
    for (const pod of this.api.list('Pod')) {
      const owner = list(fields(pod.metadata)['ownerReferences']).find((ref) => ref['kind'] === 'Deployment');
      if (owner && !wanted.has(`${namespaceOf(pod)}/${nameOf(pod)}`)) this.api.delete('Pod', namespaceOf(pod), nameOf(pod));
    }
  }

  /** The kubelet: a network namespace and the container's process per Pod it runs; Pods gone are stopped. */
  async #kubelet(): Promise<void> {
    const present = new Set(this.api.list('Pod').filter((pod) => text(fields(pod['spec'])['nodeName']) === 'conformance-node').map((pod) => `${namespaceOf(pod)}/${nameOf(pod)}`));
    for (const [key, running] of [...this.pods]) {
      if (present.has(key)) continue;
      this.pods.delete(key);
      await running.sidecar?.stop();
      await this.network.removePod(podNetnsName(running.namespace, running.name));
    }
    const starts: Promise<void>[] = [];
    for (const pod of this.api.list('Pod')) {
      const key = `${namespaceOf(pod)}/${nameOf(pod)}`;
      if (text(fields(pod['spec'])['nodeName']) !== 'conformance-node' || this.pods.has(key) || this.#starting.has(key)) continue;
      const volumes = this.#secretVolumes(pod);
      if (!volumes) continue;
      this.#starting.add(key);
      starts.push(
        this.#startPod(pod, volumes)
          .catch((error: unknown) => {
            process.stderr.write(`kubelet: pod ${key}: ${error instanceof Error ? error.message : String(error)}\n`);
          })
          .finally(() => this.#starting.delete(key)),
      );
    }
    // Pods become Ready in the background; each Ready status write pokes the controllers again.
    void Promise.all(starts);
  }

  /** Secret volumes by name -> their Secret's data, or undefined while one is missing (ContainerCreating). */
  #secretVolumes(pod: KubeObject): Map<string, Fields> | undefined {
    const volumes = new Map<string, Fields>();
    for (const volume of list(fields(pod['spec'])['volumes'])) {
      const secret = fields(volume['secret']);
      if (!secret['secretName']) continue;
      const object = this.api.get('Secret', namespaceOf(pod), text(secret['secretName']));
      if (!object) return undefined;
      const data = fields(object['data']);
      const items = list(secret['items']);
      const files: Fields = {};
      if (items.length === 0) for (const [key, value] of Object.entries(data)) files[key] = value;
      for (const item of items) files[text(item['path'])] = data[text(item['key'])];
      volumes.set(text(volume['name']), files);
    }
    return volumes;
  }

  async #startPod(pod: KubeObject, volumes: Map<string, Fields>): Promise<void> {
    const name = nameOf(pod);
    const namespace = namespaceOf(pod);
    const dns = this.options.dns;
    const netnsPod = await this.network.addPod(podNetnsName(namespace, name), dns ? { resolvConf: dns.resolvConf(namespace) } : {});
    const container = list(fields(pod['spec'])['containers'])[0] ?? {};
    const runner = this.images(text(container['image']));
    let process: PodProcess | undefined;
    const log: RunningPod['log'] = [];
    if ('binary' in runner) {
      // Secret volumes: the files under a directory of ours; env values under a mountPath point there.
      const mounts: [string, string][] = [];
      for (const mount of list(container['volumeMounts'])) {
        const files = volumes.get(text(mount['name']));
        if (!files) continue;
        const dir = join(this.#dir, namespace, name, text(mount['name']));
        await mkdir(dir, { recursive: true });
        for (const [file, base64] of Object.entries(files)) await writeFile(join(dir, file), Buffer.from(text(base64), 'base64'));
        mounts.push([text(mount['mountPath']), dir]);
      }
      const env: Record<string, string> = { PATH: globalThis.process.env['PATH'] ?? '/usr/bin:/bin' };
      for (const variable of list(container['env'])) {
        const fieldPath = text(fields(fields(variable['valueFrom'])['fieldRef'])['fieldPath']);
        let value = fieldPath === 'metadata.name' ? name : fieldPath === 'metadata.namespace' ? namespace : fieldPath === 'status.podIP' ? netnsPod.ip : text(variable['value']);
        for (const [mountPath, dir] of mounts) if (value.startsWith(`${mountPath}/`)) value = join(dir, value.slice(mountPath.length + 1));
        env[text(variable['name'])] = value;
      }
      // Files the image carries, named in arguments (`--crt=/cert.crt`), are the runner's.
      const imageFile = (arg: string): string => {
        for (const [path, local] of Object.entries(runner.files ?? {})) {
          if (arg === path) return local;
          if (arg.endsWith(`=${path}`)) return `${arg.slice(0, -path.length)}${local}`;
        }
        return arg;
      };
      const args = Array.isArray(container['args']) ? container['args'].map(text).map(imageFile) : [];
      process = this.network.spawn(netnsPod, 'unshare', withHostname(name, runner.binary, args), { env });
      for (const stream of [process.child.stdout, process.child.stderr]) {
        let partial = '';
        stream?.setEncoding('utf8').on('data', (chunk: string) => {
          const lines = (partial + chunk).split('\n');
          partial = lines.pop() ?? '';
          for (const line of lines) log.push({ at: new Date(), line });
          // A pod's log is kept to its last 2000 lines, as a rotated container log would be.
          if (log.length > 2000) log.splice(0, log.length - 2000);
        });
      }
      while (!(await listening(netnsPod.netns))) {
        if (process.child.exitCode !== null) throw new Error(`container exited (${String(process.child.exitCode)}): ${process.output()}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    const running: RunningPod = { name, namespace, ip: netnsPod.ip, log, netns: netnsPod, image: runner, ...(process ? { process } : {}) };
    // The sidecar starts once the application listens, and the Pod is Ready once the sidecar is.
    const sidecar = await this.options.inject?.(running, pod);
    if (sidecar) running.sidecar = sidecar;
    this.pods.set(`${namespace}/${name}`, running);
    const current = this.api.get('Pod', namespace, name);
    if (!current) return;
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const reason = 'none' in runner ? { message: runner.none } : {};
    this.api.apply({
      ...current,
      status: {
        phase: 'Running',
        hostIP: this.network.hostIp,
        podIP: netnsPod.ip,
        podIPs: [{ ip: netnsPod.ip }],
        startTime: now,
        ...reason,
        conditions: ['Initialized', 'PodScheduled', 'ContainersReady', 'Ready'].map((type) => ({ type, status: 'True', lastTransitionTime: now })),
      },
    });
  }

  /** A free Service VIP of SERVICE_RANGE (the host routes it onto the pods' bridge, where nothing answers). */
  #allocateVip(key: string): string {
    const used = new Set(this.#vips.values());
    for (let host = 1; host < 127; host++) {
      const ip = `203.0.113.${String(128 + host)}`;
      if (used.has(ip)) continue;
      this.#vips.set(key, ip);
      return ip;
    }
    throw new Error(`no Service VIP left in ${SERVICE_RANGE}`);
  }

  /** The Service IP allocator and the EndpointSlice controller. */
  #services(): void {
    const services = new Set(this.api.list('Service').map((service) => `${namespaceOf(service)}/${nameOf(service)}`));
    for (const key of [...this.#vips.keys()]) if (!services.has(key)) this.#vips.delete(key);
    for (const service of this.api.list('Service')) {
      const namespace = namespaceOf(service);
      const spec = fields(service['spec']);
      if (spec['clusterIP'] === undefined && spec['type'] !== 'ExternalName') {
        const ip = this.#allocateVip(`${namespace}/${nameOf(service)}`);
        this.api.apply({ ...service, spec: { ...spec, clusterIP: ip, clusterIPs: [ip] } });
      }
      const selector = fields(spec['selector']) as Record<string, string>;
      if (Object.keys(selector).length === 0) continue;
      const ready = this.api.list('Pod', namespace).filter((pod) => selects(selector, labelsOf(pod)) && podReady(pod));
      const ports = list(spec['ports']).map((port) => ({
        ...(port['name'] !== undefined ? { name: port['name'] } : { name: '' }),
        port: typeof port['targetPort'] === 'number' ? port['targetPort'] : Number(port['targetPort'] ?? port['port']),
        protocol: port['protocol'] ?? 'TCP',
        ...(port['appProtocol'] !== undefined ? { appProtocol: port['appProtocol'] } : {}),
      }));
      const slice = {
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: { name: `${nameOf(service)}-slice`, namespace, labels: { 'kubernetes.io/service-name': nameOf(service), 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' } },
        addressType: 'IPv4',
        endpoints: ready.map((pod) => ({
          addresses: [text(fields(pod['status'])['podIP'])],
          conditions: { ready: true, serving: true, terminating: false },
          nodeName: 'conformance-node',
          targetRef: { kind: 'Pod', name: nameOf(pod), namespace },
        })),
        ports,
      };
      const existing = this.api.get('EndpointSlice', namespace, slice.metadata.name);
      const same = existing && JSON.stringify([existing['endpoints'], existing['ports']]) === JSON.stringify([slice.endpoints, slice.ports]);
      if (!same) this.api.apply(slice);
    }
    // Slices of Services that are gone.
    for (const slice of this.api.list('EndpointSlice')) {
      const owner = labelsOf(slice)['kubernetes.io/service-name'];
      if (owner !== undefined && !this.api.get('Service', namespaceOf(slice), owner)) this.api.delete('EndpointSlice', namespaceOf(slice), nameOf(slice));
    }
  }
}

/** `unshare` arguments running `binary args` with the pod's name as hostname, as a container has it (its own UTS namespace). */
function withHostname(podName: string, binary: string, args: readonly string[]): string[] {
  return ['--uts', '--', 'sh', '-c', 'hostname "$0" && exec "$@"', podName, binary, ...args];
}

/** Where Service VIPs come from: on-link on the pods' bridge, so a packet to one from anywhere here goes nowhere. */
export const SERVICE_RANGE = '203.0.113.128/25';

export function podReady(pod: KubeObject): boolean {
  return list(fields(pod['status'])['conditions']).some((c) => c['type'] === 'Ready' && c['status'] === 'True');
}

/** A network-namespace-safe pod name (netns names are short): a hash of namespace and name. */
export function podNetnsName(namespace: string, name: string): string {
  return `k${createHash('sha256').update(`${namespace}/${name}`).digest('hex').slice(0, 8)}`;
}
