// Unknown fields are errors at every depth of every kind meshpilot reads, as Kubernetes' strict
// field validation makes them at `kubectl apply`; valid Istio fields meshpilot does not implement
// are MP_UNSUPPORTED warnings, never errors.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ValidationIssue } from '../src/model/rules.ts';
import { applyLastGood, EMPTY_DIRECTORY_STATE } from '../src/sources/config-dir.ts';
import { assembleObjects, convertObjects } from '../src/sources/kube-objects.ts';
import { readObjectsFromText } from '../src/sources/config-dir.ts';
import { stringify } from 'yaml';

const source = { origin: 'file' as const, location: 'mesh.yaml' };
const net = (kind: string, spec: unknown, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  apiVersion: 'networking.istio.io/v1',
  kind,
  metadata: { name: 'subject', namespace: 'default' },
  spec,
  ...extra,
});
const vs = (http: unknown[]): Record<string, unknown> => net('VirtualService', { hosts: ['reviews'], http });
const toV1 = [{ destination: { host: 'reviews', subset: 'v1' } }];
const dr = (spec: Record<string, unknown>): Record<string, unknown> => net('DestinationRule', { host: 'reviews', ...spec });
const se = (spec: Record<string, unknown>): Record<string, unknown> =>
  net('ServiceEntry', { hosts: ['api.example.com'], ports: [{ number: 443, name: 'https', protocol: 'TLS' }], resolution: 'DNS', ...spec });
const routeRule = (spec: Record<string, unknown>): Record<string, unknown> => ({
  apiVersion: 'config.istio.io/v1alpha2',
  kind: 'RouteRule',
  metadata: { name: 'subject', namespace: 'default' },
  spec: { destination: { name: 'reviews' }, ...spec },
});
const k8sService = (spec: Record<string, unknown>): Record<string, unknown> => ({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'subject', namespace: 'default' }, spec });
const slice = (extra: Record<string, unknown>): Record<string, unknown> => ({
  apiVersion: 'discovery.k8s.io/v1',
  kind: 'EndpointSlice',
  metadata: { name: 'subject', namespace: 'default', labels: { 'kubernetes.io/service-name': 'reviews' } },
  addressType: 'IPv4',
  ports: [{ name: 'http', port: 9080 }],
  endpoints: [{ addresses: ['10.244.0.10'] }],
  ...extra,
});

function issuesOf(object: unknown): ValidationIssue[] {
  const converted = convertObjects([{ object, source }]);
  return [
    ...converted.rejected.flatMap((r) => r.issues),
    ...converted.warnings.flatMap((w) => w.issues),
    ...converted.rules.flatMap((r) => r.meta.warnings ?? []),
  ];
}

