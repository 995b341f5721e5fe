// deploy/ as `kubectl apply -k` would take it: every manifest parses, refers only to what the
// manifests define, and RBAC grants exactly what the Kubernetes source watches. The Envoy
// bootstrap (command and sample) passes Envoy's own validate.rules for Bootstrap, and the sample's
// sidecar (meshpilot agent beside Envoy, ADS on 15012) uses only flags, mounts and ports that exist.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { Command } from 'commander';
import { parse, parseAllDocuments } from 'yaml';
import { registerAgentCommand } from '../src/agent/command.ts';
import { buildBootstrap, DEFAULT_XDS_ADDRESS } from '../src/commands/bootstrap.ts';
import { splitHostPort } from '../src/model/address.ts';
import { CA_TOKEN_AUDIENCE, ROOT_CERT_CONFIGMAP, ROOT_CERT_FILE, SECURE_XDS_PORT, TLS_MODE_LABEL } from '../src/security/names.ts';
import { servingDnsNames } from '../src/security/secure-port.ts';
import { CA_PERMISSIONS, GATEWAY_DEPLOYMENT_PERMISSIONS, STATUS_PERMISSIONS, WATCH_VERBS, WATCHED_RESOURCES, type KubePermission } from '../src/sources/kube/resources.ts';
import { convertObjects } from '../src/sources/kube-objects.ts';
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
  for (const dir of ['deploy', 'deploy/sample', 'deploy/ingress']) {
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
        // meshpilot itself publishes the root's ConfigMap in every namespace.
        for (const volume of pod.volumes ?? []) if (volume.configMap && volume.configMap.name !== ROOT_CERT_CONFIGMAP) assert.ok(find(all, 'ConfigMap', volume.configMap.name, namespace), `ConfigMap ${volume.configMap.name} exists`);
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

  it('grants the gateway deployment controller read on Gateways and GatewayClasses and writes on the objects it makes, never delete', async () => {
    const all = await manifests('deploy');
    const role = find(all, 'ClusterRole', 'meshpilot-gateway-deployment');
    const granted = grants((role?.['rules'] ?? []) as Rule[]);
    assert.deepEqual(granted, expected(GATEWAY_DEPLOYMENT_PERMISSIONS, 'cluster'));
    assert.ok(granted.every((g) => !g.includes('delete')), 'the garbage collector deletes them, through their owner references');
    const binding = find(all, 'ClusterRoleBinding', 'meshpilot-gateway-deployment') as unknown as { roleRef: { name: string }; subjects: { kind: string; name: string; namespace: string }[] };
    assert.equal(binding.roleRef.name, 'meshpilot-gateway-deployment');
    assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: 'meshpilot', namespace: 'meshpilot-system' }]);
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

  for (const [what, dir, name, namespace] of [['sample sidecar', 'deploy/sample', 'envoy-bootstrap', 'bookinfo'], ['ingress gateway', 'deploy/ingress', 'ingress-envoy-bootstrap', 'istio-system']] as const) it(`the ${what}'s ConfigMap holds exactly what the command written above it prints: ADS over TLS to the meshpilot Service's 15012, certificates over SDS`, async () => {
    const file = await readFile(join(ROOT, dir, '01-envoy-bootstrap.yaml'), 'utf8');
    const command = /^#\s+meshpilot (bootstrap .*)$/m.exec(file)?.[1];
    assert.ok(command, 'the ConfigMap says which command printed it');
    const printed = spawnSync(process.execPath, ['bin/meshpilot.js', ...shellWords(command)], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(printed.status, 0, printed.stderr);
    const configMap = find(await manifests(dir), 'ConfigMap', name, namespace);
    const inMap = (configMap?.['data'] as Record<string, string>)['bootstrap.yaml'] ?? '';
    assert.equal(inMap, printed.stdout, 'byte for byte');
    const bootstrap = parse(inMap) as SampleBootstrap;
    assert.deepEqual(checkResourceJson(BOOTSTRAP_TYPE, bootstrap), []);
    const [xds, sds] = bootstrap.static_resources.clusters;
    const socket = xds?.load_assignment.endpoints[0]?.lb_endpoints[0]?.endpoint.address.socket_address;
    assert.deepEqual(socket, { address: 'meshpilot.meshpilot-system.svc', port_value: SECURE_XDS_PORT });
    assert.ok(servingDnsNames('meshpilot-system').includes(xds?.transport_socket?.typed_config.sni ?? ''), "the name checked is one meshpilot's serving certificate carries");
    assert.equal(sds?.name, 'sds-grpc');
    await assertMeshpilotServes('meshpilot.meshpilot-system.svc', SECURE_XDS_PORT);
  });
});

