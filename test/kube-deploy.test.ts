// deploy/ as `kubectl apply -k` would take it: every manifest parses, refers only to what the
// manifests define, and RBAC grants exactly what the Kubernetes source watches. The Envoy
// bootstrap (command and sample) passes Envoy's own validate.rules for Bootstrap.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse, parseAllDocuments } from 'yaml';
import { buildBootstrap, DEFAULT_XDS_ADDRESS } from '../src/commands/bootstrap.ts';
import { CA_PERMISSIONS, STATUS_PERMISSIONS, WATCH_VERBS, WATCHED_RESOURCES, type KubePermission } from '../src/sources/kube/resources.ts';
import { checkResourceJson } from '../src/xds/validate/pgv.ts';

const ROOT = new URL('..', import.meta.url).pathname;
const BOOTSTRAP_TYPE = 'type.googleapis.com/envoy.config.bootstrap.v3.Bootstrap';

type Manifest = Record<string, unknown> & { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> } };

async function manifests(dir: string): Promise<{ file: string; object: Manifest }[]> {
  const files = (await readdir(join(ROOT, dir))).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml').sort();
  const out: { file: string; object: Manifest }[] = [];
  for (const file of files) {
    for (const [index, document] of parseAllDocuments(await readFile(join(ROOT, dir, file), 'utf8')).entries()) {
      assert.deepEqual(document.errors, [], `${dir}/${file} document ${index + 1} parses`);
      const object = document.toJS() as Manifest | null;
      if (object === null) continue;
      assert.ok(object.apiVersion && object.kind && object.metadata.name, `${dir}/${file} document ${index + 1} has apiVersion, kind and metadata.name`);
      out.push({ file, object });
    }
  }
  return out;
}

function find(all: { object: Manifest }[], kind: string, name: string, namespace?: string): Manifest | undefined {
  return all.map((m) => m.object).find((o) => o.kind === kind && o.metadata.name === name && o.metadata.namespace === namespace);
}

interface PodSpec {
  serviceAccountName?: string;
  containers: { name: string; args?: string[]; ports?: { name: string; containerPort: number }[]; readinessProbe?: { httpGet: { path: string; port: string } }; livenessProbe?: { httpGet: { path: string; port: string } }; volumeMounts?: { name: string }[] }[];
  volumes?: { name: string; configMap?: { name: string } }[];
}
interface Workload {
  metadata: { name: string; namespace: string };
  spec: { replicas: number; selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> }; spec: PodSpec } };
}

const matches = (selector: Record<string, string>, labels: Record<string, string>): boolean => Object.entries(selector).every(([k, v]) => labels[k] === v);

