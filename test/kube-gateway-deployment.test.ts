// Automated gateway deployment through the fake API server and the real client-node: two
// meshpilot replicas run with --gateway-deployment on; the one that leads gives the Gateway of
// meshpilot's GatewayClass a ServiceAccount, a LoadBalancer Service and a Deployment of Envoy with
// the agent, all owned by the Gateway; they follow a listener change; a user's own additions stay
// while the fields meshpilot manages are put back; the follower never writes.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_SECURE_XDS_ADDRESS } from '../src/commands/bootstrap.ts';
import { gatewayBootstrap, DEFAULT_GATEWAY_DEPLOYMENT_SETTINGS, renderDeployment, renderService } from '../src/sources/kube/gateway-deployment-objects.ts';
import { checkResourceJson } from '../src/xds/validate/pgv.ts';
import { requireEnvoy, validateBootstrap } from './support/envoy.ts';
import { FakeKubeApi, type KubeObject, type ResourceType } from './support/fake-kube-api.ts';
import { startMeshpilotOnKube, type KubeMeshpilot } from './support/fake-kube-api-meshpilot.ts';
import { eventually } from './support/mesh-dir.ts';
import { startMeshpilot } from './support/meshpilot.ts';

const GATEWAY_GROUP = 'gateway.networking.k8s.io';
/** What the cluster serves besides the fake's built-in kinds: apps/v1 Deployments, ServiceAccounts, the Gateway API's Gateway kinds. */
const KINDS: readonly ResourceType[] = [
  { group: 'apps', versions: ['v1'], plural: 'deployments', kind: 'Deployment', namespaced: true },
  { group: '', versions: ['v1'], plural: 'serviceaccounts', kind: 'ServiceAccount', namespaced: true },
  { group: GATEWAY_GROUP, versions: ['v1'], plural: 'gatewayclasses', kind: 'GatewayClass', namespaced: false, statusSubresource: true },
  { group: GATEWAY_GROUP, versions: ['v1'], plural: 'gateways', kind: 'Gateway', namespaced: true, statusSubresource: true },
];
const FAST = { leaseDurationMs: 1500, renewDeadlineMs: 1000, retryPeriodMs: 100 };
const NAME = 'edge-meshpilot';
const BOOTSTRAP_TYPE = 'type.googleapis.com/envoy.config.bootstrap.v3.Bootstrap';

type Listener = { name: string; port: number; protocol: string };
const gatewayClass = (name: string, controllerName: string): KubeObject => ({ apiVersion: `${GATEWAY_GROUP}/v1`, kind: 'GatewayClass', metadata: { name }, spec: { controllerName } });
/** What the Gateway API says the objects made for a Gateway should carry. */
const INFRASTRUCTURE = { labels: { team: 'storefront' }, annotations: { 'example.com/owner': 'shop-team' } };
const gateway = (name: string, className: string, listeners: Listener[]): KubeObject => ({
  apiVersion: `${GATEWAY_GROUP}/v1`,
  kind: 'Gateway',
  metadata: { name, namespace: 'shop' },
  spec: { gatewayClassName: className, listeners, infrastructure: INFRASTRUCTURE },
});

interface Container {
  name: string;
  image: string;
  args: string[];
  ports?: { containerPort: number }[];
  env?: { name: string; value?: string }[];
  volumeMounts: { name: string; mountPath: string }[];
}
interface Deployment {
  metadata: { labels: Record<string, string>; ownerReferences: { kind: string; name: string; uid: string }[] };
  spec: {
    selector: { matchLabels: Record<string, string> };
    template: {
      metadata: { labels: Record<string, string> };
      spec: {
        serviceAccountName: string;
        containers: Container[];
        volumes: { name: string; configMap?: { name: string }; emptyDir?: object; projected?: { sources: { serviceAccountToken: { audience: string } }[] } }[];
      };
    };
  };
}
interface Service {
  metadata: { labels: Record<string, string>; ownerReferences: { name: string; uid: string }[] };
  spec: { type: string; selector: Record<string, string>; ports: { name: string; port: number }[] };
}