describe('deploy/ingress: a hand-run ingress gateway', () => {
  it('is a LoadBalancer Service 80->8080 and 443->8443 in front of Envoy and meshpilot agent, and its Gateway and VirtualService are valid meshpilot input naming a Secret of the gateway\'s namespace', async () => {
    const all = await manifests('deploy/ingress');
    const spec = find(all, 'Service', 'istio-ingressgateway', 'istio-system')?.['spec'] as { type: string; ports: { port: number; targetPort: number }[] };
    assert.equal(spec.type, 'LoadBalancer');
    assert.deepEqual(spec.ports.map((p) => [p.port, p.targetPort]), [[80, 8080], [443, 8443]]);
    const pod = (find(all, 'Deployment', 'istio-ingressgateway', 'istio-system') as unknown as Workload).spec.template.spec;
    assert.deepEqual(pod.containers.map((c) => c.args?.[0] === 'agent' ? 'agent' : c.name), ['agent', 'envoy']);
    assert.deepEqual(pod.containers.find((c) => c.name === 'envoy')?.ports?.map((p) => p.containerPort), [8080, 8443]);
    const rules = all.filter((m) => m.object.apiVersion.startsWith('networking.istio.io/'));
    const converted = convertObjects(rules.map(({ file, object }) => ({ object, source: { origin: 'file', location: file } })));
    assert.deepEqual(converted.rejected, []);
    const gateway = converted.rules.find((r) => r.meta.kind === 'Gateway');
    assert.ok(gateway);
    assert.equal(gateway.meta.namespace, 'istio-system');
    assert.ok(JSON.stringify(gateway.spec).includes('"credentialName":"bookinfo-credential"'));
    const role = find(all, 'Role', 'istio-ingressgateway-sds', 'istio-system')?.['rules'] as { resources: string[] }[];
    assert.deepEqual(role.flatMap((r) => r.resources), ['secrets'], "the gateway's account reads its own namespace's Secrets, nothing else");
  });
});

/** `a 'b c' d` -> ['a', 'b c', 'd'] (single quotes only, as the manifests write commands). */
function shellWords(line: string): string[] {
  return [...line.matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2] ?? '');
}

interface SampleBootstrap {
  static_resources: {
    clusters: {
      name: string;
      load_assignment: { endpoints: { lb_endpoints: { endpoint: { address: { socket_address?: { address: string; port_value: number }; pipe?: { path: string } } } }[] }[] };
      transport_socket?: { typed_config: { sni: string } };
    }[];
  };
}

/** `meshpilot.meshpilot-system.svc:PORT` is a port of the meshpilot Service, backed by that container port of the meshpilot Deployment. */
async function assertMeshpilotServes(host: string, port: number): Promise<void> {
  const [name, namespace] = host.split('.');
  const all = await manifests('deploy');
  const service = find(all, 'Service', name ?? '', namespace)?.['spec'] as { ports: { port: number; targetPort: string }[] } | undefined;
  const servicePort = service?.ports.find((p) => p.port === port);
  assert.ok(servicePort, `the Service ${host} has port ${String(port)}`);
  const deployment = find(all, 'Deployment', name ?? '', namespace) as unknown as Workload;
  const containerPort = deployment.spec.template.spec.containers.flatMap((c) => c.ports ?? []).find((p) => p.name === servicePort.targetPort);
  assert.equal(containerPort?.containerPort, port, `targetPort ${servicePort.targetPort} is meshpilot's ${String(port)}`);
}

interface SidecarContainer {
  name: string;
  args?: string[];
  workingDir?: string;
  env?: { name: string; value?: string; valueFrom?: { fieldRef: { fieldPath: string } } }[];
  ports?: { name: string; containerPort: number }[];
  readinessProbe?: { httpGet: { path: string; port: string } };
  securityContext?: { runAsUser?: number };
  volumeMounts?: { name: string; mountPath: string }[];
}
interface SidecarVolume {
  name: string;
  emptyDir?: object;
  configMap?: { name: string };
  projected?: { sources: { serviceAccountToken?: { audience: string; path: string } }[] };
}

