// Seventy-eight mistakes users make in Istio rules: each is reported with its stable code and the path
// to the field, the rule is not applied, and what proxies are served does not change at all.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildPushContext } from '../src/model/push-context.ts';
import type { ValidationIssue } from '../src/model/rules.ts';
import { convertObjects } from '../src/sources/kube-objects.ts';
import { endpointSlice, pod, rule, service, type K8sObject } from './support/mesh-dir.ts';
import { renderForProxy } from '../src/xds/render.ts';
import { CLUSTER_TYPE, ROUTE_TYPE } from '../src/xds/type-urls.ts';
import { servedVersions, SIDECAR } from './support/rendered.ts';

const NS = 'default';
const base: K8sObject[] = [
  service('reviews', NS, [{ name: 'grpc', port: 9080, targetPort: 9080 }], '10.96.0.30'),
  service('ratings', NS, [{ name: 'http', port: 9080, targetPort: 9080 }], '10.96.0.31'),
  ...['v1', 'v2'].map((v, i) => pod(`reviews-${v}-0`, NS, `10.244.0.${10 + i}`, { app: 'reviews', version: v })),
  pod('ratings-v1-0', NS, '10.244.0.20', { app: 'ratings', version: 'v1' }),
  endpointSlice('reviews', NS, { name: 'grpc', port: 9080 }, [{ name: 'reviews-v1-0', ip: '10.244.0.10' }, { name: 'reviews-v2-0', ip: '10.244.0.11' }]),
  endpointSlice('ratings', NS, { name: 'http', port: 9080 }, [{ name: 'ratings-v1-0', ip: '10.244.0.20' }]),
  rule('DestinationRule', 'reviews', NS, { host: 'reviews', subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }] }),
  rule('VirtualService', 'reviews', NS, {
    hosts: ['reviews'],
    http: [
      { match: [{ headers: { 'end-user': { exact: 'jason' } } }], route: [{ destination: { host: 'reviews', subset: 'v2' } }] },
      { route: [{ destination: { host: 'reviews', subset: 'v1' }, weight: 80 }, { destination: { host: 'reviews', subset: 'v2' }, weight: 20 }] },
    ],
  }),
];

const toRatings = [{ destination: { host: 'ratings' } }];
const vs = (http: unknown[], extra: Record<string, unknown> = {}): K8sObject => rule('VirtualService', 'broken', NS, { hosts: ['ratings'], http, ...extra });
const vsRoute = (route: Record<string, unknown>): K8sObject => vs([{ route: toRatings, ...route }]);
const dr = (spec: Record<string, unknown>): K8sObject => rule('DestinationRule', 'broken', NS, { host: 'ratings', ...spec });
const drPolicy = (trafficPolicy: unknown): K8sObject => dr({ trafficPolicy });
const sidecar = (spec: unknown): K8sObject => rule('Sidecar', 'broken', NS, spec);
const egress = (listener: Record<string, unknown>): K8sObject => sidecar({ egress: [listener] });

interface Mistake {
  readonly what: string;
  readonly object: K8sObject;
  readonly code: string;
  readonly path: string;
}

