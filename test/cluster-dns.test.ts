// The conformance cluster's DNS, asked by a real resolver (Node's c-ares): Services by their
// cluster name, headless ones by their ready endpoints, everything else NXDOMAIN.
import assert from 'node:assert/strict';
import { Resolver } from 'node:dns/promises';
import { after, before, describe, it } from 'node:test';
import { ClusterDns } from './support/cluster-dns.ts';
import { FakeKubeApi } from './support/fake-kube-api.ts';

describe('the cluster DNS of the conformance cluster', () => {
  let api: FakeKubeApi;
  let dns: ClusterDns;
  let resolver: Resolver;

  before(async () => {
    api = await FakeKubeApi.start();
    api.apply({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'echo', namespace: 'mesh' }, spec: { clusterIP: '203.0.113.140', ports: [{ port: 80 }] } });
    api.apply({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'db', namespace: 'mesh' }, spec: { clusterIP: 'None', ports: [{ port: 5432 }] } });
    api.apply({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: 'db-1', namespace: 'mesh', labels: { 'kubernetes.io/service-name': 'db' } },
      addressType: 'IPv4',
      endpoints: [
        { addresses: ['198.51.100.20'], conditions: { ready: true } },
        { addresses: ['198.51.100.21'], conditions: { ready: false } },
      ],
      ports: [{ port: 5432 }],
    });
    dns = await ClusterDns.start(api, '127.0.0.1', 0);
    resolver = new Resolver({ timeout: 2000, tries: 1 });
    resolver.setServers([`127.0.0.1:${String(dns.port)}`]);
  });
  after(async () => {
    await dns.close();
    await api.close();
  });

  it("answers a Service's cluster name with its cluster IP", async () => {
    assert.deepEqual(await resolver.resolve4('echo.mesh.svc.cluster.local'), ['203.0.113.140']);
    assert.deepEqual(await resolver.resolve4('ECHO.Mesh.svc.cluster.local'), ['203.0.113.140']);
  });

  it('answers a headless Service with its ready endpoints only', async () => {
    assert.deepEqual(await resolver.resolve4('db.mesh.svc.cluster.local'), ['198.51.100.20']);
  });

  it('has no IPv6 address for a Service, and no name for anything else', async () => {
    await assert.rejects(resolver.resolve6('echo.mesh.svc.cluster.local'), { code: 'ENODATA' });
    await assert.rejects(resolver.resolve4('echo.other.svc.cluster.local'), { code: 'ENOTFOUND' });
    await assert.rejects(resolver.resolve4('echo'), { code: 'ENOTFOUND' });
  });

  it("gives a pod of a namespace Kubernetes' search path", () => {
    assert.equal(dns.resolvConf('mesh'), 'nameserver 127.0.0.1\nsearch mesh.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n');
  });
});
