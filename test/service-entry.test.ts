// Services outside Kubernetes join the mesh through ServiceEntries and WorkloadEntries: each
// resolution gets the cluster Envoy's docs prescribe, and gRPC clients get what they accept.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildPushContext, type PushContext } from '../src/model/push-context.ts';
import { parseProxy } from '../src/model/proxy.ts';
import { loadDirectory, readObjectsFromText } from '../src/sources/config-dir.ts';
import { convertObjects } from '../src/sources/kube-objects.ts';
import type { JsonObject } from '../src/xds/proto-json.ts';
import { renderForProxy } from '../src/xds/render.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../src/xds/type-urls.ts';
import { startBackend, startBackends, type Backend } from './support/backends.ts';
import { GrpcXdsCaller } from './support/grpc-xds-client.ts';
import { MeshDir, eventually, rule, service, type K8sObject } from './support/mesh-dir.ts';
import { startMeshpilot } from './support/meshpilot.ts';
import { firstFilter, resource, violations, virtualHost } from './support/rendered.ts';

const FIXTURE = new URL('../fixtures/service-entry/', import.meta.url).pathname;
const SIDECAR = parseProxy('sidecar~10.244.0.20~productpage-v1-6b746f74dc-9stvs.default~default.svc.cluster.local');
const GRPC = parseProxy('sidecar~10.244.0.21~grpc-client-0.default~default.svc.cluster.local', { GENERATOR: 'grpc' });
const ORDERS = 'outbound|5432||orders-db.internal.example.com';
const BILLING = 'outbound|8080||billing.vms.example.com';
const PARTNER = 'outbound|443||partner.example.com';

function serviceEntry(name: string, spec: unknown, namespace = 'default'): K8sObject {
  return { apiVersion: 'networking.istio.io/v1', kind: 'ServiceEntry', metadata: { name, namespace }, spec };
}

function workloadEntry(name: string, spec: unknown, namespace = 'default'): K8sObject {
  return { apiVersion: 'networking.istio.io/v1', kind: 'WorkloadEntry', metadata: { name, namespace }, spec };
}

function lbEndpoints(assignment: JsonObject): { address: string; port: number; weight: unknown; locality: unknown }[] {
  return (assignment['endpoints'] as JsonObject[]).flatMap((locality) =>
    (locality['lb_endpoints'] as JsonObject[]).map((e) => {
      const socket = ((e['endpoint'] as JsonObject)['address'] as JsonObject)['socket_address'] as JsonObject;
      return { address: socket['address'] as string, port: socket['port_value'] as number, weight: e['load_balancing_weight'], locality: locality['locality'] };
    }),
  );
}

function pushOf(objects: K8sObject[]): PushContext {
  const converted = convertObjects(objects.map((object) => ({ object, source: { origin: 'file' as const, location: 'entries.yaml' } })));
  assert.deepEqual(converted.rejected, []);
  return buildPushContext(converted);
}