describe('meshpilot deploys the Gateways of its GatewayClass', () => {
  let api: FakeKubeApi;
  const replicas = new Map<string, KubeMeshpilot>();
  let uid = '';
  const deployment = (): Deployment | undefined => api.get('Deployment', 'shop', NAME) as unknown as Deployment | undefined;
  const service = (): Service | undefined => api.get('Service', 'shop', NAME) as unknown as Service | undefined;

  before(async () => {
    api = await FakeKubeApi.start();
    for (const kind of KINDS) api.installCrd(kind);
    api.applyAll([
      gatewayClass('meshpilot', 'meshpilot.io/gateway-controller'),
      gatewayClass('other', 'example.com/another-controller'),
      gateway('edge', 'meshpilot', [
        { name: 'http', port: 80, protocol: 'HTTP' },
        { name: 'https', port: 443, protocol: 'HTTPS' },
        { name: 'https-admin', port: 443, protocol: 'HTTPS' },
      ]),
      gateway('foreign', 'other', [{ name: 'http', port: 80, protocol: 'HTTP' }]),
    ]);
    uid = String(api.get('Gateway', 'shop', 'edge')?.metadata?.['uid']);
    for (const user of ['replica-a', 'replica-b']) {
      replicas.set(user, await startMeshpilotOnKube(api, { user, serve: { gatewayDeployment: true, leaderElection: FAST, podName: user } }));
    }
  });

  after(async () => {
    await Promise.all([...replicas.values()].map((r) => r.close()));
    await api.close();
  });

  const leader = (): Promise<string> =>
    eventually(async () => {
      for (const [user, replica] of replicas) {
        const body = (await (await replica.admin('/debug/leaderz')).json()) as { election: { leading: boolean } | null };
        if (body.election?.leading) return user;
      }
      return undefined;
    }, 10_000, 'a leader');

  it('creates a ServiceAccount, a LoadBalancer Service and a Deployment named <gateway>-<class>, owned by the Gateway', async () => {
    await eventually(() => (deployment() && service() && api.get('ServiceAccount', 'shop', NAME) ? true : undefined), 10_000, 'the three objects');
    for (const kind of ['ServiceAccount', 'Service', 'Deployment']) {
      const meta = api.get(kind, 'shop', NAME)?.metadata as { ownerReferences: unknown[]; labels: Record<string, string>; annotations: Record<string, string> };
      assert.deepEqual(meta.ownerReferences, [{ apiVersion: `${GATEWAY_GROUP}/v1`, kind: 'Gateway', name: 'edge', uid }], `${kind} is owned by the Gateway`);
      assert.equal(meta.labels['gateway.istio.io/managed'], 'meshpilot.io-gateway-controller');
      assert.equal(meta.labels['team'], 'storefront', `${kind} carries the infrastructure labels`);
      assert.equal(meta.annotations['example.com/owner'], 'shop-team', `${kind} carries the infrastructure annotations`);
    }
    assert.equal(deployment()?.spec.template.metadata.labels['team'], 'storefront', 'and so do the pods');
    const svc = service();
    assert.equal(svc?.spec.type, 'LoadBalancer');
    assert.deepEqual(svc.spec.selector, { 'gateway.networking.k8s.io/gateway-name': 'edge' });
    assert.deepEqual(svc.spec.ports.map((p) => [p.name, p.port]), [['http', 80], ['https', 443]], 'one port per distinct listener port');
    assert.equal(api.get('Deployment', 'shop', 'foreign-other'), undefined, "another controller's Gateway is left alone");
  });

  it('runs Envoy as a router with the agent beside it, as the sidecar sample does: token for istio-ca, the root ConfigMap, the SDS socket', () => {
    const spec = deployment()?.spec;
    assert.ok(spec);
    assert.deepEqual(spec.selector.matchLabels, { 'gateway.networking.k8s.io/gateway-name': 'edge' });
    assert.equal(spec.template.metadata.labels['gateway.networking.k8s.io/gateway-name'], 'edge', 'the pods carry the label the Gateway selects them by');
    const pod = spec.template.spec;
    assert.equal(pod.serviceAccountName, NAME);
    const [agent, envoy] = pod.containers;
    assert.deepEqual([agent?.name, agent?.image, envoy?.name, envoy?.image], ['meshpilot-agent', DEFAULT_GATEWAY_DEPLOYMENT_SETTINGS.agentImage, 'envoy', DEFAULT_GATEWAY_DEPLOYMENT_SETTINGS.envoyImage]);
    assert.deepEqual(agent?.args.slice(0, 3), ['agent', '--sds-socket', '/var/run/secrets/workload-spiffe-uds/socket']);
    assert.equal(agent.env?.find((e) => e.name === 'CA_ADDR')?.value, DEFAULT_SECURE_XDS_ADDRESS, "meshpilot's secure port, in its namespace");
    const token = pod.volumes.find((v) => v.name === 'istio-token');
    assert.equal(token?.projected?.sources[0]?.serviceAccountToken.audience, 'istio-ca');
    assert.equal(pod.volumes.find((v) => v.name === 'istio-ca-root-cert')?.configMap?.name, 'istio-ca-root-cert');
    for (const container of [agent, envoy]) assert.ok(container?.volumeMounts.some((m) => m.name === 'workload-socket' && m.mountPath === '/var/run/secrets/workload-spiffe-uds'), `${String(container?.name)} shares the SDS socket`);
    const args = envoy?.args ?? [];
    assert.equal(args[args.indexOf('--service-node') + 1], 'router~$(POD_IP)~$(POD_NAME).$(POD_NAMESPACE)~$(POD_NAMESPACE).svc.cluster.local');
    const bootstrap = JSON.parse(args[args.indexOf('--config-yaml') + 1] ?? '{}') as { node: { id: string } };
    assert.equal(bootstrap.node.id, `router~0.0.0.0~${NAME}.shop~shop.svc.cluster.local`, 'the bootstrap `meshpilot bootstrap` prints for a router');
    assert.deepEqual(checkResourceJson(BOOTSTRAP_TYPE, bootstrap), [], "it passes Envoy's validate.rules");
    assert.deepEqual(envoy?.ports?.map((p) => p.containerPort), [80, 443]);
    assert.deepEqual(bootstrap, JSON.parse(JSON.stringify(gatewayBootstrap({ metadata: { name: 'edge', namespace: 'shop', uid }, spec: { gatewayClassName: 'meshpilot' } }, DEFAULT_GATEWAY_DEPLOYMENT_SETTINGS))));
  });

  it('only the leader writes them', async () => {
    const leading = await leader();
    const follower = [...replicas.keys()].find((user) => user !== leading) ?? '';
    const writes = (user: string): number => ['/deployments', '/services', '/serviceaccounts', `/${NAME}`].reduce((sum, suffix) => sum + api.writesBy(user, suffix).length, 0);
    assert.equal(writes(leading), 3, 'the leader created them once, and wrote nothing more while nothing changed');
    assert.equal(writes(follower), 0, 'the follower wrote nothing');
  });

  it("follows a listener change, keeps what a user added, and puts back what meshpilot manages", async () => {
    // A user labels the Service and edits the Deployment: an extra env var on Envoy, and a changed agent image.
    const svc = api.get('Service', 'shop', NAME) as KubeObject & { metadata: { labels: Record<string, string> } };
    api.apply({ ...svc, metadata: { ...svc.metadata, labels: { ...svc.metadata.labels, 'on-call': 'ops' } } });
    const dep = api.get('Deployment', 'shop', NAME) as unknown as Deployment & KubeObject;
    const [agent, envoy] = dep.spec.template.spec.containers;
    assert.ok(agent && envoy);
    api.apply({ ...dep, spec: { ...dep.spec, template: { ...dep.spec.template, spec: { ...dep.spec.template.spec, containers: [{ ...agent, image: 'meshpilot:edited' }, { ...envoy, env: [...(envoy.env ?? []), { name: 'DEBUG', value: '1' }] }] } } } });
    // The Gateway drops 443 and listens on 8080 instead.
    api.apply(gateway('edge', 'meshpilot', [{ name: 'http', port: 80, protocol: 'HTTP' }, { name: 'http-alt', port: 8080, protocol: 'HTTP' }]));
    await eventually(() => (service()?.spec.ports.map((p) => p.port).join(',') === '80,8080' ? true : undefined), 10_000, 'the Service follows the listeners');
    const after = service();
    assert.equal(after?.metadata.labels['on-call'], 'ops', "the user's label stays");
    await eventually(() => (deployment()?.spec.template.spec.containers[1]?.ports?.map((p) => p.containerPort).join(',') === '80,8080' ? true : undefined), 10_000, 'the Deployment follows');
    const containers = deployment()?.spec.template.spec.containers ?? [];
    assert.equal(containers[0]?.image, DEFAULT_GATEWAY_DEPLOYMENT_SETTINGS.agentImage, 'the image meshpilot sets is put back');
    assert.equal(containers[1]?.env?.find((e) => e.name === 'DEBUG')?.value, '1', "the user's env var stays");
  });
});

