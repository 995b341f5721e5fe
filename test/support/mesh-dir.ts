// Writes a Kubernetes-shaped config directory (what `kubectl get -o yaml` would show) for tests.
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { stringify } from 'yaml';

export type K8sObject = Record<string, unknown>;

export function service(name: string, namespace: string, ports: { name: string; port: number; targetPort: number }[], clusterIP: string): K8sObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace, labels: { app: name } },
    spec: { clusterIP, selector: { app: name }, ports: ports.map((p) => ({ ...p, protocol: 'TCP' })) },
  };
}

export function pod(name: string, namespace: string, ip: string, labels: Record<string, string>): K8sObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, labels },
    spec: { containers: [{ name: 'app', image: 'example/app:1' }] },
    status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] },
  };
}

export function endpointSlice(
  serviceName: string,
  namespace: string,
  port: { name: string; port: number },
  pods: { name: string; ip: string; ready?: boolean }[],
): K8sObject {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: `${serviceName}-abcde`, namespace, labels: { 'kubernetes.io/service-name': serviceName } },
    addressType: 'IPv4',
    ports: [{ ...port, protocol: 'TCP' }],
    endpoints: pods.map((p) => ({
      addresses: [p.ip],
      conditions: { ready: p.ready ?? true },
      targetRef: { kind: 'Pod', name: p.name, namespace },
      zone: 'zone-a',
    })),
  };
}

export function rule(kind: 'VirtualService' | 'DestinationRule' | 'Sidecar' | 'ServiceEntry' | 'AuthorizationPolicy' | 'PeerAuthentication' | 'Gateway', name: string, namespace: string, spec: unknown): K8sObject {
  const group = kind === 'AuthorizationPolicy' || kind === 'PeerAuthentication' ? 'security.istio.io' : 'networking.istio.io';
  return { apiVersion: `${group}/v1`, kind, metadata: { name, namespace }, spec };
}

/** PEM material of a TLS Secret: `kubernetes.io/tls` keys when `type` is tls, else the generic ones. */
export interface TlsPems {
  readonly cert?: string;
  readonly key?: string;
  readonly ca?: string;
}

/** A Secret as `kubectl create secret tls` makes it (base64 `data`), or a generic one with cert/key/cacert. */
export function tlsSecret(name: string, namespace: string, pems: TlsPems, type: 'tls' | 'generic' = 'tls'): K8sObject {
  const keys = type === 'tls' ? { cert: 'tls.crt', key: 'tls.key', ca: 'ca.crt' } : { cert: 'cert', key: 'key', ca: 'cacert' };
  const data: Record<string, string> = {};
  for (const part of ['cert', 'key', 'ca'] as const) {
    const pem = pems[part];
    if (pem !== undefined) data[keys[part]] = Buffer.from(pem).toString('base64');
  }
  return { apiVersion: 'v1', kind: 'Secret', type: type === 'tls' ? 'kubernetes.io/tls' : 'Opaque', metadata: { name, namespace }, data };
}

export function toYaml(objects: K8sObject[]): string {
  return objects.map((o) => stringify(o)).join('---\n');
}

export class MeshDir {
  readonly path: string;
  private constructor(path: string) {
    this.path = path;
  }

  static async create(): Promise<MeshDir> {
    return new MeshDir(await mkdtemp(join(tmpdir(), 'meshpilot-test-')));
  }

  /** Writes a file whole, as an editor saving by rename does: a reader never sees it half-written. */
  async write(file: string, content: string | K8sObject[]): Promise<void> {
    const target = join(this.path, file);
    const temp = join(dirname(target), `.${basename(target)}.${process.pid}.tmp`);
    await writeFile(temp, typeof content === 'string' ? content : toYaml(content));
    await rename(temp, target);
  }

  /** Deletes one file: how a user removes the objects it held (an emptied file keeps them). */
  async delete(file: string): Promise<void> {
    await rm(join(this.path, file), { force: true });
  }

  async remove(): Promise<void> {
    await rm(this.path, { recursive: true, force: true });
  }
}

/** Polls `check` until it returns a value (not undefined) or the deadline passes. */
export async function eventually<T>(check: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError instanceof Error ? `: ${lastError.message}` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