describe('the service-entry fixture, as an Envoy sidecar receives it', () => {
  let push: PushContext;
  before(async () => {
    push = buildPushContext(await loadDirectory(FIXTURE));
  });

  it('passes Envoy\'s validate.rules and cross-references', () => {
    assert.deepEqual(violations(renderForProxy(push, SIDECAR)), []);
  });

  it('serves a STATIC entry over EDS, with each endpoint\'s locality and weight', () => {
    const rendered = renderForProxy(push, SIDECAR);
    const cluster = resource(rendered, CLUSTER_TYPE, ORDERS);
    assert.equal(cluster['type'], 'EDS');
    assert.deepEqual(lbEndpoints(resource(rendered, ENDPOINT_TYPE, ORDERS)), [
      { address: '192.168.10.11', port: 5432, weight: 1, locality: { region: 'us-east1', zone: 'us-east1-b' } },
      { address: '192.168.10.12', port: 5432, weight: 2, locality: { region: 'us-east1', zone: 'us-east1-c' } },
    ]);
  });

  it('gives a TCP entry with an address its own listener on that address, proxying to its cluster', () => {
    const listener = resource(renderForProxy(push, SIDECAR), LISTENER_TYPE, '240.0.0.10_5432');
    assert.deepEqual(listener['address'], { socket_address: { address: '240.0.0.10', port_value: 5432 } });
    assert.equal(listener['bind_to_port'], false);
    assert.equal(firstFilter((listener['filter_chains'] as JsonObject[])[0])['cluster'], ORDERS);
  });

  it('finds the VMs of a workloadSelector entry through their WorkloadEntries, on the WorkloadEntry port', () => {
    const rendered = renderForProxy(push, SIDECAR);
    assert.deepEqual(lbEndpoints(resource(rendered, ENDPOINT_TYPE, BILLING)).map((e) => `${e.address}:${e.port}`), ['192.168.20.21:18080', '192.168.20.22:18080']);
    assert.deepEqual(lbEndpoints(resource(rendered, ENDPOINT_TYPE, `outbound|8080|v2|billing.vms.example.com`)).map((e) => e.address), ['192.168.20.22']);
    // gRPC needs HTTP/2 to the upstream.
    assert.ok(resource(rendered, CLUSTER_TYPE, BILLING)['typed_extension_protocol_options']);
  });

  it('routes an HTTP-family entry by its host name only: no Kubernetes short names', () => {
    const vhost = virtualHost(resource(renderForProxy(push, SIDECAR), ROUTE_TYPE, '8080'), 'billing.vms.example.com:8080');
    assert.deepEqual(vhost['domains'], ['billing.vms.example.com', 'billing.vms.example.com:8080']);
  });

  it('resolves a DNS entry with a STRICT_DNS cluster whose load_assignment names every endpoint', () => {
    const cluster = resource(renderForProxy(push, SIDECAR), CLUSTER_TYPE, PARTNER);
    assert.equal(cluster['type'], 'STRICT_DNS');
    assert.equal(cluster['dns_lookup_family'], 'V4_ONLY');
    assert.equal(cluster['eds_cluster_config'], undefined);
    assert.deepEqual(lbEndpoints(cluster['load_assignment'] as JsonObject).map((e) => `${e.address}:${e.port}`), ['eu.partner.example.com:443', 'us.partner.example.com:8443']);
  });
});

describe('the service-entry fixture, as a proxyless gRPC client receives it', () => {
  it('gets STATIC entries as EDS and a DNS entry as LOGICAL_DNS with exactly one endpoint, as grpc-js-xds requires', async () => {
    const push = buildPushContext(await loadDirectory(FIXTURE));
    const rendered = renderForProxy(push, GRPC, ['billing.vms.example.com:8080', 'partner.example.com:443']);
    assert.deepEqual(violations(rendered), []);
    assert.equal(resource(rendered, CLUSTER_TYPE, BILLING)['type'], 'EDS');
    const partner = resource(rendered, CLUSTER_TYPE, PARTNER);
    assert.equal(partner['type'], 'LOGICAL_DNS');
    assert.deepEqual(partner['load_assignment'], {
      cluster_name: PARTNER,
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 'eu.partner.example.com', port_value: 443 } } } }] }],
    });
    for (const cluster of rendered[CLUSTER_TYPE]) assert.ok(['EDS', 'LOGICAL_DNS'].includes(cluster.json['type'] as string), cluster.name);
  });
});