describe('meshpilot puts right what someone else changed in a deployed gateway', () => {
  it('sets the Service back to LoadBalancer and recreates a deleted ServiceAccount, without any change to the Gateway', async (t) => {
    const api = await FakeKubeApi.start();
    t.after(() => api.close());
    for (const kind of KINDS) api.installCrd(kind);
    api.applyAll([gatewayClass('meshpilot', 'meshpilot.io/gateway-controller'), gateway('edge', 'meshpilot', [{ name: 'http', port: 80, protocol: 'HTTP' }])]);
    const meshpilot = await startMeshpilotOnKube(api, { serve: { gatewayDeployment: true, leaderElection: FAST } });
    t.after(() => meshpilot.close());
    await eventually(() => (api.get('Service', 'shop', NAME) && api.get('ServiceAccount', 'shop', NAME) ? true : undefined), 10_000, 'the gateway deployed');
    const svc = api.get('Service', 'shop', NAME) as KubeObject & { spec: Record<string, unknown> };
    api.apply({ ...svc, spec: { ...svc.spec, type: 'NodePort' } });
    api.delete('ServiceAccount', 'shop', NAME);
    await eventually(() => ((api.get('Service', 'shop', NAME) as unknown as Service | undefined)?.spec.type === 'LoadBalancer' ? true : undefined), 10_000, 'the type put back');
    await eventually(() => (api.get('ServiceAccount', 'shop', NAME) ? true : undefined), 10_000, 'the ServiceAccount recreated');
  });
});