const UNKNOWN: readonly (readonly [string, unknown, string])[] = [
  ['a bogus key in an HTTP match', vs([{ match: [{ bogus: 1 }], route: toV1 }]), 'spec.http[0].match[0].bogus'],
  ['a misspelt exact in a header match', vs([{ match: [{ headers: { 'end-user': { exatc: 'jason' } } }], route: toV1 }]), 'spec.http[0].match[0].headers.end-user.exatc'],
  ['a destination port with a name', vs([{ route: [{ destination: { host: 'reviews', port: { name: 'http' } } }] }]), 'spec.http[0].route[0].destination.port.name'],
  ['header operations with "append"', vs([{ route: toV1, headers: { request: { append: { a: 'b' } } } }]), 'spec.http[0].headers.request.append'],
  ['a fault percentage in percent', vs([{ route: toV1, fault: { delay: { fixedDelay: '1s', percentage: { percent: 5 } } } }]), 'spec.http[0].fault.delay.percentage.percent'],
  ['a CORS origin match with "suffix"', vs([{ route: toV1, corsPolicy: { allowOrigins: [{ suffix: '.example.com' }] } }]), 'spec.http[0].corsPolicy.allowOrigins[0].suffix'],
  ['a mirror with a weight', vs([{ route: toV1, mirror: { host: 'reviews', weight: 5 } }]), 'spec.http[0].mirror.weight'],
  ['a TCP match with "sourceIp"', net('VirtualService', { hosts: ['reviews'], tcp: [{ match: [{ sourceIp: '1.2.3.4' }], route: toV1 }] }), 'spec.tcp[0].match[0].sourceIp'],
  ['a TLS route with "sni"', net('VirtualService', { hosts: ['reviews'], tls: [{ match: [{ sni: ['a'] }], route: toV1 }] }), 'spec.tls[0].match[0].sni'],
  ['a cookie hash with "maxAge"', dr({ trafficPolicy: { loadBalancer: { consistentHash: { httpCookie: { name: 'u', maxAge: '1s' } } } } }), 'spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.maxAge'],
  ['a subset policy with "timeout"', dr({ subsets: [{ name: 'v1', labels: { version: 'v1' }, trafficPolicy: { timeout: '1s' } }] }), 'spec.subsets[0].trafficPolicy.timeout'],
  ['port-level TLS with "cert"', dr({ trafficPolicy: { portLevelSettings: [{ port: { number: 9080 }, tls: { mode: 'SIMPLE', cert: 'x' } }] } }), 'spec.trafficPolicy.portLevelSettings[0].tls.cert'],
  ['outlier detection with "consecutive5xx"', dr({ trafficPolicy: { outlierDetection: { consecutive5xx: 5 } } }), 'spec.trafficPolicy.outlierDetection.consecutive5xx'],
  ['a ServiceEntry port with "port"', se({ ports: [{ number: 443, name: 'https', port: 443 }] }), 'spec.ports[0].port'],
  ['a ServiceEntry endpoint with "ip"', se({ endpoints: [{ address: '192.0.2.1', ip: '192.0.2.1' }] }), 'spec.endpoints[0].ip'],
  ['a ServiceEntry selector with "matchLabels"', se({ workloadSelector: { matchLabels: { app: 'vm' } }, resolution: 'STATIC' }), 'spec.workloadSelector.matchLabels'],
  ['a WorkloadEntry with "ip"', net('WorkloadEntry', { address: '192.0.2.1', ip: '192.0.2.1' }), 'spec.ip'],
  ['a Sidecar egress port with "port"', net('Sidecar', { egress: [{ port: { port: 9080 }, hosts: ['./*'] }] }), 'spec.egress[0].port.port'],
  ['a Sidecar with "egres"', net('Sidecar', { egres: [{ hosts: ['./*'] }], egress: [{ hosts: ['./*'] }] }), 'spec.egres'],
  ['a RouteRule route destination with "host"', routeRule({ route: [{ destination: { host: 'reviews' }, weight: 100 }] }), 'spec.route[0].destination.host'],
  ['a RouteRule header match with "exakt"', routeRule({ match: { request: { headers: { cookie: { exakt: 'x' } } } } }), 'spec.match.request.headers.cookie.exakt'],
  ['a misspelt spec', { ...vs([{ route: toV1 }]), sepc: {} }, 'sepc'],
  ['misspelt labels', { ...vs([{ route: toV1 }]), metadata: { name: 'subject', lables: { a: 'b' } } }, 'metadata.lables'],
  ['a Service port with "bogus"', k8sService({ ports: [{ name: 'http', port: 9080, bogus: 1 }] }), 'spec.ports[0].bogus'],
  ['a Service spec with "prots"', k8sService({ prots: [{ name: 'http', port: 9080 }] }), 'spec.prots'],
  ['an EndpointSlice with "endpionts"', slice({ endpionts: [] }), 'endpionts'],
  ['an endpoint with "adresses"', slice({ endpoints: [{ addresses: ['10.244.0.10'], adresses: ['10.244.0.11'] }] }), 'endpoints[0].adresses'],
  ['endpoint conditions with "redy"', slice({ endpoints: [{ addresses: ['10.244.0.10'], conditions: { redy: false } }] }), 'endpoints[0].conditions.redy'],
  ['a Pod status with "podIp"', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'subject' }, status: { podIp: '10.244.0.10' } }, 'status.podIp'],
];