describe('deploy/ manifests', () => {
  for (const dir of ['deploy', 'deploy/sample']) {
    it(`${dir}: the kustomization lists exactly the manifests beside it`, async () => {
      const kustomization = parse(await readFile(join(ROOT, dir, 'kustomization.yaml'), 'utf8')) as { resources: string[] };
      const files = (await readdir(join(ROOT, dir))).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml').sort();
      assert.deepEqual([...kustomization.resources].sort(), files);
    });

    it(`${dir}: every workload refers only to objects the manifests define, and every Service selects a workload`, async () => {
      const all = await manifests(dir);
      const workloads = all.filter((m) => m.object.kind === 'Deployment').map((m) => m.object as unknown as Workload);
      assert.ok(workloads.length > 0);
      for (const workload of workloads) {
        const { namespace } = workload.metadata;
        assert.ok(find(all, 'Namespace', namespace), `namespace ${namespace} of ${workload.metadata.name} is defined`);
        assert.ok(matches(workload.spec.selector.matchLabels, workload.spec.template.metadata.labels), `${workload.metadata.name} selects its own pods`);
        const pod = workload.spec.template.spec;
        if (pod.serviceAccountName) assert.ok(find(all, 'ServiceAccount', pod.serviceAccountName, namespace), `ServiceAccount ${pod.serviceAccountName} exists`);
        for (const volume of pod.volumes ?? []) if (volume.configMap) assert.ok(find(all, 'ConfigMap', volume.configMap.name, namespace), `ConfigMap ${volume.configMap.name} exists`);
        for (const container of pod.containers) {
          const ports = new Set((container.ports ?? []).map((p) => p.name));
          for (const probe of [container.readinessProbe, container.livenessProbe]) if (probe) assert.ok(ports.has(probe.httpGet.port), `probe port ${probe.httpGet.port} is a named port`);
          for (const mount of container.volumeMounts ?? []) assert.ok(pod.volumes?.some((v) => v.name === mount.name), `volume ${mount.name} is defined`);
        }
      }
      for (const { object } of all.filter((m) => m.object.kind === 'Service')) {
        const spec = object['spec'] as { selector: Record<string, string>; ports: { targetPort: number | string }[] };
        const backing = workloads.filter((w) => w.metadata.namespace === object.metadata.namespace && matches(spec.selector, w.spec.template.metadata.labels));
        assert.ok(backing.length > 0, `Service ${object.metadata.name} selects a Deployment's pods`);
        for (const port of spec.ports) {
          const named = backing.flatMap((w) => w.spec.template.spec.containers.flatMap((c) => c.ports ?? []));
          if (typeof port.targetPort === 'string') assert.ok(named.some((p) => p.name === port.targetPort), `targetPort ${port.targetPort} is a container port`);
        }
      }
    });
  }

  it('runs 2 replicas of meshpilot bound for the cluster, probed on /ready and /healthz, with a PDB and a 2-5 HPA on it', async () => {
    const all = await manifests('deploy');
    const deployment = find(all, 'Deployment', 'meshpilot', 'meshpilot-system') as unknown as Workload;
    assert.equal(deployment.spec.replicas, 2);
    const container = deployment.spec.template.spec.containers[0];
    const args = container?.args ?? [];
    assert.deepEqual(args.slice(0, 1), ['serve']);
    for (const [flag, value] of [['--xds-host', '0.0.0.0'], ['--admin-host', '0.0.0.0'], ['--source', 'kube']]) {
      assert.equal(args[args.indexOf(flag ?? '') + 1], value, `${flag} ${value}`);
    }
    assert.equal(container?.readinessProbe?.httpGet.path, '/ready');
    assert.equal(container.livenessProbe?.httpGet.path, '/healthz');
    const service = find(all, 'Service', 'meshpilot', 'meshpilot-system');
    assert.deepEqual((service?.['spec'] as { ports: { name: string; port: number }[] }).ports.map((p) => [p.name, p.port]), [['grpc-xds', 15010], ['tls-xds', 15012], ['http-monitoring', 15014]]);
    const pdb = find(all, 'PodDisruptionBudget', 'meshpilot', 'meshpilot-system')?.['spec'] as { selector: { matchLabels: Record<string, string> } };
    assert.ok(matches(pdb.selector.matchLabels, deployment.spec.template.metadata.labels));
    const hpa = find(all, 'HorizontalPodAutoscaler', 'meshpilot', 'meshpilot-system')?.['spec'] as { scaleTargetRef: { kind: string; name: string }; minReplicas: number; maxReplicas: number };
    assert.deepEqual([hpa.scaleTargetRef.kind, hpa.scaleTargetRef.name, hpa.minReplicas, hpa.maxReplicas], ['Deployment', 'meshpilot', 2, 5]);
  });

  it('grants get/list/watch on exactly the resources the Kubernetes source watches, bound to its ServiceAccount', async () => {
    const all = await manifests('deploy');
    const role = find(all, 'ClusterRole', 'meshpilot');
    const rules = (role?.['rules'] ?? []) as { apiGroups: string[]; resources: string[]; verbs: string[] }[];
    const granted = rules.flatMap((rule) => rule.apiGroups.flatMap((group) => rule.resources.map((resource) => `${group}/${resource}`))).sort();
    const watched = WATCHED_RESOURCES.map((r) => `${r.group}/${r.plural}`).sort();
    assert.deepEqual(granted, watched);
    for (const rule of rules) assert.deepEqual([...rule.verbs].sort(), [...WATCH_VERBS].sort(), 'read-only verbs');
    const binding = find(all, 'ClusterRoleBinding', 'meshpilot') as unknown as { roleRef: { kind: string; name: string }; subjects: { kind: string; name: string; namespace: string }[] };
    assert.deepEqual(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'meshpilot' });
    for (const subject of binding.subjects) assert.ok(find(all, subject.kind, subject.name, subject.namespace), `${subject.kind} ${subject.name} exists`);
  });

  type Rule = { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] };
  const grants = (rules: Rule[]): string[] =>
    rules.flatMap((rule) => rule.apiGroups.flatMap((group) => rule.resources.map((resource) => `${group}/${resource} ${[...rule.verbs].sort().join(',')} ${(rule.resourceNames ?? ['*']).join(',')}`))).sort();
  const expected = (permissions: readonly KubePermission[], scope: 'system' | 'cluster'): string[] =>
    permissions.filter((p) => p.scope === scope).map((p) => `${p.group}/${p.resource} ${[...p.verbs].sort().join(',')} ${(p.resourceNames ?? ['*']).join(',')}`).sort();
  const boundToMeshpilot = (all: { object: Manifest }[], name: string): void => {
    for (const [kind, namespace] of [['RoleBinding', 'meshpilot-system'], ['ClusterRoleBinding', undefined]] as const) {
      const binding = find(all, kind, name, namespace) as unknown as { roleRef: { kind: string; name: string }; subjects: { kind: string; name: string; namespace: string }[] };
      assert.equal(binding.roleRef.name, name);
      assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: 'meshpilot', namespace: 'meshpilot-system' }]);
    }
  };

  it("grants the CA exactly what it uses: its root Secrets in meshpilot-system only, the root's ConfigMaps, TokenReview", async () => {
    const all = await manifests('deploy');
    const role = find(all, 'Role', 'meshpilot-ca', 'meshpilot-system');
    assert.deepEqual(grants((role?.['rules'] ?? []) as Rule[]), expected(CA_PERMISSIONS, 'system'));
    const clusterRole = find(all, 'ClusterRole', 'meshpilot-ca');
    assert.deepEqual(grants((clusterRole?.['rules'] ?? []) as Rule[]), expected(CA_PERMISSIONS, 'cluster'));
    assert.ok(!grants((clusterRole?.['rules'] ?? []) as Rule[]).some((g) => g.includes('secrets')), 'no Secret outside meshpilot-system');
    boundToMeshpilot(all, 'meshpilot-ca');
  });

  it('grants the status writer its Lease in meshpilot-system and update on the Istio kinds\' status, never their spec', async () => {
    const all = await manifests('deploy');
    const role = find(all, 'Role', 'meshpilot-status', 'meshpilot-system');
    assert.deepEqual(grants((role?.['rules'] ?? []) as Rule[]), expected(STATUS_PERMISSIONS, 'system'));
    const clusterRole = find(all, 'ClusterRole', 'meshpilot-status');
    const granted = grants((clusterRole?.['rules'] ?? []) as Rule[]);
    assert.deepEqual(granted, expected(STATUS_PERMISSIONS, 'cluster'));
    assert.ok(granted.every((g) => g.split(' ')[0]?.endsWith('/status')), 'only status subresources');
    boundToMeshpilot(all, 'meshpilot-status');
    for (const resource of WATCHED_RESOURCES.filter((r) => r.statusSubresource)) {
      const crd = find(all, 'CustomResourceDefinition', `${resource.plural}.${resource.group}`)?.['spec'] as { versions: { subresources?: { status?: object } }[] };
      assert.ok(crd.versions.every((v) => v.subresources?.status), `${resource.plural} serves a status subresource`);
    }
    const deployment = find(all, 'Deployment', 'meshpilot', 'meshpilot-system') as unknown as { spec: { template: { spec: { containers: { env?: { name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[] }[] } } } };
    const env = deployment.spec.template.spec.containers[0]?.env ?? [];
    assert.equal(env.find((e) => e.name === 'POD_NAME')?.valueFrom?.fieldRef?.fieldPath, 'metadata.name', 'the holder identity starts with the pod name');
  });

  it('defines a CRD, serving every version meshpilot reads, for each custom resource the role names', async () => {
    const all = await manifests('deploy');
    for (const resource of WATCHED_RESOURCES.filter((r) => r.optional)) {
      const crd = find(all, 'CustomResourceDefinition', `${resource.plural}.${resource.group}`);
      assert.ok(crd, `CRD ${resource.plural}.${resource.group}`);
      const spec = crd['spec'] as { group: string; names: { kind: string; plural: string }; versions: { name: string; served: boolean; storage: boolean }[] };
      assert.deepEqual([spec.group, spec.names.kind, spec.names.plural], [resource.group, resource.kind, resource.plural]);
      assert.deepEqual(spec.versions.filter((v) => v.served).map((v) => v.name), [...resource.versions]);
      assert.equal(spec.versions.filter((v) => v.storage).length, 1, 'exactly one storage version');
    }
  });

  it('builds the image in stages, without dev dependencies, as a non-root user', async () => {
    const dockerfile = await readFile(join(ROOT, 'Dockerfile'), 'utf8');
    assert.ok((dockerfile.match(/^FROM /gm) ?? []).length >= 2, 'multi-stage');
    assert.match(dockerfile, /npm ci --omit=dev/);
    assert.match(dockerfile, /^USER (?!root|0\b)\S+/m);
  });
});