describe('resolutions and locations', () => {
  const ports = [{ number: 443, name: 'tls', protocol: 'TLS' }];

  it('NONE sends a sidecar\'s connections to their original destination (ORIGINAL_DST, CLUSTER_PROVIDED)', () => {
    const push = pushOf([serviceEntry('wiki', { hosts: ['*.wikipedia.org'], ports, resolution: 'NONE' })]);
    const rendered = renderForProxy(push, SIDECAR);
    assert.deepEqual(violations(rendered), []);
    const cluster = resource(rendered, CLUSTER_TYPE, 'outbound|443||*.wikipedia.org');
    assert.equal(cluster['type'], 'ORIGINAL_DST');
    assert.equal(cluster['lb_policy'], 'CLUSTER_PROVIDED');
    assert.equal(push.serviceByHost.get('*.wikipedia.org')?.meshExternal, true);
  });

  it('one IPv6 address written two ways is one listener, as Envoy sees it', () => {
    const tcp = [{ number: 5432, name: 'tcp', protocol: 'TCP' }];
    const push = pushOf([
      serviceEntry('a', { hosts: ['a.example.com'], addresses: ['2001:db8::1'], ports: tcp, resolution: 'STATIC', endpoints: [{ address: '192.0.2.5' }] }),
      serviceEntry('b', { hosts: ['b.example.com'], addresses: ['2001:DB8:0::1'], ports: tcp, resolution: 'STATIC', endpoints: [{ address: '192.0.2.6' }] }),
    ]);
    const rendered = renderForProxy(push, SIDECAR);
    assert.deepEqual(violations(rendered), []);
    assert.deepEqual(rendered[LISTENER_TYPE].map((l) => l.name).filter((n) => n.startsWith('2001')), ['2001:db8::1_5432']);
  });

  it('a wildcard NONE entry is left out for gRPC, which has no ORIGINAL_DST', () => {
    const push = pushOf([serviceEntry('wiki', { hosts: ['*.wikipedia.org'], ports, resolution: 'NONE' })]);
    assert.deepEqual(renderForProxy(push, GRPC, ['*.wikipedia.org:443'])[CLUSTER_TYPE], []);
  });

  it('DNS without endpoints resolves each host itself; DNS_ROUND_ROBIN is a LOGICAL_DNS cluster', () => {
    const push = pushOf([
      serviceEntry('api', { hosts: ['api.example.com'], ports, resolution: 'DNS' }),
      serviceEntry('cdn', { hosts: ['cdn.example.com'], ports, resolution: 'DNS_ROUND_ROBIN', location: 'MESH_INTERNAL' }),
    ]);
    const rendered = renderForProxy(push, SIDECAR);
    assert.deepEqual(violations(rendered), []);
    const api = resource(rendered, CLUSTER_TYPE, 'outbound|443||api.example.com');
    assert.deepEqual(lbEndpoints(api['load_assignment'] as JsonObject).map((e) => `${e.address}:${e.port}`), ['api.example.com:443']);
    assert.equal(resource(rendered, CLUSTER_TYPE, 'outbound|443||cdn.example.com')['type'], 'LOGICAL_DNS');
    assert.equal(push.serviceByHost.get('cdn.example.com')?.meshExternal, false);
  });

  it('tells TLS hosts without an address apart by SNI on one 0.0.0.0_443 listener; other names are unregistered', () => {
    const push = pushOf([
      serviceEntry('api', { hosts: ['api.example.com'], ports, resolution: 'DNS' }),
      serviceEntry('wiki', { hosts: ['*.wikipedia.org'], ports, resolution: 'NONE' }),
    ]);
    const rendered = renderForProxy(push, SIDECAR);
    assert.deepEqual(violations(rendered), []);
    const listener = resource(rendered, LISTENER_TYPE, '0.0.0.0_443');
    assert.deepEqual((listener['listener_filters'] as JsonObject[]).map((f) => f['name']), ['envoy.filters.listener.tls_inspector']);
    const chains = listener['filter_chains'] as JsonObject[];
    assert.deepEqual(chains.map((c) => [c['filter_chain_match'], firstFilter(c)['cluster']]), [
      [{ server_names: ['*.wikipedia.org'] }, 'outbound|443||*.wikipedia.org'],
      [{ server_names: ['api.example.com'] }, 'outbound|443||api.example.com'],
      [undefined, 'PassthroughCluster'],
    ]);
  });

  it('a Kubernetes service keeps its hostname when a ServiceEntry claims it too', () => {
    const push = pushOf([
      service('reviews', 'default', [{ name: 'http', port: 9080, targetPort: 9080 }], '10.96.0.9'),
      serviceEntry('shadow', { hosts: ['reviews.default.svc.cluster.local'], ports: [{ number: 9080, name: 'http' }], resolution: 'DNS' }),
    ]);
    assert.equal(push.serviceByHost.get('reviews.default.svc.cluster.local')?.resolution, undefined);
  });
});