const MISTAKES: readonly Mistake[] = [
  { what: 'a VirtualService without hosts that no root delegates to', object: rule('VirtualService', 'broken', NS, { http: [{ route: toRatings }] }), code: 'MP_RULE_INEFFECTIVE', path: 'spec.hosts' },
  { what: 'a delegate VirtualService with gateways', object: rule('VirtualService', 'broken', NS, { gateways: ['mesh'], http: [{ route: toRatings }] }), code: 'MP_RULE_INVALID', path: 'spec.gateways' },
  { what: 'a delegate VirtualService with tcp routes', object: rule('VirtualService', 'broken', NS, { tcp: [{ route: toRatings }] }), code: 'MP_RULE_INVALID', path: 'spec.tcp' },
  { what: 'a delegate that delegates again', object: rule('VirtualService', 'broken', NS, { http: [{ delegate: { name: 'other' } }] }), code: 'MP_RULE_INVALID', path: 'spec.http[0].delegate' },
  { what: 'a root route with delegate and route', object: vs([{ delegate: { name: 'ratings-routes' }, route: toRatings }]), code: 'MP_RULE_INVALID', path: 'spec.http[0].route' },
  { what: 'a root route with delegate and redirect', object: vs([{ delegate: { name: 'ratings-routes' }, redirect: { uri: '/v2' } }]), code: 'MP_RULE_INVALID', path: 'spec.http[0].redirect' },
  { what: 'a delegate without a name', object: vs([{ delegate: { namespace: NS } }]), code: 'MP_RULE_INVALID', path: 'spec.http[0].delegate.name' },
  { what: 'a VirtualService exported to no namespace (~)', object: vs([{ route: toRatings }], { exportTo: ['~'] }), code: 'MP_RULE_INVALID', path: 'spec.exportTo' },
  { what: 'exportTo * with a namespace', object: vs([{ route: toRatings }], { exportTo: ['*', 'shop'] }), code: 'MP_RULE_INVALID', path: 'spec.exportTo' },
  { what: 'exportTo . and its own namespace', object: vs([{ route: toRatings }], { exportTo: ['.', NS] }), code: 'MP_RULE_INVALID', path: 'spec.exportTo' },
  { what: 'a DestinationRule exported to a name that is no namespace', object: dr({ exportTo: ['Shop_NS'] }), code: 'MP_RULE_INVALID', path: 'spec.exportTo' },
  { what: 'a DestinationRule exported twice to one namespace', object: dr({ exportTo: ['shop', 'shop'] }), code: 'MP_RULE_INVALID', path: 'spec.exportTo' },
  { what: 'the wildcard host * bound to the mesh', object: vs([{ route: toRatings }], { hosts: ['*'] }), code: 'MP_RULE_INVALID', path: 'spec.hosts[0]' },
  { what: 'a host that is not a DNS name', object: vs([{ route: toRatings }], { hosts: ['Ratings_Service'] }), code: 'MP_RULE_INVALID', path: 'spec.hosts[0]' },
  { what: 'no http, tcp or tls routes', object: rule('VirtualService', 'broken', NS, { hosts: ['ratings'] }), code: 'MP_RULE_INVALID', path: 'spec.http' },
  { what: 'an http route with no destination', object: vs([{ match: [{ uri: { prefix: '/' } }] }]), code: 'MP_RULE_INVALID', path: 'spec.http[0].route' },
  {
    what: 'weights that are all 0',
    object: vs([{ route: [{ destination: { host: 'reviews', subset: 'v1' }, weight: 0 }, { destination: { host: 'reviews', subset: 'v2' }, weight: 0 }] }]),
    code: 'MP_RULE_INVALID',
    path: 'spec.http[0].route',
  },
  { what: 'a negative weight', object: vs([{ route: [{ destination: { host: 'ratings' }, weight: -5 }] }]), code: 'MP_RULE_INVALID', path: 'spec.http[0].route[0].weight' },
  { what: 'a destination without host', object: vs([{ route: [{ destination: { subset: 'v1' } }] }]), code: 'MP_RULE_INVALID', path: 'spec.http[0].route[0].destination.host' },
  { what: 'a subset name with capitals', object: vs([{ route: [{ destination: { host: 'ratings', subset: 'V1!' } }] }]), code: 'MP_RULE_INVALID', path: 'spec.http[0].route[0].destination.subset' },
  { what: 'port 70000', object: vs([{ route: [{ destination: { host: 'ratings', port: { number: 70000 } } }] }]), code: 'MP_RULE_INVALID', path: 'spec.http[0].route[0].destination.port.number' },
  { what: 'a regex that does not compile', object: vs([{ match: [{ uri: { regex: '/api/(v1' } }], route: toRatings }]), code: 'MP_RULE_INVALID', path: 'spec.http[0].match[0].uri.regex' },
  { what: 'a repetition over RE2\'s limit of 1000', object: vs([{ match: [{ uri: { regex: '/id/[0-9]{1001}' } }], route: toRatings }]), code: 'MP_RULE_INVALID', path: 'spec.http[0].match[0].uri.regex' },
  { what: 'nested repetitions over RE2\'s limit', object: vs([{ match: [{ queryParams: { q: { regex: '(ab{50}){30}' } } }], route: toRatings }]), code: 'MP_RULE_INVALID', path: 'spec.http[0].match[0].queryParams.q.regex' },
  { what: 'setting the host header on a response', object: vsRoute({ headers: { response: { set: { Host: 'ratings.internal' } } } }), code: 'MP_RULE_INVALID', path: 'spec.http[0].headers.response.set.Host' },
  {
    what: 'rewriting the authority twice',
    object: vsRoute({ rewrite: { authority: 'a.internal' }, headers: { request: { set: { ':authority': 'b.internal' } } } }),
    code: 'MP_RULE_INVALID',
    path: 'spec.http[0].headers.request.set.:authority',
  },
  { what: 'a destination setting :authority (it may set host)', object: vs([{ route: [{ destination: { host: 'ratings' }, headers: { request: { set: { ':authority': 'b.internal' } } } }] }]), code: 'MP_RULE_INVALID', path: 'spec.http[0].route[0].headers.request.set.:authority' },
  { what: 'removing the host header', object: vsRoute({ headers: { request: { remove: ['host'] } } }), code: 'MP_RULE_INVALID', path: 'spec.http[0].headers.request.remove[0]' },
  { what: 'a timeout of 317 years', object: vsRoute({ timeout: '10000000000s' }), code: 'MP_RULE_INVALID', path: 'spec.http[0].timeout' },
  { what: 'a TCP keepalive time past uint32 seconds', object: drPolicy({ connectionPool: { tcp: { tcpKeepalive: { time: '4294967296s' } } } }), code: 'MP_RULE_INVALID', path: 'spec.trafficPolicy.connectionPool.tcp.tcpKeepalive.time' },
  { what: 'a Maglev table size that is not prime', object: drPolicy({ loadBalancer: { consistentHash: { httpHeaderName: 'x-user', maglev: { tableSize: 65536 } } } }), code: 'MP_RULE_INVALID', path: 'spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize' },
  { what: 'a lookahead RE2 lacks', object: vs([{ match: [{ uri: { regex: '/(?=admin)' } }], route: toRatings }]), code: 'MP_RULE_INVALID', path: 'spec.http[0].match[0].uri.regex' },
  { what: 'a uri with both exact and prefix', object: vs([{ match: [{ uri: { exact: '/a', prefix: '/' } }], route: toRatings }]), code: 'MP_RULE_INVALID', path: 'spec.http[0].match[0].uri' },
  { what: 'a header name with a space', object: vs([{ match: [{ headers: { 'end user': { exact: 'jason' } } }], route: toRatings }]), code: 'MP_RULE_INVALID', path: 'spec.http[0].match[0].headers.end user' },
  { what: 'match port -1', object: vs([{ match: [{ port: -1 }], route: toRatings }]), code: 'MP_RULE_INVALID', path: 'spec.http[0].match[0].port' },
  { what: 'a timeout without a unit', object: vsRoute({ timeout: '10' }), code: 'MP_RULE_INVALID', path: 'spec.http[0].timeout' },
  { what: 'negative retry attempts', object: vsRoute({ retries: { attempts: -1 } }), code: 'MP_RULE_INVALID', path: 'spec.http[0].retries.attempts' },
  { what: 'a perTryTimeout that is not a duration', object: vsRoute({ retries: { attempts: 2, perTryTimeout: 'fast' } }), code: 'MP_RULE_INVALID', path: 'spec.http[0].retries.perTryTimeout' },
  { what: 'an unknown retryOn condition', object: vsRoute({ retries: { attempts: 2, retryOn: '5xx,on-failure' } }), code: 'MP_RULE_INVALID', path: 'spec.http[0].retries.retryOn' },
  { what: 'a fault that injects nothing', object: vsRoute({ fault: {} }), code: 'MP_RULE_INVALID', path: 'spec.http[0].fault' },
  { what: 'a delay without fixedDelay', object: vsRoute({ fault: { delay: { percentage: { value: 10 } } } }), code: 'MP_RULE_INVALID', path: 'spec.http[0].fault.delay.fixedDelay' },
  { what: 'a delay for 150% of requests', object: vsRoute({ fault: { delay: { fixedDelay: '5s', percentage: { value: 150 } } } }), code: 'MP_RULE_INVALID', path: 'spec.http[0].fault.delay.percentage.value' },
  { what: 'an abort with HTTP status 700', object: vsRoute({ fault: { abort: { httpStatus: 700 } } }), code: 'MP_RULE_INVALID', path: 'spec.http[0].fault.abort.httpStatus' },
  { what: 'an abort with an unknown gRPC status', object: vsRoute({ fault: { abort: { grpcStatus: 'BROKEN' } } }), code: 'MP_RULE_INVALID', path: 'spec.http[0].fault.abort.grpcStatus' },
  { what: 'an HTTP/2 error abort Istio does not take', object: vsRoute({ fault: { abort: { http2Error: 'REFUSED_STREAM' } } }), code: 'MP_RULE_INVALID', path: 'spec.http[0].fault.abort.http2Error' },
  { what: 'mirrorPercentage without mirror', object: vsRoute({ mirrorPercentage: { value: 10 } }), code: 'MP_RULE_INVALID', path: 'spec.http[0].mirrorPercentage' },
  { what: 'a route that both routes and redirects', object: vsRoute({ redirect: { uri: '/v2' } }), code: 'MP_RULE_INVALID', path: 'spec.http[0].redirect' },
  { what: 'redirect code 305', object: vs([{ redirect: { uri: '/v2', redirectCode: 305 } }]), code: 'MP_RULE_INVALID', path: 'spec.http[0].redirect.redirectCode' },
  { what: 'setting the :path pseudo-header', object: vsRoute({ headers: { request: { set: { ':path': '/x' } } } }), code: 'MP_RULE_INVALID', path: 'spec.http[0].headers.request.set.:path' },
  { what: 'a CORS maxAge in words', object: vsRoute({ corsPolicy: { maxAge: 'a day' } }), code: 'MP_RULE_INVALID', path: 'spec.http[0].corsPolicy.maxAge' },
  {
    what: 'tcp weights that are all 0',
    object: rule('VirtualService', 'broken', NS, { hosts: ['ratings'], tcp: [{ route: [{ destination: { host: 'ratings' }, weight: 0 }, { destination: { host: 'reviews' }, weight: 0 }] }] }),
    code: 'MP_RULE_INVALID',
    path: 'spec.tcp[0].route',
  },
  {
    what: 'a second, newer VirtualService for reviews',
    object: { ...rule('VirtualService', 'reviews-again', NS, { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v2' } }] }] }), metadata: { name: 'reviews-again', namespace: NS, creationTimestamp: '2030-01-01T00:00:00Z' } },
    code: 'MP_RULE_CONFLICT',
    path: 'spec.hosts[0]',
  },
  { what: 'a DestinationRule without host', object: rule('DestinationRule', 'broken', NS, { subsets: [{ name: 'v1', labels: { version: 'v1' } }] }), code: 'MP_RULE_INVALID', path: 'spec.host' },
  { what: 'two subsets with one name', object: dr({ subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v1', labels: { version: 'v2' } }] }), code: 'MP_RULE_INVALID', path: 'spec.subsets[1].name' },
  { what: 'subset labels that are numbers', object: dr({ subsets: [{ name: 'v1', labels: { version: 1 } }] }), code: 'MP_RULE_INVALID', path: 'spec.subsets[0].labels.version' },
  { what: 'an unknown load balancer', object: drPolicy({ loadBalancer: { simple: 'FASTEST' } }), code: 'MP_RULE_INVALID', path: 'spec.trafficPolicy.loadBalancer.simple' },
  { what: 'simple and consistentHash together', object: drPolicy({ loadBalancer: { simple: 'RANDOM', consistentHash: { useSourceIp: true } } }), code: 'MP_RULE_INVALID', path: 'spec.trafficPolicy.loadBalancer' },
  { what: 'a consistent hash on nothing', object: drPolicy({ loadBalancer: { consistentHash: {} } }), code: 'MP_RULE_INVALID', path: 'spec.trafficPolicy.loadBalancer.consistentHash' },
  {
    what: 'ring hash and maglev together',
    object: drPolicy({ loadBalancer: { consistentHash: { httpHeaderName: 'x-user', ringHash: {}, maglev: {} } } }),
    code: 'MP_RULE_INVALID',
    path: 'spec.trafficPolicy.loadBalancer.consistentHash',
  },
  { what: 'negative max connections', object: drPolicy({ connectionPool: { tcp: { maxConnections: -1 } } }), code: 'MP_RULE_INVALID', path: 'spec.trafficPolicy.connectionPool.tcp.maxConnections' },
  { what: 'a connect timeout under 1ms', object: drPolicy({ connectionPool: { tcp: { connectTimeout: '100us' } } }), code: 'MP_RULE_INVALID', path: 'spec.trafficPolicy.connectionPool.tcp.connectTimeout' },
  { what: 'an unknown h2UpgradePolicy', object: drPolicy({ connectionPool: { http: { h2UpgradePolicy: 'ALWAYS' } } }), code: 'MP_RULE_INVALID', path: 'spec.trafficPolicy.connectionPool.http.h2UpgradePolicy' },
  { what: 'negative pending requests', object: drPolicy({ connectionPool: { http: { http1MaxPendingRequests: -5 } } }), code: 'MP_RULE_INVALID', path: 'spec.trafficPolicy.connectionPool.http.http1MaxPendingRequests' },
  { what: 'ejecting 120% of hosts', object: drPolicy({ outlierDetection: { maxEjectionPercent: 120 } }), code: 'MP_RULE_INVALID', path: 'spec.trafficPolicy.outlierDetection.maxEjectionPercent' },
  { what: 'an interval in words', object: drPolicy({ outlierDetection: { interval: '1 second' } }), code: 'MP_RULE_INVALID', path: 'spec.trafficPolicy.outlierDetection.interval' },
  { what: 'an unknown TLS mode', object: drPolicy({ tls: { mode: 'STRICT' } }), code: 'MP_RULE_INVALID', path: 'spec.trafficPolicy.tls.mode' },
  { what: 'MUTUAL TLS without a client certificate', object: drPolicy({ tls: { mode: 'MUTUAL' } }), code: 'MP_RULE_INVALID', path: 'spec.trafficPolicy.tls.clientCertificate' },
  { what: 'port-level settings without a port', object: drPolicy({ portLevelSettings: [{ loadBalancer: { simple: 'RANDOM' } }] }), code: 'MP_RULE_INVALID', path: 'spec.trafficPolicy.portLevelSettings[0].port.number' },
  {
    what: 'a subset policy with an unknown load balancer',
    object: dr({ subsets: [{ name: 'v1', labels: { version: 'v1' }, trafficPolicy: { loadBalancer: { simple: 'FASTEST' } } }] }),
    code: 'MP_RULE_INVALID',
    path: 'spec.subsets[0].trafficPolicy.loadBalancer.simple',
  },
  { what: 'a Sidecar host without its namespace part', object: egress({ hosts: ['reviews'] }), code: 'MP_RULE_INVALID', path: 'spec.egress[0].hosts[0]' },
  { what: 'a Sidecar host whose namespace is not a namespace', object: egress({ hosts: ['Book_Info/*'] }), code: 'MP_RULE_INVALID', path: 'spec.egress[0].hosts[0]' },
  { what: 'an empty Sidecar egress list', object: sidecar({ egress: [] }), code: 'MP_RULE_INVALID', path: 'spec.egress' },
  { what: 'a Sidecar that sets nothing', object: sidecar({}), code: 'MP_RULE_INVALID', path: 'spec.egress' },
  { what: 'a Sidecar egress listener without hosts', object: egress({ port: { number: 9080 } }), code: 'MP_RULE_INVALID', path: 'spec.egress[0].hosts' },
  { what: 'a Sidecar egress port 70000', object: egress({ port: { number: 70000 }, hosts: ['./*'] }), code: 'MP_RULE_INVALID', path: 'spec.egress[0].port.number' },
  {
    what: 'two Sidecar egress listeners without a port',
    object: sidecar({ egress: [{ hosts: ['./*'] }, { hosts: ['istio-system/*'] }] }),
    code: 'MP_RULE_INVALID',
    path: 'spec.egress[1]',
  },
  { what: 'a Sidecar workloadSelector with a wildcard', object: sidecar({ workloadSelector: { labels: { app: '*' } }, egress: [{ hosts: ['./*'] }] }), code: 'MP_RULE_INVALID', path: 'spec.workloadSelector.labels.app' },
  { what: 'an unknown Sidecar outbound traffic mode', object: sidecar({ egress: [{ hosts: ['./*'] }], outboundTrafficPolicy: { mode: 'DENY_ALL' } }), code: 'MP_RULE_INVALID', path: 'spec.outboundTrafficPolicy.mode' },
];

function served(objects: readonly K8sObject[]): string[] {
  const push = buildPushContext(convertObjects(objects.map((object) => ({ object, source: { origin: 'file', location: 'rules.yaml' } }))));
  return servedVersions(push, ['reviews.default.svc.cluster.local:9080', 'ratings.default.svc.cluster.local:9080']);
}

/** Every issue reported for the object, from the source (rejected) or the model (rule status), and whether it is applied. */
function outcome(objects: readonly K8sObject[], name: string): { issues: ValidationIssue[]; applied: boolean } {
  const converted = convertObjects(objects.map((object) => ({ object, source: { origin: 'file', location: 'rules.yaml' } })));
  const rejected = converted.rejected.filter((r) => r.name === name || r.name === undefined);
  if (rejected.length > 0) return { issues: rejected.flatMap((r) => [...r.issues]), applied: false };
  const status = [...buildPushContext(converted).ruleStatus.values()].find((s) => s.rule.meta.name === name);
  assert.ok(status, `${name} is neither rejected nor known`);
  return { issues: [...status.issues], applied: status.applied };
}

const BROKEN_REFERENCES: readonly (Mistake & { readonly cluster: string })[] = [
  {
    what: 'a subset no DestinationRule defines',
    object: vs([{ route: [{ destination: { host: 'reviews', subset: 'v9' } }] }]),
    code: 'MP_REF_UNKNOWN',
    path: 'spec.http[0].route[0].destination.subset',
    cluster: 'outbound|9080|v9|reviews.default.svc.cluster.local',
  },
  {
    what: 'a port the service does not have',
    object: vs([{ route: [{ destination: { host: 'ratings', port: { number: 9999 } } }] }]),
    code: 'MP_REF_UNKNOWN',
    path: 'spec.http[0].route[0].destination.port.number',
    cluster: 'outbound|9999||ratings.default.svc.cluster.local',
  },
];

/** The clusters the sidecar's routes to ratings name, and the clusters it is given. */
function ratingsRoute(objects: readonly K8sObject[]): { routedTo: string[]; clusters: string[] } {
  const rendered = renderForProxy(buildPushContext(convertObjects(objects.map((object) => ({ object, source: { origin: 'file', location: 'rules.yaml' } })))), SIDECAR);
  const config = rendered[ROUTE_TYPE].find((r) => r.name === '9080')?.json as { virtual_hosts: { name: string; routes: { route?: { cluster?: string } }[] }[] };
  const host = config.virtual_hosts.find((h) => h.name.startsWith('ratings.default.svc.cluster.local'));
  return { routedTo: (host?.routes ?? []).map((r) => r.route?.cluster ?? ''), clusters: rendered[CLUSTER_TYPE].map((c) => c.name) };
}

describe('a reference broken at the first read fails its route closed, as in Istio', () => {
  for (const mistake of BROKEN_REFERENCES) {
    it(`${mistake.what}: ${mistake.code} at ${mistake.path}, and the route answers 503 instead of reaching every version`, () => {
      const objects = [...base, mistake.object];
      const { issues, applied } = outcome(objects, 'broken');
      assert.ok(issues.some((issue) => issue.code === mistake.code && issue.path === mistake.path && issue.severity === 'error'), JSON.stringify(issues));
      assert.equal(applied, true, 'the rule stays bound to its host');
      const { routedTo, clusters } = ratingsRoute(objects);
      assert.deepEqual(routedTo, [mistake.cluster]);
      assert.ok(!clusters.includes(mistake.cluster), 'the cluster it names is not served, so Envoy answers 503');
    });
  }
});

describe('invalid rules are reported and never change what is served', () => {
  const baseline = served(base);

  it('the table holds at least 30 distinct mistakes', () => {
    assert.ok(MISTAKES.length >= 30);
    assert.equal(new Set(MISTAKES.map((m) => m.what)).size, MISTAKES.length);
  });

  for (const mistake of MISTAKES) {
    it(`${mistake.what}: ${mistake.code} at ${mistake.path}`, () => {
      const objects = [...base, mistake.object];
      const name = (mistake.object['metadata'] as { name: string }).name;
      const { issues, applied } = outcome(objects, name);
      assert.ok(
        issues.some((issue) => issue.code === mistake.code && issue.path === mistake.path),
        `expected ${mistake.code} at ${mistake.path}, got ${JSON.stringify(issues.map((i) => `${i.code} ${i.path}: ${i.message}`))}`,
      );
      assert.equal(applied, false, 'the rule is not applied');
      assert.deepEqual(served(objects), baseline);
    });
  }

  it('a valid rule next to them still changes what is served (the comparison can fail)', () => {
    const valid = vs([{ route: toRatings, timeout: '3s' }]);
    assert.notDeepEqual(served([...base, valid]), baseline);
    assert.equal(outcome([...base, valid], 'broken').applied, true);
  });
});
