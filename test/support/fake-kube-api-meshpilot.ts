// meshpilot in the test process, watching a FakeKubeApi through a kubeconfig file, with short
// timeouts so faults are noticed within a test's patience.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { ServeOptions } from '../../src/main.ts';
import type { KubeSourceTuning } from '../../src/sources/kube/kube-source.ts';
import type { SourceKind } from '../../src/sources/kube/select.ts';
import { listConfigFiles, readObjectsFromText } from '../../src/sources/config-dir.ts';
import { readFile } from 'node:fs/promises';
import { FakeKubeApi, ISTIO_SECURITY_CRDS, istioCrds, type KubeObject } from './fake-kube-api.ts';
import { eventually } from './mesh-dir.ts';
import { startMeshpilot, type TestMeshpilot } from './meshpilot.ts';

export const FAST_KUBE_TUNING: Partial<KubeSourceTuning> = {
  backoffInitialMs: 50,
  backoffMaxMs: 500,
  minWatchIntervalMs: 20,
  stallMs: 1500,
  watchTimeoutSeconds: 60,
  listTimeoutMs: 5000,
  pageSize: 3,
  coalesceMs: 10,
  discoveryIntervalMs: 60_000,
};

export type KubeMeshpilot = TestMeshpilot;

export interface KubeMeshpilotOptions {
  readonly namespaces?: readonly string[];
  readonly configDir?: string;
  readonly tuning?: Partial<KubeSourceTuning>;
  readonly log?: Logger;
  /** Further serve options (e.g. the secure port). */
  readonly serve?: Partial<ServeOptions>;
  /** Talk to the API as this user (the fake records who made each request); default the admin. */
  readonly user?: string;
}

export async function startMeshpilotOnKube(api: FakeKubeApi, options: KubeMeshpilotOptions = {}): Promise<KubeMeshpilot> {
  const dir = await mkdtemp(join(tmpdir(), 'meshpilot-kube-'));
  const kubeconfig = join(dir, 'kubeconfig');
  await api.writeKubeconfig(kubeconfig, options.user);
  const sources: SourceKind[] = options.configDir ? ['file', 'kube'] : ['kube'];
  const running = await startMeshpilot(options.configDir ?? dir, {
    sources,
    kubeconfig,
    ...(options.namespaces ? { namespaces: options.namespaces } : {}),
    kubeTuning: { ...FAST_KUBE_TUNING, ...options.tuning },
    ...(options.log ? { log: options.log } : {}),
    ...options.serve,
  });
  const close = running.close.bind(running);
  return Object.assign(running, {
    close: async () => {
      await close();
      await rm(dir, { recursive: true, force: true });
    },
  });
}

/** A fake cluster with the Istio CRDs holding `objects`, and a meshpilot that has listed it and is ready. */
export async function startClusterMesh(objects: readonly KubeObject[]): Promise<{ api: FakeKubeApi; meshpilot: KubeMeshpilot }> {
  const api = await FakeKubeApi.start();
  for (const crd of [...istioCrds(), ...ISTIO_SECURITY_CRDS]) api.installCrd(crd);
  api.applyAll([...objects]);
  const meshpilot = await startMeshpilotOnKube(api);
  await eventually(async () => ((await meshpilot.admin('/ready')).status === 200 ? true : undefined), 10_000, '/ready');
  return { api, meshpilot };
}

/** Every object in a directory of YAML (as `kubectl get -o yaml` prints them), for loading into the fake. */
export async function objectsFromDirectory(dir: string): Promise<KubeObject[]> {
  const { files } = await listConfigFiles(dir);
  const objects: KubeObject[] = [];
  for (const file of files) {
    const result = readObjectsFromText(await readFile(join(dir, file), 'utf8'), file);
    if (!result.ok) throw new Error(`${file}: ${result.rejected.issues[0]?.message ?? 'unreadable'}`);
    objects.push(...result.objects.map((entry) => entry.object as KubeObject));
  }
  return objects;
}