describe('YAML as Kubernetes reads it', () => {
  it('takes an unquoted IPv6 address ending in :: in a flow list as the address, as Go does, and leaves real maps alone', () => {
    const text = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: v6, namespace: default }
spec:
  hosts: [v6.example.com]
  addresses: [192.0.2.10, 001:db8::, 2001:db8::]
  ports: [{ number: 443, name: https, protocol: TLS }]
  resolution: NONE
  subjectAltNames: [a: b]
`;
    const read = readObjectsFromText(text, 'v6.yaml');
    assert.ok(read.ok);
    const spec = (read.objects[0]?.object as { spec: { addresses: unknown[]; subjectAltNames: unknown[] } } | undefined)?.spec;
    assert.deepEqual(spec?.addresses, ['192.0.2.10', '001:db8::', '2001:db8::']);
    // A pair with a space after its colon is a map in Go's reading too.
    assert.deepEqual(spec.subjectAltNames, [{ a: 'b' }]);
    const converted = convertObjects(read.objects);
    assert.deepEqual(converted.rejected.filter((r) => r.object.includes('v6')).flatMap((r) => r.issues.map((i) => i.path)), ['spec.subjectAltNames[0]']);
  });
});

describe('a ServiceEntry without ports', () => {
  it('is valid, as in Istio, serves nothing, and says so with MP_RULE_INEFFECTIVE', () => {
    const converted = convertObjects([{ object: serviceEntry('e', { hosts: ['a.example.com'], resolution: 'DNS' }), source: { origin: 'file', location: 'entries.yaml' } }]);
    assert.deepEqual(converted.rejected, []);
    const warnings = converted.warnings.flatMap((w) => w.issues);
    assert.deepEqual(warnings.map((i) => [i.code, i.path]), [['MP_RULE_INEFFECTIVE', 'spec.ports']]);
    assert.deepEqual(converted.services.flatMap((s) => s.ports), []);
  });
});

describe('ServiceEntry and WorkloadEntry mistakes', () => {
  const ports = [{ number: 443, name: 'tls', protocol: 'TLS' }];
  const mistakes: [string, K8sObject, string, RegExp][] = [
    ['no hosts', serviceEntry('e', { ports }), 'spec.hosts', /is required/],
    ['the host "*"', serviceEntry('e', { hosts: ['*'], ports }), 'spec.hosts[0]', /not a valid host/],
    ['ports that are not a list', serviceEntry('e', { hosts: ['a.example.com'], ports: { https: 443 } }), 'spec.ports', /must be a list/],
    ['a port without a name', serviceEntry('e', { hosts: ['a.example.com'], ports: [{ number: 443 }] }), 'spec.ports[0].name', /is required/],
    ['a port number listed twice', serviceEntry('e', { hosts: ['a.example.com'], ports: [...ports, { number: 443, name: 'other' }] }), 'spec.ports[1].number', /listed twice/],
    ['an unknown protocol', serviceEntry('e', { hosts: ['a.example.com'], ports: [{ number: 443, name: 'x', protocol: 'QUIC' }] }), 'spec.ports[0].protocol', /not a protocol/],
    ['a misspelt resolution', serviceEntry('e', { hosts: ['a.example.com'], ports, resolution: 'DNS_RR' }), 'spec.resolution', /one of NONE, STATIC, DNS, DNS_ROUND_ROBIN/],
    ['an unknown location', serviceEntry('e', { hosts: ['a.example.com'], ports, location: 'OUTSIDE' }), 'spec.location', /MESH_EXTERNAL/],
    ['a DNS name as a STATIC endpoint', serviceEntry('e', { hosts: ['a.example.com'], ports, resolution: 'STATIC', endpoints: [{ address: 'db.example.com' }] }), 'spec.endpoints[0].address', /use resolution DNS/],
    ['a wildcard host resolved by DNS without endpoints', serviceEntry('e', { hosts: ['*.example.com'], ports, resolution: 'DNS' }), 'spec.hosts[0]', /cannot be resolved by DNS/],
    ['two endpoints with DNS_ROUND_ROBIN', serviceEntry('e', { hosts: ['a.example.com'], ports, resolution: 'DNS_ROUND_ROBIN', endpoints: [{ address: 'x.example.com' }, { address: 'y.example.com' }] }), 'spec.endpoints', /at most one/],
    ['both workloadSelector and endpoints', serviceEntry('e', { hosts: ['a.example.com'], ports, resolution: 'STATIC', workloadSelector: { labels: { app: 'a' } }, endpoints: [{ address: '10.0.0.1' }] }), 'spec.workloadSelector', /cannot be used together/],
    ['an endpoint port naming no port of the entry', serviceEntry('e', { hosts: ['a.example.com'], ports, resolution: 'STATIC', endpoints: [{ address: '10.0.0.1', ports: { https: 8443 } }] }), 'spec.endpoints[0].ports.https', /use one of tls/],
    ['an address that is not an IP or CIDR', serviceEntry('e', { hosts: ['a.example.com'], ports, addresses: ['example'] }), 'spec.addresses[0]', /not an IP address or CIDR/],
    ['a Unix socket endpoint with a relative path', serviceEntry('e', { hosts: ['a.example.com'], ports, resolution: 'STATIC', endpoints: [{ address: 'unix://run/a.sock' }] }), 'spec.endpoints[0].address', /Unix domain socket/],
    ['exportTo "~" with a namespace', serviceEntry('e', { hosts: ['a.example.com'], ports, exportTo: ['~', 'shop'] }), 'spec.exportTo', /cannot be listed with other entries/],
    ['exportTo "*" with a namespace', serviceEntry('e', { hosts: ['a.example.com'], ports, exportTo: ['*', 'shop'] }), 'spec.exportTo', /cannot be listed with other entries/],
    ['exportTo naming no namespace', serviceEntry('e', { hosts: ['a.example.com'], ports, exportTo: ['Shop'] }), 'spec.exportTo', /a namespace name/],
    ['exportTo an entry that is not a string', serviceEntry('e', { hosts: ['a.example.com'], ports, exportTo: [7] }), 'spec.exportTo[0]', /must be a string/],
    ['a WorkloadEntry without an address', workloadEntry('vm', { labels: { app: 'a' } }), 'spec.address', /is required/],
    ['a WorkloadEntry on a Unix socket that is a directory', workloadEntry('vm', { address: 'unix:///var/run/' }), 'spec.address', /Unix domain socket/],
    ['a WorkloadEntry port that is not a number', workloadEntry('vm', { address: '10.0.0.1', ports: { http: 'eighty' } }), 'spec.ports.http', /port number/],
  ];
  for (const [what, object, path, message] of mistakes) {
    it(`rejects ${what} with MP_RULE_INVALID at ${path}`, () => {
      const converted = convertObjects([{ object, source: { origin: 'file', location: 'entries.yaml' } }]);
      assert.deepEqual(converted.services, []);
      const issue = converted.rejected[0]?.issues.find((i) => i.path === path);
      assert.equal(issue?.code, 'MP_RULE_INVALID', JSON.stringify(converted.rejected));
      assert.match(issue.message, message);
    });
  }
});

describe('proxyless gRPC clients reach services outside Kubernetes', () => {
  let dir: MeshDir;
  let vms: Backend[];
  let partner: Backend;
  let meshpilot: Awaited<ReturnType<typeof startMeshpilot>>;
  const node = { nodeId: 'sidecar~127.0.0.20~frontend-0.default~default.svc.cluster.local', metadata: { GENERATOR: 'grpc' } };

  before(async () => {
    vms = await startBackends(['billing-vm-1', 'billing-vm-2']);
    partner = await startBackend('partner', '127.0.0.1');
    dir = await MeshDir.create();
    await dir.write('entries.yaml', [
      serviceEntry('billing', {
        hosts: ['billing.vms.example.com'],
        location: 'MESH_INTERNAL',
        resolution: 'STATIC',
        ports: [{ number: 8080, name: 'grpc', protocol: 'GRPC' }],
        workloadSelector: { labels: { app: 'billing' } },
      }),
      ...vms.map((vm, i) => workloadEntry(`billing-vm-${i + 1}`, { address: vm.host, labels: { app: 'billing', version: `v${i + 1}` }, ports: { grpc: vm.port } })),
      rule('DestinationRule', 'billing', 'default', { host: 'billing.vms.example.com', subsets: [{ name: 'v2', labels: { version: 'v2' } }] }),
      serviceEntry('partner', {
        hosts: ['partner.example.com'],
        resolution: 'DNS',
        ports: [{ number: 50051, name: 'grpc', protocol: 'GRPC' }],
        endpoints: [{ address: 'localhost', ports: { grpc: partner.port } }],
      }),
    ]);
    meshpilot = await startMeshpilot(dir.path);
  });

  after(async () => {
    await meshpilot.close();
    await Promise.all([...vms, partner].map((b) => b.close()));
    await dir.remove();
  });

  it('calls both VMs of a STATIC entry found through their WorkloadEntries', async () => {
    const client = new GrpcXdsCaller('xds:///billing.vms.example.com:8080', { xdsPort: meshpilot.xdsPort, ...node });
    try {
      const counts = await client.tally(40);
      assert.deepEqual([...counts.keys()].sort(), ['billing-vm-1', 'billing-vm-2']);
    } finally {
      client.close();
    }
  });

  it('follows a VirtualService to one VM subset of the entry', async () => {
    await dir.write('routes.yaml', [
      rule('VirtualService', 'billing', 'default', { hosts: ['billing.vms.example.com'], http: [{ route: [{ destination: { host: 'billing.vms.example.com', subset: 'v2' } }] }] }),
    ]);
    const client = new GrpcXdsCaller('xds:///billing.vms.example.com:8080', { xdsPort: meshpilot.xdsPort, ...node });
    try {
      await eventually(async () => ((await client.tally(10)).get('billing-vm-2') === 10 ? true : undefined), 10_000, 'routing to v2');
      const counts = await client.tally(20);
      assert.deepEqual([...counts], [['billing-vm-2', 20]]);
    } finally {
      client.close();
    }
  });

  it('lists the entries\' hosts in /debug/registryz with their resolution, location and WorkloadEntry endpoints', async () => {
    const body = (await (await meshpilot.admin('/debug/registryz')).json()) as {
      services: { hostname: string; resolution: string | null; meshExternal: boolean; endpoints: { address: string; workload: string | null }[] }[];
    };
    const billing = body.services.find((s) => s.hostname === 'billing.vms.example.com');
    assert.equal(billing?.resolution, 'STATIC');
    assert.equal(billing.meshExternal, false);
    assert.deepEqual(billing.endpoints.map((e) => e.workload), ['default/billing-vm-1', 'default/billing-vm-2']);
    assert.equal(body.services.find((s) => s.hostname === 'partner.example.com')?.meshExternal, true);
  });

  it('reaches a DNS entry through a LOGICAL_DNS cluster the client resolves itself', async () => {
    const client = new GrpcXdsCaller('xds:///partner.example.com:50051', { xdsPort: meshpilot.xdsPort, ...node });
    try {
      assert.equal((await client.whoami()).name, 'partner');
    } finally {
      client.close();
    }
  });
});