describe('the sample sidecar: meshpilot agent beside Envoy, on 15012', () => {
  const agentCommand = new Command('meshpilot');
  registerAgentCommand(agentCommand);
  const agentOptions = agentCommand.commands.find((c) => c.name() === 'agent')?.options ?? [];

  async function productpage(): Promise<{ labels: Record<string, string>; serviceAccount?: string; agent: SidecarContainer; envoy: SidecarContainer; volumes: SidecarVolume[] }> {
    const deployment = find(await manifests('deploy/sample'), 'Deployment', 'productpage-v1', 'bookinfo') as unknown as { spec: { template: { metadata: { labels: Record<string, string> }; spec: { serviceAccountName?: string; containers: SidecarContainer[]; volumes: SidecarVolume[] } } } };
    const pod = deployment.spec.template.spec;
    const agent = pod.containers.find((c) => c.args?.[0] === 'agent');
    const envoy = pod.containers.find((c) => c.name === 'envoy');
    assert.ok(agent && envoy, 'productpage runs `meshpilot agent` and Envoy');
    return { labels: deployment.spec.template.metadata.labels, serviceAccount: pod.serviceAccountName, agent, envoy, volumes: pod.volumes };
  }

  /** The agent's settings as `meshpilot agent` reads them: each flag, else its environment variable, else its default. */
  function agentSettings(agent: SidecarContainer): Map<string, string> {
    const args = agent.args?.slice(1) ?? [];
    const given = new Map<string, string>();
    for (let i = 0; i < args.length; i++) {
      const option = agentOptions.find((o) => o.long === args[i]);
      assert.ok(option, `\`meshpilot agent\` has the flag ${args[i] ?? ''}`);
      given.set(option.attributeName(), option.required || option.optional ? (args[++i] ?? '') : 'true');
    }
    for (const variable of agent.env ?? []) {
      const option = agentOptions.find((o) => o.envVar === variable.name);
      assert.ok(option, `\`meshpilot agent\` reads the environment variable ${variable.name}`);
      if (!given.has(option.attributeName())) given.set(option.attributeName(), variable.value ?? `fieldRef:${variable.valueFrom?.fieldRef.fieldPath ?? ''}`);
    }
    for (const option of agentOptions) if (!given.has(option.attributeName()) && typeof option.defaultValue === 'string') given.set(option.attributeName(), option.defaultValue);
    return given;
  }

  /** The volume mounted at `file`'s directory in `container`. */
  function volumeHolding(container: SidecarContainer, volumes: readonly SidecarVolume[], file: string): SidecarVolume | undefined {
    const mount = container.volumeMounts?.find((m) => m.mountPath === dirname(file));
    return volumes.find((v) => v.name === mount?.name);
  }

  it("the agent's flags and environment variables are ones `meshpilot agent` has; it takes its identity from the pod and asks meshpilot's CA on 15012", async () => {
    const { agent, labels, serviceAccount } = await productpage();
    const settings = agentSettings(agent);
    assert.deepEqual(
      ['namespace', 'serviceAccount', 'podName', 'podIp'].map((key) => settings.get(key)),
      ['fieldRef:metadata.namespace', 'fieldRef:spec.serviceAccountName', 'fieldRef:metadata.name', 'fieldRef:status.podIP'],
      'identity and node id from the downward API',
    );
    assert.ok(serviceAccount && serviceAccount !== 'default', 'the pod runs as its own service account');
    assert.equal(labels[TLS_MODE_LABEL], 'istio', 'the pod says it holds a workload certificate (auto mTLS)');
    const ca = splitHostPort(settings.get('caAddress') ?? '');
    assert.equal(ca?.port, SECURE_XDS_PORT);
    assert.ok(servingDnsNames('meshpilot-system').includes(ca.host), "the CA's name is one its serving certificate carries");
    await assertMeshpilotServes(ca.host, ca.port);
    const status = agent.ports?.find((p) => p.name === agent.readinessProbe?.httpGet.port);
    assert.equal(String(status?.containerPort), settings.get('statusPort'), 'the kubelet probes the status port');
    assert.deepEqual([agent.readinessProbe?.httpGet.path, settings.get('statusHost')], ['/healthz/ready', '0.0.0.0']);
  });

  it("the agent's mounts hold what its flags name: the istio-ca token, the published root, and the SDS socket Envoy's bootstrap reaches", async () => {
    const { agent, envoy, volumes } = await productpage();
    const settings = agentSettings(agent);
    const tokenFile = settings.get('tokenFile') ?? '';
    const token = volumeHolding(agent, volumes, tokenFile)?.projected?.sources.find((s) => s.serviceAccountToken)?.serviceAccountToken;
    assert.deepEqual([token?.audience, token?.path], [CA_TOKEN_AUDIENCE, basename(tokenFile)], 'a projected token for the CA');
    const rootFile = settings.get('caRootCert') ?? '';
    assert.deepEqual([volumeHolding(agent, volumes, rootFile)?.configMap?.name, basename(rootFile)], [ROOT_CERT_CONFIGMAP, ROOT_CERT_FILE]);
    const socket = settings.get('sdsSocket') ?? '';
    const shared = volumeHolding(agent, volumes, socket);
    assert.ok(shared?.emptyDir, 'the socket lives in an emptyDir');
    assert.equal(volumeHolding(envoy, volumes, socket)?.name, shared.name, 'Envoy mounts the same volume at the same place');
    const configPath = envoy.args?.[envoy.args.indexOf('-c') + 1] ?? '';
    assert.equal(volumeHolding(envoy, volumes, configPath)?.configMap?.name, 'envoy-bootstrap');
    const bootstrap = parse((find(await manifests('deploy/sample'), 'ConfigMap', 'envoy-bootstrap', 'bookinfo')?.['data'] as Record<string, string>)[basename(configPath)] ?? '') as SampleBootstrap;
    const pipe = bootstrap.static_resources.clusters.find((c) => c.name === 'sds-grpc')?.load_assignment.endpoints[0]?.lb_endpoints[0]?.endpoint.address.pipe?.path ?? '';
    assert.equal(resolve(envoy.workingDir ?? '/nowhere', pipe), socket, "Envoy's sds-grpc cluster is the agent's socket");
    assert.equal(agent.securityContext?.runAsUser, envoy.securityContext?.runAsUser, 'one user, so Envoy may connect to the socket the agent made');
  });
});