describe('meshpilot bootstrap', () => {
  const nodeId = 'sidecar~10.244.0.9~productpage-v1-0.bookinfo~bookinfo.svc.cluster.local';

  it("passes Envoy's validate.rules for Bootstrap and takes CDS and LDS from ADS over gRPC v3", () => {
    const bootstrap = buildBootstrap({ nodeId, xdsAddress: DEFAULT_XDS_ADDRESS, adminPort: 15000 }) as {
      dynamic_resources: { ads_config: { api_type: string; transport_api_version: string }; cds_config: { ads: object }; lds_config: { ads: object } };
      static_resources: { clusters: { type: string; load_assignment: { endpoints: { lb_endpoints: { endpoint: { address: { socket_address: { address: string; port_value: number } } } }[] }[] } }[] };
      admin: { address: { socket_address: { address: string } } };
    };
    assert.deepEqual(checkResourceJson(BOOTSTRAP_TYPE, bootstrap), []);
    assert.deepEqual([bootstrap.dynamic_resources.ads_config.api_type, bootstrap.dynamic_resources.ads_config.transport_api_version], ['GRPC', 'V3']);
    assert.deepEqual([bootstrap.dynamic_resources.cds_config.ads, bootstrap.dynamic_resources.lds_config.ads], [{}, {}]);
    const xds = bootstrap.static_resources.clusters[0];
    assert.equal(xds?.type, 'STRICT_DNS');
    assert.deepEqual(xds.load_assignment.endpoints[0]?.lb_endpoints[0]?.endpoint.address.socket_address, { address: 'meshpilot.meshpilot-system.svc', port_value: 15010 });
    assert.equal(bootstrap.admin.address.socket_address.address, '127.0.0.1');
  });

  it('prints the same bootstrap from the command line, and refuses an address without a port', () => {
    const printed = spawnSync(process.execPath, ['bin/meshpilot.js', 'bootstrap', '--node-id', nodeId, '--xds-address', '10.96.0.10:15010', '--output', 'json'], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(printed.status, 0, printed.stderr);
    const json = JSON.parse(printed.stdout) as unknown;
    assert.deepEqual(json, buildBootstrap({ nodeId, xdsAddress: '10.96.0.10:15010', adminPort: 15000 }));
    assert.deepEqual(checkResourceJson(BOOTSTRAP_TYPE, json), []);
    assert.throws(() => buildBootstrap({ nodeId, xdsAddress: 'meshpilot', adminPort: 15000 }), /MP_CONFIG: --xds-address "meshpilot" is not host:port/);
  });

  it("the sample's sidecar ConfigMap holds exactly what the command prints, pointing at the meshpilot Service", async () => {
    const all = await manifests('deploy/sample');
    const configMap = find(all, 'ConfigMap', 'envoy-bootstrap', 'bookinfo');
    const inMap = parse((configMap?.['data'] as Record<string, string>)['bootstrap.yaml'] ?? '') as unknown;
    assert.deepEqual(checkResourceJson(BOOTSTRAP_TYPE, inMap), []);
    assert.deepEqual(inMap, buildBootstrap({ nodeId: 'sidecar~0.0.0.0~productpage-v1.bookinfo~bookinfo.svc.cluster.local', cluster: 'productpage.bookinfo', xdsAddress: DEFAULT_XDS_ADDRESS, adminPort: 15000 }));
    const [host, port] = DEFAULT_XDS_ADDRESS.split(':');
    const service = find(await manifests('deploy'), 'Service', host?.split('.')[0] ?? '', host?.split('.')[1]);
    assert.ok((service?.['spec'] as { ports: { port: number }[] }).ports.some((p) => p.port === Number(port)), 'the address is the meshpilot Service');
  });
});
