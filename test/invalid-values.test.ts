// Invalid values are never served silently: each is reported with its code, file, object and
// field, what proxies get does not change, and `meshpilot analyze` says exactly what a freshly
// started `meshpilot serve` says about the same directory.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { analyzeDirectory, type Finding } from '../src/commands/analyze.ts';
import { buildPushContext } from '../src/model/push-context.ts';
import type { FakeKubeApi } from './support/fake-kube-api.ts';
import { startClusterMesh } from './support/fake-kube-api-meshpilot.ts';
import { MeshDir, endpointSlice, eventually, pod, rule, service, type K8sObject } from './support/mesh-dir.ts';
import { startMeshpilot, type TestMeshpilot } from './support/meshpilot.ts';
import { servedVersions } from './support/rendered.ts';

const NS = 'default';
const ratings = service('ratings', NS, [{ name: 'http', port: 9080, targetPort: 9080 }], '10.96.0.31');
const BASE: K8sObject[] = [
  service('reviews', NS, [{ name: 'http', port: 9080, targetPort: 9080 }], '10.96.0.30'),
  ratings,
  ...['v1', 'v2'].map((v, i) => pod(`reviews-${v}-0`, NS, `10.244.0.${10 + i}`, { app: 'reviews', version: v })),
  endpointSlice('reviews', NS, { name: 'http', port: 9080 }, [{ name: 'reviews-v1-0', ip: '10.244.0.10' }, { name: 'reviews-v2-0', ip: '10.244.0.11' }]),
  rule('DestinationRule', 'reviews', NS, { host: 'reviews', subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }] }),
  rule('VirtualService', 'reviews', NS, {
    hosts: ['reviews'],
    http: [{ match: [{ headers: { 'end-user': { exact: 'jason' } } }], route: [{ destination: { host: 'reviews', subset: 'v2' } }] }, { route: [{ destination: { host: 'reviews', subset: 'v1' } }] }],
  }),
];
const TARGETS = ['reviews.default.svc.cluster.local:9080'];

const slice = (patch: Record<string, unknown>): K8sObject => ({ ...endpointSlice('ratings', NS, { name: 'http', port: 9080 }, [{ name: 'ratings-v1-0', ip: '10.244.0.20' }]), ...patch });
const named = (object: K8sObject, name: unknown): K8sObject => ({ ...object, metadata: { ...(object['metadata'] as object), name } });
const se = (spec: Record<string, unknown>): K8sObject => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'ServiceEntry',
  metadata: { name: 'partner', namespace: NS },
  spec: { hosts: ['partner.example.com'], ports: [{ number: 443, name: 'tls', protocol: 'TLS' }], resolution: 'DNS', ...spec },
});

interface Case {
  readonly what: string;
  /** Files added next to base.yaml (a later-sorting name unless the case is about order). */
  readonly files: Readonly<Record<string, K8sObject[]>>;
  readonly expect: { readonly severity: 'error' | 'warning'; readonly code: string; readonly file: string; readonly object: string; readonly path: string; readonly message?: RegExp };
  /** Where the error lands when the directory is read fresh, if not where it lands after the edit. */
  readonly freshFile?: string;
}