describe('unknown fields are errors at every depth', () => {
  for (const [what, object, path] of UNKNOWN) {
    it(`${what}: an error at ${path}, and the object is not served`, () => {
      const converted = convertObjects([{ object, source }]);
      const issue = converted.rejected.flatMap((r) => r.issues).find((i) => i.path === path);
      assert.ok(issue, `expected an error at ${path}, got ${JSON.stringify(issuesOf(object))}`);
      assert.equal(issue.severity, 'error');
      assert.match(issue.message, /unknown field/);
      assert.equal(converted.rules.length + converted.services.length + converted.endpoints.length, 0);
    });
  }

  it('match: [{bogus: 1}] no longer turns "jason goes to v2" into "everyone goes to v2": the last good rule stays', () => {
    const good = stringify(vs([{ match: [{ headers: { 'end-user': { exact: 'jason' } } }], route: toV1 }, { route: [{ destination: { host: 'reviews', subset: 'v2' } }] }]));
    const first = applyLastGood(EMPTY_DIRECTORY_STATE, [{ file: 'vs.yaml', result: readObjectsFromText(good, 'vs.yaml') }]);
    const bad = good.replace(/- headers:\n(\s+)end-user:\n\s+exact: jason/, '- bogus: 1');
    assert.notEqual(bad, good);
    const { parsed } = applyLastGood(first.state, [{ file: 'vs.yaml', result: readObjectsFromText(bad, 'vs.yaml') }]);
    const converted = assembleObjects(parsed);
    assert.deepEqual(converted.rejected.map((r) => [r.object, r.keptLastGood, r.issues[0]?.path]), [['VirtualService default/subject', true, 'spec.http[0].match[0].bogus']]);
    assert.deepEqual(JSON.stringify(converted.rules), JSON.stringify(assembleObjects(first.parsed).rules));
  });

  it('a field Kubernetes adds in a newer release is not a mistake in the parts it still extends', () => {
    assert.deepEqual(issuesOf(k8sService({ ports: [{ name: 'http', port: 9080 }], someFutureField: true })), []);
  });
});

describe('valid Istio fields meshpilot does not implement are MP_UNSUPPORTED warnings', () => {
  const UNSUPPORTED: readonly (readonly [unknown, string])[] = [
    [dr({ trafficPolicy: { proxyProtocol: { version: 'V1' } } }), 'spec.trafficPolicy.proxyProtocol'],
    [vs([{ match: [{ statPrefix: 'x' }], route: toV1 }]), 'spec.http[0].match[0].statPrefix'],
    [net('VirtualService', { hosts: ['reviews'], tls: [{ match: [{ sniHosts: ['reviews'] }], route: toV1 }] }), 'spec.tls'],
    [dr({ trafficPolicy: { loadBalancer: { simple: 'ROUND_ROBIN', localityLbSetting: { enabled: true, failover: [{ from: 'a', to: 'b' }] } } } }), 'spec.trafficPolicy.loadBalancer.localityLbSetting'],
    [dr({ trafficPolicy: { tunnel: { protocol: 'CONNECT', targetHost: 'x', targetPort: 1 } } }), 'spec.trafficPolicy.tunnel'],
    [net('WorkloadEntry', { address: '192.0.2.1', network: 'vpc-1' }), 'spec.network'],
    [net('Sidecar', { egress: [{ hosts: ['./*'], captureMode: 'NONE' }] }), 'spec.egress[0].captureMode'],
    [routeRule({ httpReqTimeout: { simpleTimeout: { timeout: '1s' } } }), 'spec.httpReqTimeout'],
  ];
  for (const [object, path] of UNSUPPORTED) {
    it(`${path} is served with a warning naming it`, () => {
      const issues = issuesOf(object);
      assert.deepEqual(issues.filter((i) => i.severity === 'error'), []);
      assert.ok(issues.some((i) => i.code === 'MP_UNSUPPORTED' && i.path === path), JSON.stringify(issues));
    });
  }

  it('a VirtualService using every field meshpilot implements has no issue at all', () => {
    const everything = vs([
      {
        name: 'all',
        match: [{ name: 'm', uri: { prefix: '/' }, scheme: { exact: 'http' }, method: { exact: 'GET' }, authority: { exact: 'reviews' }, headers: { a: {} }, queryParams: { q: { exact: '1' } }, withoutHeaders: { b: {} }, port: 9080, sourceLabels: { app: 'x' }, sourceNamespace: 'default', gateways: ['mesh'], ignoreUriCase: true }],
        route: [{ destination: { host: 'reviews', subset: 'v1', port: { number: 9080 } }, weight: 100, headers: { request: { set: { a: 'b' }, add: { c: 'd' }, remove: ['e'] }, response: { set: { f: 'g' } } } }],
        timeout: '3s',
        retries: { attempts: 2, perTryTimeout: '1s', retryOn: '5xx', retryRemoteLocalities: true },
        fault: { delay: { fixedDelay: '1s', percentage: { value: 10 } }, abort: { httpStatus: 503, percentage: { value: 1 } } },
        mirror: { host: 'reviews', subset: 'v2' },
        mirrorPercentage: { value: 5 },
        corsPolicy: { allowOrigins: [{ exact: 'https://example.com' }], allowMethods: ['GET'], allowHeaders: ['a'], exposeHeaders: ['b'], maxAge: '1h', allowCredentials: true },
        rewrite: { uri: '/v1', authority: 'reviews' },
        headers: { request: { set: { x: 'y' } } },
      },
    ]);
    assert.deepEqual(issuesOf(everything), []);
  });
});
