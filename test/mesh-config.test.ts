// A platform team's MeshConfig (`--mesh-config`): JSON access logs, 10% trace sampling, a 5 s
// connect timeout, and REGISTRY_ONLY so that only registered hosts can be called.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { DEFAULT_MESH_CONFIG, type MeshConfig } from '../src/model/mesh-config.ts';
import { buildPushContext, type PushContext } from '../src/model/push-context.ts';
import { parseProxy } from '../src/model/proxy.ts';
import { loadDirectory } from '../src/sources/config-dir.ts';
import { loadMeshConfigFile, readMeshConfig } from '../src/sources/mesh-config-file.ts';
import type { JsonObject } from '../src/xds/proto-json.ts';
import { renderForProxy } from '../src/xds/render.ts';
import { CLUSTER_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../src/xds/type-urls.ts';
import { RawAdsClient } from './support/ads-client.ts';
import { MeshDir } from './support/mesh-dir.ts';
import { startMeshpilot } from './support/meshpilot.ts';
import { firstFilter, resource, violations, virtualHost } from './support/rendered.ts';

const FIXTURES = new URL('../fixtures/', import.meta.url).pathname;
const MESH_FILE = `${FIXTURES}registry-only/istio-configmap.yaml`;
const SIDECAR = parseProxy('sidecar~10.244.0.20~productpage-v1-6b746f74dc-9stvs.default~default.svc.cluster.local');
const FILE_ACCESS_LOG = 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog';

function hcmOf(listener: JsonObject): JsonObject {
  return firstFilter((listener['filter_chains'] as JsonObject[])[0]);
}

describe('the registry-only fixture with its MeshConfig', () => {
  let push: PushContext;
  let mesh: MeshConfig;
  before(async () => {
    mesh = await loadMeshConfigFile(MESH_FILE);
    push = buildPushContext(await loadDirectory(`${FIXTURES}registry-only`), mesh);
  });

  it('reads the mesh settings out of the istio ConfigMap', () => {
    assert.equal(mesh.outboundTrafficPolicy, 'REGISTRY_ONLY');
    assert.equal(mesh.tracingSampling, 10);
    assert.equal(mesh.connectTimeout, '5s');
    assert.equal(mesh.accessLog?.encoding, 'JSON');
  });

  it('passes Envoy\'s validate.rules and cross-references', () => {
    assert.deepEqual(violations(renderForProxy(push, SIDECAR)), []);
  });

  it('drops connections to unregistered addresses: virtualOutbound\'s own chain goes to BlackHoleCluster', () => {
    const outbound = resource(renderForProxy(push, SIDECAR), LISTENER_TYPE, 'virtualOutbound');
    assert.equal(outbound['use_original_dst'], true);
    const chain = (outbound['filter_chains'] as JsonObject[])[0];
    assert.equal(chain?.['name'], 'BlackHoleFilterChain');
    assert.equal(firstFilter(chain)['cluster'], 'BlackHoleCluster');
  });

  it('answers HTTP requests for unregistered hosts with 502 from the block_all virtual host', () => {
    const route = resource(renderForProxy(push, SIDECAR), ROUTE_TYPE, '80');
    const vhosts = route['virtual_hosts'] as JsonObject[];
    assert.deepEqual(vhosts.at(-1), { name: 'block_all', domains: ['*'], routes: [{ name: 'block_all', match: { prefix: '/' }, direct_response: { status: 502 } }] });
    // The registered external host is still routed, by its name only.
    assert.deepEqual(virtualHost(route, 'api.payments.example.com:80')['domains'], ['api.payments.example.com', 'api.payments.example.com:80']);
  });

  it('writes JSON access log lines with the configured fields from every HTTP connection manager and TCP proxy', () => {
    const rendered = renderForProxy(push, SIDECAR);
    const expected = [
      {
        name: 'envoy.access_loggers.file',
        typed_config: {
          '@type': FILE_ACCESS_LOG,
          path: '/dev/stdout',
          log_format: {
            json_format: {
              start: '%START_TIME%', method: '%REQ(:METHOD)%', authority: '%REQ(:AUTHORITY)%', code: '%RESPONSE_CODE%', flags: '%RESPONSE_FLAGS%', upstream: '%UPSTREAM_CLUSTER%',
            },
          },
        },
      },
    ];
    assert.deepEqual(hcmOf(resource(rendered, LISTENER_TYPE, '0.0.0.0_80'))['access_log'], expected);
    assert.deepEqual(hcmOf(resource(rendered, LISTENER_TYPE, '0.0.0.0_443'))['access_log'], expected);
    assert.deepEqual(hcmOf(resource(rendered, LISTENER_TYPE, 'virtualOutbound'))['access_log'], expected);
  });

  it('samples 10% of requests for tracing (random_sampling is a percentage)', () => {
    const hcm = hcmOf(resource(renderForProxy(push, SIDECAR), LISTENER_TYPE, '0.0.0.0_9080'));
    assert.deepEqual(hcm['tracing'], { random_sampling: { value: 10 } });
  });

  it('gives every cluster the 5 s connect timeout', () => {
    const clusters = renderForProxy(push, SIDECAR)[CLUSTER_TYPE];
    assert.ok(clusters.length >= 5);
    for (const cluster of clusters) assert.equal(cluster.json['connect_timeout'], '5s', cluster.name);
  });
});

describe('without a MeshConfig, Istio\'s defaults', () => {
  it('pass unknown destinations through (ALLOW_ANY), log nothing, sample 1%, and wait 10 s to connect', async () => {
    const rendered = renderForProxy(buildPushContext(await loadDirectory(`${FIXTURES}bookinfo`)), SIDECAR);
    const outbound = resource(rendered, LISTENER_TYPE, 'virtualOutbound');
    assert.equal(firstFilter((outbound['filter_chains'] as JsonObject[])[0])['cluster'], 'PassthroughCluster');
    const route = resource(rendered, ROUTE_TYPE, '9080');
    assert.deepEqual(virtualHost(route, 'allow_any')['routes'], [{ name: 'allow_any', match: { prefix: '/' }, route: { cluster: 'PassthroughCluster', timeout: '0s' } }]);
    const hcm = hcmOf(resource(rendered, LISTENER_TYPE, '0.0.0.0_9080'));
    assert.equal(hcm['access_log'], undefined);
    assert.deepEqual(hcm['tracing'], { random_sampling: { value: 1 } });
    assert.equal(resource(rendered, CLUSTER_TYPE, 'PassthroughCluster')['connect_timeout'], '10s');
  });
});

describe('MeshConfig files', () => {
  it('accept the MeshConfig itself, or inside meshConfig: as an IstioOperator writes it', () => {
    const plain = readMeshConfig({ accessLogFile: '/dev/stdout', connectTimeout: '250ms' }, 'mesh.yaml');
    assert.equal(plain.meshConfig?.connectTimeout, '0.250s');
    assert.equal(plain.meshConfig.accessLog?.encoding, 'TEXT');
    assert.equal(typeof plain.meshConfig.accessLog.format, 'string');
    assert.match(plain.meshConfig.accessLog.format as string, /%RESPONSE_CODE%/);
    const wrapped = readMeshConfig({ meshConfig: { outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' } } }, 'operator.yaml');
    assert.equal(wrapped.meshConfig?.outboundTrafficPolicy, 'REGISTRY_ONLY');
    assert.deepEqual(readMeshConfig({}, 'empty.yaml').meshConfig, { ...DEFAULT_MESH_CONFIG, source: 'empty.yaml' });
  });

  const mistakes: [string, unknown, string, RegExp][] = [
    ['an unknown outbound mode', { outboundTrafficPolicy: { mode: 'DENY' } }, 'outboundTrafficPolicy.mode', /ALLOW_ANY or REGISTRY_ONLY/],
    ['a sampling rate above 100', { defaultConfig: { tracing: { sampling: 150 } } }, 'defaultConfig.tracing.sampling', /0 to 100/],
    ['a connect timeout that is not a duration', { connectTimeout: 'soon' }, 'connectTimeout', /positive duration/],
    ['a connect timeout Envoy cannot hold', { connectTimeout: '10000000000s' }, 'connectTimeout', /longer than Envoy accepts/],
    ['an unknown log encoding', { accessLogFile: '/dev/stdout', accessLogEncoding: 'XML' }, 'accessLogEncoding', /TEXT or JSON/],
    ['a JSON log format that is not JSON', { accessLogFile: '/dev/stdout', accessLogEncoding: 'JSON', accessLogFormat: '{code: %RESPONSE_CODE%}' }, 'accessLogFormat', /not a JSON object/],
  ];
  for (const [what, document, path, message] of mistakes) {
    it(`reject ${what} with MP_MESH_CONFIG_INVALID at ${path}`, () => {
      const { meshConfig, issues } = readMeshConfig({ meshConfig: document }, 'mesh.yaml');
      assert.equal(meshConfig, undefined);
      assert.equal(issues[0]?.code, 'MP_MESH_CONFIG_INVALID');
      assert.equal(issues[0].path, `meshConfig.${path}`);
      assert.match(issues[0].message, message);
    });
  }

  it('refuse to start from a missing file, naming the flag', async () => {
    await assert.rejects(loadMeshConfigFile('/nonexistent/mesh.yaml'), /MP_CONFIG: --mesh-config \/nonexistent\/mesh.yaml cannot be read \(ENOENT\)/);
  });
});

describe('meshpilot serve --mesh-config', () => {
  it('serves sidecars the MeshConfig\'s REGISTRY_ONLY virtualOutbound over ADS', async () => {
    const meshpilot = await startMeshpilot(`${FIXTURES}registry-only`, { meshConfig: MESH_FILE });
    const ads = new RawAdsClient(meshpilot.xdsPort, SIDECAR.id);
    try {
      ads.send({ typeUrl: LISTENER_TYPE });
      const response = await ads.next((r) => r.type_url === LISTENER_TYPE);
      const outbound = response.resources.find((r) => r['name'] === 'virtualOutbound');
      assert.equal(firstFilter((outbound?.['filter_chains'] as JsonObject[])[0])['cluster'], 'BlackHoleCluster');
    } finally {
      ads.close();
      await meshpilot.close();
    }
  });

  it('refuses to start with an invalid MeshConfig, listing the field', async () => {
    const dir = await MeshDir.create();
    try {
      await dir.write('mesh.yaml', 'outboundTrafficPolicy:\n  mode: DENY\nconnectTimeout: soon\n');
      await assert.rejects(
        startMeshpilot(`${FIXTURES}registry-only`, { meshConfig: `${dir.path}/mesh.yaml` }),
        /MP_MESH_CONFIG_INVALID: .*mesh\.yaml: outboundTrafficPolicy\.mode: must be ALLOW_ANY or REGISTRY_ONLY.*; connectTimeout: must be a positive duration/,
      );
    } finally {
      await dir.remove();
    }
  });
});