const CASES: readonly Case[] = [
  { what: 'endpoints: x empties an EndpointSlice', files: { 'x.yaml': [slice({ endpoints: 'x' })] }, expect: { severity: 'error', code: 'MP_OBJECT_INVALID', file: 'x.yaml', object: 'EndpointSlice default/ratings-abcde', path: 'endpoints' } },
  {
    what: 'an endpoint address not-an-ip',
    files: { 'x.yaml': [slice({ endpoints: [{ addresses: ['not-an-ip'] }] })] },
    expect: { severity: 'error', code: 'MP_OBJECT_INVALID', file: 'x.yaml', object: 'EndpointSlice default/ratings-abcde', path: 'endpoints[0].addresses[0]' },
  },
  {
    what: 'an endpoint address 999.1.1.1',
    files: { 'x.yaml': [slice({ endpoints: [{ addresses: ['999.1.1.1'] }] })] },
    expect: { severity: 'error', code: 'MP_OBJECT_INVALID', file: 'x.yaml', object: 'EndpointSlice default/ratings-abcde', path: 'endpoints[0].addresses[0]' },
  },
  { what: 'a pod IP 10.244.0.300', files: { 'x.yaml': [pod('ratings-v1-0', NS, '10.244.0.300', { app: 'ratings' })] }, expect: { severity: 'error', code: 'MP_OBJECT_INVALID', file: 'x.yaml', object: 'Pod default/ratings-v1-0', path: 'status.podIP' } },
  ...['rat ings', 'ratings\n', 'rat\u0000ings', '../ratings', 'Ratings'].map((name): Case => ({
    what: `a Service named ${JSON.stringify(name)}`,
    files: { 'x.yaml': [named(service('other', NS, [{ name: 'http', port: 9080, targetPort: 9080 }], '10.96.0.32'), name)] },
    expect: { severity: 'error', code: 'MP_OBJECT_INVALID', file: 'x.yaml', object: `Service default/${name}`, path: 'metadata.name', message: /DNS-1035 label/ },
  })),
  { what: 'name: 7', files: { 'x.yaml': [named(service('other', NS, [{ name: 'http', port: 9080, targetPort: 9080 }], '10.96.0.32'), 7)] }, expect: { severity: 'error', code: 'MP_OBJECT_INVALID', file: 'x.yaml', object: 'Service in document 1', path: 'metadata.name', message: /must be a string, got number 7/ } },
  { what: 'a label value that is a number', files: { 'x.yaml': [pod('ratings-v1-0', NS, '10.244.0.20', { version: 2 as unknown as string })] }, expect: { severity: 'error', code: 'MP_OBJECT_INVALID', file: 'x.yaml', object: 'Pod default/ratings-v1-0', path: 'metadata.labels.version' } },
  {
    what: 'a timeout of 99999999999999h',
    files: { 'x.yaml': [rule('VirtualService', 'ratings', NS, { hosts: ['ratings'], http: [{ route: [{ destination: { host: 'ratings' } }], timeout: '99999999999999h' }] })] },
    expect: { severity: 'error', code: 'MP_RULE_INVALID', file: 'x.yaml', object: 'VirtualService default/ratings', path: 'spec.http[0].timeout', message: /protobuf's largest duration/ },
  },
  { what: 'ServiceEntry addresses: x', files: { 'x.yaml': [se({ addresses: 'x' })] }, expect: { severity: 'error', code: 'MP_RULE_INVALID', file: 'x.yaml', object: 'ServiceEntry default/partner', path: 'spec.addresses' } },
  {
    what: 'kind: VirtualServce',
    files: { 'x.yaml': [{ ...rule('VirtualService', 'ratings', NS, { hosts: ['ratings'], http: [{ route: [{ destination: { host: 'ratings' } }] }] }), kind: 'VirtualServce' }] },
    expect: { severity: 'error', code: 'MP_OBJECT_INVALID', file: 'x.yaml', object: 'VirtualServce default/ratings', path: 'kind', message: /did you mean "VirtualService"/ },
  },
  {
    what: 'kind: RouteRul in config.istio.io',
    files: { 'x.yaml': [{ apiVersion: 'config.istio.io/v1alpha2', kind: 'RouteRul', metadata: { name: 'canary', namespace: NS }, spec: { destination: { name: 'reviews' } } }] },
    expect: { severity: 'error', code: 'MP_OBJECT_INVALID', file: 'x.yaml', object: 'RouteRul default/canary', path: 'kind', message: /did you mean "RouteRule"/ },
  },
  {
    what: 'kind: Servce in v1',
    files: { 'x.yaml': [{ ...service('other', NS, [{ name: 'http', port: 9080, targetPort: 9080 }], '10.96.0.32'), kind: 'Servce' }] },
    expect: { severity: 'error', code: 'MP_OBJECT_INVALID', file: 'x.yaml', object: 'Servce default/other', path: 'kind', message: /did you mean "Service"/ },
  },
  {
    what: 'a Gateway without servers',
    files: { 'x.yaml': [{ apiVersion: 'networking.istio.io/v1', kind: 'Gateway', metadata: { name: 'thing', namespace: NS }, spec: { selector: { istio: 'ingressgateway' } } }] },
    expect: { severity: 'error', code: 'MP_RULE_INVALID', file: 'x.yaml', object: 'Gateway default/thing', path: 'spec.servers', message: /at least one server/ },
  },
  ...(
    [
      ['networking.istio.io/v1alpha3', 'EnvoyFilter'], ['config.istio.io/v1alpha2', 'DestinationPolicy'],
      ['telemetry.istio.io/v1', 'Telemetry'], ['extensions.istio.io/v1alpha1', 'WasmPlugin'], ['security.istio.io/v1', 'RequestAuthentication'], ['networking.istio.io/v1beta1', 'ProxyConfig'],
      ['networking.istio.io/v1', 'WorkloadGroup'],
    ] as const
  ).map(([apiVersion, kind]): Case => ({
    what: `an unsupported ${kind}`,
    files: { 'x.yaml': [{ apiVersion, kind, metadata: { name: 'thing', namespace: NS }, spec: {} }] },
    expect: { severity: 'warning', code: 'MP_UNSUPPORTED', file: 'x.yaml', object: `${kind} default/thing`, path: 'kind', message: new RegExp(`${kind} is not implemented by meshpilot`) },
  })),
  {
    what: 'a second VirtualService reviews in an earlier-sorting file',
    files: { 'a.yaml': [rule('VirtualService', 'reviews', NS, { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v2' } }] }] })] },
    expect: { severity: 'error', code: 'MP_OBJECT_INVALID', file: 'a.yaml', object: 'VirtualService default/reviews', path: 'metadata.name', message: /defined twice, here and in base\.yaml/ },
    // Read fresh, the earlier-sorting file's copy is served and base.yaml's is the one reported.
    freshFile: 'base.yaml',
  },
];

function same(finding: Finding, expect: Case['expect']): boolean {
  return finding.severity === expect.severity && finding.code === expect.code && finding.file === expect.file && finding.object === expect.object && finding.path === expect.path;
}

interface Issue {
  readonly code: string;
  readonly path: string;
  readonly message: string;
}
interface Configz {
  rules: { kind: string; namespace: string; name: string; source: { location: string }; errors: Issue[]; warnings: Issue[] }[];
  rejected: { object: string; source: { location: string }; errors: Issue[]; warnings: Issue[] }[];
  objectWarnings: { object: string; source: { location: string }; warnings: Issue[] }[];
}

/** Every problem /debug/configz shows, as analyze lines (what gRPC clients lose is not a config problem, so it is left out). */
async function serveFindings(meshpilot: TestMeshpilot): Promise<string[]> {
  const configz = (await (await meshpilot.admin('/debug/configz')).json()) as Configz;
  const lines = (severity: string, file: string, object: string, issues: Issue[]): string[] =>
    issues.filter((i) => i.code !== 'MP_GRPC_DEGRADED').map((i) => `${severity} ${i.code} ${file} ${object} ${i.path}: ${i.message}`);
  return [
    ...configz.rules.flatMap((r) => [
      ...lines('error', r.source.location, `${r.kind} ${r.namespace}/${r.name}`, r.errors),
      ...lines('warning', r.source.location, `${r.kind} ${r.namespace}/${r.name}`, r.warnings),
    ]),
    ...configz.rejected.flatMap((r) => [...lines('error', r.source.location, r.object, r.errors), ...lines('warning', r.source.location, r.object, r.warnings)]),
    ...configz.objectWarnings.flatMap((w) => lines('warning', w.source.location, w.object, w.warnings)),
  ].sort();
}

function served(meshpilot: TestMeshpilot): string[] {
  return servedVersions(buildPushContext(meshpilot.store.current()), TARGETS);
}

describe('invalid values are reported, never served silently, and analyze agrees with serve', () => {
  const cleanup: (() => Promise<void>)[] = [];
  after(async () => {
    for (const step of cleanup) await step();
  });

  it('the table covers every example of the issue', () => {
    assert.ok(CASES.length >= 25, `${CASES.length} cases`);
  });

  for (const testCase of CASES) {
    it(`${testCase.what}: ${testCase.expect.severity} ${testCase.expect.code} at ${testCase.expect.path}; what is served stays as it was`, async () => {
      const dir = await MeshDir.create();
      cleanup.push(() => dir.remove());
      await dir.write('base.yaml', BASE);
      const running = await startMeshpilot(dir.path);
      cleanup.push(() => running.close());
      const before = served(running);
      for (const [file, objects] of Object.entries(testCase.files)) await dir.write(file, objects);
      const findings = await eventually(async () => {
        const all = await serveFindings(running);
        return all.some((line) => line.startsWith(`${testCase.expect.severity} ${testCase.expect.code} ${testCase.expect.file} ${testCase.expect.object} ${testCase.expect.path}:`)) ? all : undefined;
      }, 10_000, `${testCase.expect.code} at ${testCase.expect.path} in /debug/configz`);
      assert.deepEqual(served(running), before, 'proxies are served what they were served before');
      if (testCase.expect.message) assert.ok(findings.some((line) => testCase.expect.message?.test(line)), findings.join('\n'));

      const analyzed = await analyzeDirectory(dir.path);
      assert.ok(analyzed.some((f) => same(f, { ...testCase.expect, file: testCase.freshFile ?? testCase.expect.file })), JSON.stringify(analyzed));
      const fresh = await startMeshpilot(dir.path);
      cleanup.push(() => fresh.close());
      assert.deepEqual(
        analyzed.filter((f) => f.code !== 'MP_GRPC_DEGRADED').map((f) => `${f.severity} ${f.code} ${f.file} ${f.object} ${f.path}: ${f.message}`).sort(),
        await serveFindings(fresh),
        'analyze lists exactly what a freshly started serve reports',
      );
    });
  }
});

describe('the same from the Kubernetes API (the same converters)', () => {
  let api: FakeKubeApi;
  let meshpilot: TestMeshpilot;
  before(async () => {
    ({ api, meshpilot } = await startClusterMesh(BASE));
  });
  after(async () => {
    await meshpilot.close();
    await api.close();
  });

  const cases: readonly [string, K8sObject, string, string][] = [
    ['an EndpointSlice address not-an-ip', slice({ endpoints: [{ addresses: ['not-an-ip'] }] }), 'EndpointSlice default/ratings-abcde', 'endpoints[0].addresses[0]'],
    [
      'match: [{bogus: 1}] in the reviews VirtualService',
      rule('VirtualService', 'reviews', NS, { hosts: ['reviews'], http: [{ match: [{ bogus: 1 }], route: [{ destination: { host: 'reviews', subset: 'v2' } }] }] }),
      'VirtualService default/reviews',
      'spec.http[0].match[0].bogus',
    ],
  ];
  for (const [what, object, name, path] of cases) {
    it(`${what}: reported at ${path}, and what is served stays as it was`, async () => {
      const before = served(meshpilot);
      api.apply(object);
      await eventually(async () => ((await serveFindings(meshpilot)).some((line) => line.includes(` ${name} ${path}:`)) ? true : undefined), 10_000, `${path} reported`);
      assert.deepEqual(served(meshpilot), before);
    });
  }
});
