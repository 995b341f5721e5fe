// An iptables-intercepted Envoy sidecar: outbound connections arrive on virtualOutbound (15001)
// and are handed to the listener of their original destination; inbound ones arrive on
// virtualInbound (15006) and reach the proxy's own workload through inbound clusters.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildPushContext, type PushContext } from '../src/model/push-context.ts';
import { parseProxy } from '../src/model/proxy.ts';
import { convertObjects } from '../src/sources/kube-objects.ts';
import type { JsonObject } from '../src/xds/proto-json.ts';
import { renderForProxy } from '../src/xds/render.ts';
import { CLUSTER_TYPE, LISTENER_TYPE } from '../src/xds/type-urls.ts';
import { endpointSlice, pod, service } from './support/mesh-dir.ts';
import { firstFilter, resource, violations } from './support/rendered.ts';

const ORIGINAL_DST = 'type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst';

function shop(): PushContext {
  const objects = [
    service('ratings', 'shop', [{ name: 'http', port: 9080, targetPort: 8080 }, { name: 'tcp-metrics', port: 9100, targetPort: 9100 }], '10.96.5.1'),
    pod('ratings-v1-0', 'shop', '10.244.3.7', { app: 'ratings', version: 'v1' }),
    {
      ...endpointSlice('ratings', 'shop', { name: 'http', port: 8080 }, [{ name: 'ratings-v1-0', ip: '10.244.3.7' }]),
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }, { name: 'tcp-metrics', port: 9100, protocol: 'TCP' }],
    },
  ];
  const converted = convertObjects(objects.map((object) => ({ object, source: { origin: 'file' as const, location: 'shop.yaml' } })));
  assert.deepEqual(converted.rejected, []);
  return buildPushContext(converted);
}

const RATINGS_POD = parseProxy('sidecar~10.244.3.7~ratings-v1-0.shop~shop.svc.cluster.local');

function chains(listener: JsonObject): JsonObject[] {
  return listener['filter_chains'] as JsonObject[];
}

describe('the ratings pod\'s sidecar', () => {
  it('passes Envoy\'s validate.rules and cross-references', () => {
    assert.deepEqual(violations(renderForProxy(shop(), RATINGS_POD)), []);
  });

  it('listens on 15006 and restores each connection\'s original destination with the original_dst listener filter', () => {
    const inbound = resource(renderForProxy(shop(), RATINGS_POD), LISTENER_TYPE, 'virtualInbound');
    assert.deepEqual(inbound['address'], { socket_address: { address: '0.0.0.0', port_value: 15006 } });
    assert.equal(inbound['traffic_direction'], 'INBOUND');
    assert.deepEqual(inbound['listener_filters'], [{ name: 'envoy.filters.listener.original_dst', typed_config: { '@type': ORIGINAL_DST } }]);
  });

  it('picks a filter chain by the workload port the caller dialled, and forwards HTTP to inbound|8080|| with Istio\'s inbound route', () => {
    const inbound = resource(renderForProxy(shop(), RATINGS_POD), LISTENER_TYPE, 'virtualInbound');
    const http = chains(inbound).find((c) => c['name'] === '0.0.0.0_8080');
    assert.deepEqual(http?.['filter_chain_match'], { destination_port: 8080 });
    const hcm = firstFilter(http);
    assert.equal(hcm['stat_prefix'], 'inbound_0.0.0.0_8080');
    assert.equal(hcm['rds'], undefined);
    const routeConfig = hcm['route_config'] as JsonObject;
    const [vhost] = routeConfig['virtual_hosts'] as JsonObject[];
    assert.deepEqual(vhost?.['domains'], ['*']);
    assert.equal(routeConfig['name'], 'inbound|8080||');
    const [route] = vhost['routes'] as JsonObject[];
    // No timeout, the grpc-timeout header unbounded, requests reset before the application saw them retried.
    assert.deepEqual(route?.['route'], {
      cluster: 'inbound|8080||',
      timeout: '0s',
      max_stream_duration: { max_stream_duration: '0s', grpc_timeout_header_max: '0s' },
      retry_policy: { retry_on: 'reset-before-request', num_retries: 2 },
    });
    assert.deepEqual(route['decorator'], { operation: 'ratings.shop.svc.cluster.local:9080/*' });
  });

  it('proxies a TCP port byte for byte and passes unknown ports through from 127.0.0.6', () => {
    const rendered = renderForProxy(shop(), RATINGS_POD);
    const inbound = resource(rendered, LISTENER_TYPE, 'virtualInbound');
    const tcp = chains(inbound).find((c) => c['name'] === '0.0.0.0_9100');
    assert.equal(firstFilter(tcp)['cluster'], 'inbound|9100||');
    const catchAll = chains(inbound).at(-1);
    assert.equal(catchAll?.['filter_chain_match'], undefined);
    assert.equal(firstFilter(catchAll)['cluster'], 'InboundPassthroughCluster');
    const passthrough = resource(rendered, CLUSTER_TYPE, 'InboundPassthroughCluster');
    assert.equal(passthrough['type'], 'ORIGINAL_DST');
    assert.deepEqual(passthrough['upstream_bind_config'], { source_address: { address: '127.0.0.6', port_value: 0 } });
  });

  it('delivers inbound requests to the application on localhost at its own port', () => {
    const cluster = resource(renderForProxy(shop(), RATINGS_POD), CLUSTER_TYPE, 'inbound|8080||');
    assert.equal(cluster['type'], 'STATIC');
    assert.deepEqual(cluster['load_assignment'], {
      cluster_name: 'inbound|8080||',
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: 8080 } } } }] }],
    });
  });

  it('has outbound listeners that do not bind, so virtualOutbound (use_original_dst) hands them connections', () => {
    const rendered = renderForProxy(shop(), RATINGS_POD);
    assert.equal(resource(rendered, LISTENER_TYPE, 'virtualOutbound')['use_original_dst'], true);
    for (const name of ['0.0.0.0_9080', '10.96.5.1_9100']) assert.equal(resource(rendered, LISTENER_TYPE, name)['bind_to_port'], false, name);
  });
});

describe('other proxies', () => {
  it('a proxy whose IP no endpoint has is found by its labels in its namespace', () => {
    const vm = parseProxy('sidecar~192.168.1.50~ratings-vm.shop~shop.svc.cluster.local', { LABELS: { app: 'ratings', version: 'v1' } });
    const names = renderForProxy(shop(), vm)[CLUSTER_TYPE].map((c) => c.name).filter((n) => n.startsWith('inbound|'));
    assert.deepEqual(names, ['inbound|8080||', 'inbound|9100||']);
  });

  it('a proxy that serves no service only has the passthrough chain, and a gRPC client has no inbound side at all', () => {
    const stranger = parseProxy('sidecar~10.244.9.9~job-0.batch~batch.svc.cluster.local');
    const inbound = resource(renderForProxy(shop(), stranger), LISTENER_TYPE, 'virtualInbound');
    assert.deepEqual(chains(inbound).map((c) => c['name']), ['virtualInbound-catchall']);
    const grpc = parseProxy('sidecar~10.244.3.7~ratings-v1-0.shop~shop.svc.cluster.local', { GENERATOR: 'grpc' });
    const rendered = renderForProxy(shop(), grpc, ['ratings.shop.svc.cluster.local:9080']);
    assert.ok(rendered[CLUSTER_TYPE].every((c) => c.name.startsWith('outbound|')));
  });
});