describe("a deployed gateway's Service", () => {
  it("takes its type from Istio's networking.istio.io/service-type annotation on the Gateway", () => {
    const edge = { metadata: { name: 'edge', namespace: 'shop', uid: 'u', annotations: { 'networking.istio.io/service-type': 'ClusterIP' } }, spec: { gatewayClassName: 'meshpilot', listeners: [{ name: 'http', port: 80 }] } };
    assert.equal((renderService(edge) as unknown as Service).spec.type, 'ClusterIP');
    assert.equal((renderService({ ...edge, metadata: { ...edge.metadata, annotations: {} } }) as unknown as Service).spec.type, 'LoadBalancer');
  });
});

describe("a deployed gateway's Envoy", () => {
  it('accepts the bootstrap its Deployment starts it with (real Envoy, --mode validate)', async (t) => {
    const bin = await requireEnvoy(t);
    if (!bin) return;
    // An address, not a name: validating must not look anything up.
    const settings = { ...DEFAULT_GATEWAY_DEPLOYMENT_SETTINGS, xdsAddress: '127.0.0.1:15012' };
    const rendered = renderDeployment({ metadata: { name: 'edge', namespace: 'shop', uid: 'u' }, spec: { gatewayClassName: 'meshpilot', listeners: [{ name: 'http', port: 80 }] } }, settings) as unknown as Deployment;
    const args = rendered.spec.template.spec.containers.find((c) => c.name === 'envoy')?.args ?? [];
    const result = await validateBootstrap(bin, JSON.parse(args[args.indexOf('--config-yaml') + 1] ?? '{}') as object);
    assert.ok(result.ok, result.output);
  });
});

describe('--gateway-deployment without a cluster', () => {
  it('refuses to start, saying it needs the Kubernetes source', async () => {
    const fixture = new URL('../fixtures/gateway', import.meta.url).pathname;
    await assert.rejects(startMeshpilot(fixture, { gatewayDeployment: true }), /--gateway-deployment on needs the Kubernetes source/);
  });
});
