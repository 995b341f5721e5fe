// The fixtures under fixtures/ as a user serves them (with the MeshConfig a fixture carries),
// and the workloads in each (Pods and WorkloadEntries) as the sidecars that would run there.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { PushContext } from '../../src/model/push-context.ts';
import { readDirectory } from '../../src/sources/config-dir.ts';
import { parseObject } from '../../src/sources/kube-objects.ts';
import { loadMeshConfigFile } from '../../src/sources/mesh-config-file.ts';
import { FIXTURES, loadFixture } from './rendered.ts';

export interface Fixture {
  readonly name: string;
  readonly dir: string;
  /** The fixture's `istio-configmap.yaml`, given to `--mesh-config` (registry-only has one). */
  readonly meshConfig?: string;
}

export interface Workload {
  /** `pod.namespace` */
  readonly name: string;
  /** Istio's sidecar node id for the workload: `sidecar~IP~POD.NS~NS.svc.cluster.local`. */
  readonly nodeId: string;
}

const MESH_CONFIG_FILE = 'istio-configmap.yaml';

/** Every fixture directory, by name. */
export function fixtures(): Fixture[] {
  return readdirSync(FIXTURES, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => {
      const dir = join(FIXTURES, entry.name);
      const meshConfig = join(dir, MESH_CONFIG_FILE);
      return { name: entry.name, dir, ...(existsSync(meshConfig) ? { meshConfig } : {}) };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** The model a fixture serves, with its MeshConfig. */
export async function fixturePush(fixture: Fixture): Promise<PushContext> {
  return loadFixture(fixture.name, fixture.meshConfig ? await loadMeshConfigFile(fixture.meshConfig) : undefined);
}

function sidecarId(ip: string, name: string, namespace: string): Workload {
  return { name: `${name}.${namespace}`, nodeId: `sidecar~${ip}~${name}.${namespace}~${namespace}.svc.cluster.local` };
}

/** Each running Pod with an IP and each WorkloadEntry of a fixture, as a sidecar. */
export async function fixtureWorkloads(fixture: Fixture): Promise<Workload[]> {
  const { reads } = await readDirectory(fixture.dir);
  const workloads: Workload[] = [];
  for (const read of reads) {
    if (!read.result.ok) throw new Error(`${fixture.name}/${read.file} does not parse`);
    for (const object of read.result.objects) {
      const parsed = parseObject(object);
      if (parsed.type === 'pod' && parsed.pod.running && parsed.pod.ips[0]) {
        workloads.push(sidecarId(parsed.pod.ips[0], parsed.pod.name, parsed.pod.namespace));
      } else if (parsed.type === 'workloadEntry' && parsed.workload.workload) {
        const name = parsed.workload.workload.slice(parsed.workload.workload.indexOf('/') + 1);
        workloads.push(sidecarId(parsed.workload.address, name, parsed.workload.namespace));
      }
    }
  }
  return workloads;
}
