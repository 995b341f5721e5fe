// Valid config that silently does something else than meant gets a warning, as Istio's analyzers
// give one: a second ServiceEntry for a host (the oldest wins), a Sidecar that hides every
// service, a subset that selects no pod, a VirtualService bound to a Gateway that is missing or
// exposes none of its hosts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildPushContext } from '../src/model/push-context.ts';
import type { ValidationIssue } from '../src/model/rules.ts';
import { convertObjects } from '../src/sources/kube-objects.ts';
import { endpointSlice, pod, rule, service, type K8sObject } from './support/mesh-dir.ts';

const NS = 'default';
const INGRESS: K8sObject = rule('Gateway', 'ingress', 'istio-system', { selector: { istio: 'ingressgateway' }, servers: [{ port: { number: 8080, name: 'http', protocol: 'HTTP' }, hosts: ['*'] }] });
const MESH: K8sObject[] = [
  service('reviews', NS, [{ name: 'http', port: 9080, targetPort: 9080 }], '10.96.0.30'),
  ...['v1', 'v2'].map((v, i) => pod(`reviews-${v}-0`, NS, `10.244.0.${10 + i}`, { app: 'reviews', version: v })),
  endpointSlice('reviews', NS, { name: 'http', port: 9080 }, [{ name: 'reviews-v1-0', ip: '10.244.0.10' }, { name: 'reviews-v2-0', ip: '10.244.0.11' }]),
];
const entry = (name: string, created: string, port: number): K8sObject => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'ServiceEntry',
  metadata: { name, namespace: NS, creationTimestamp: created },
  spec: { hosts: ['api.example.com'], ports: [{ number: port, name: 'tls', protocol: 'TLS' }], resolution: 'DNS' },
});

/** Every warning about `object` (`Kind namespace/name`), wherever meshpilot keeps it. */
function warningsFor(objects: readonly K8sObject[], object: string): { issues: ValidationIssue[]; push: ReturnType<typeof buildPushContext> } {
  const converted = convertObjects(objects.map((o) => ({ object: o, source: { origin: 'file' as const, location: 'mesh.yaml' } })));
  assert.deepEqual(converted.rejected, []);
  const push = buildPushContext(converted);
  const fromRules = [...push.ruleStatus.values()].filter((s) => `${s.rule.meta.kind} ${s.rule.meta.namespace}/${s.rule.meta.name}` === object).flatMap((s) => [...s.issues]);
  const fromObjects = push.objectWarnings.filter((w) => w.object === object).flatMap((w) => [...w.issues]);
  return { issues: [...fromRules, ...fromObjects], push };
}

describe('valid config that silently does nothing, or something else, is reported', () => {
  it('a second ServiceEntry for api.example.com loses to the older one, by creation time, and is told so', () => {
    const objects = [...MESH, entry('a-newer', '2026-02-01T00:00:00Z', 8443), entry('z-older', '2026-01-01T00:00:00Z', 443)];
    const { issues, push } = warningsFor(objects, 'ServiceEntry default/a-newer');
    assert.deepEqual(issues.map((i) => [i.code, i.severity, i.path]), [['MP_RULE_CONFLICT', 'warning', 'spec.hosts[0]']]);
    assert.match(issues[0]?.message ?? '', /already defined by ServiceEntry default\/z-older, which is older/);
    assert.deepEqual(push.serviceByHost.get('api.example.com')?.ports.map((p) => p.port), [443], 'the older entry (port 443) is served');
    assert.deepEqual(warningsFor(objects, 'ServiceEntry default/z-older').issues, []);
  });

  it('a Sidecar whose egress hosts match no service', () => {
    const objects = [...MESH, rule('Sidecar', 'narrow', NS, { egress: [{ hosts: ['shop/*'] }] })];
    const { issues } = warningsFor(objects, 'Sidecar default/narrow');
    assert.deepEqual(issues.map((i) => [i.code, i.severity, i.path]), [['MP_RULE_INEFFECTIVE', 'warning', 'spec.egress']]);
  });

  it('a root Sidecar that hides every service from every namespace', () => {
    const objects = [...MESH, rule('Sidecar', 'default', 'istio-system', { egress: [{ hosts: ['istio-system/*'] }] })];
    const { issues } = warningsFor(objects, 'Sidecar istio-system/default');
    assert.deepEqual(issues.map((i) => i.code), ['MP_RULE_INEFFECTIVE']);
    assert.match(issues[0]?.message ?? '', /every namespace without its own Sidecar/);
    const seeing = [...MESH, rule('Sidecar', 'default', 'istio-system', { egress: [{ hosts: ['./*', 'istio-system/*'] }] })];
    assert.deepEqual(warningsFor(seeing, 'Sidecar istio-system/default').issues, [], 'a root Sidecar with ./* sees each namespace\'s own services');
  });

  it('a subset that selects no pod', () => {
    const objects = [...MESH, rule('DestinationRule', 'reviews', NS, { host: 'reviews', subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v3', labels: { version: 'v3' } }] })];
    const { issues } = warningsFor(objects, 'DestinationRule default/reviews');
    assert.deepEqual(issues.map((i) => [i.code, i.severity, i.path]), [['MP_RULE_INEFFECTIVE', 'warning', 'spec.subsets[1].labels']]);
    assert.match(issues[0]?.message ?? '', /subset "v3" selects no pod of reviews\.default\.svc\.cluster\.local/);
  });

  it('a VirtualService bound only to a Gateway that does not exist', () => {
    const objects = [...MESH, rule('VirtualService', 'edge', NS, { hosts: ['reviews'], gateways: ['istio-system/ingress'], http: [{ route: [{ destination: { host: 'reviews' } }] }] })];
    const { issues, push } = warningsFor(objects, 'VirtualService default/edge');
    assert.deepEqual(issues.map((i) => [i.code, i.severity, i.path]), [['MP_REF_UNKNOWN', 'warning', 'spec.gateways[0]']]);
    assert.equal([...push.ruleStatus.values()].find((s) => s.rule.meta.name === 'edge')?.applied, false);
  });

  it('a VirtualService bound to a Gateway none of whose servers exposes its hosts', () => {
    const bookinfoOnly = rule('Gateway', 'ingress', 'istio-system', { selector: { istio: 'ingressgateway' }, servers: [{ port: { number: 8080, name: 'http', protocol: 'HTTP' }, hosts: ['bookinfo.example.com'] }] });
    const objects = [...MESH, bookinfoOnly, rule('VirtualService', 'edge', NS, { hosts: ['shop.example.com'], gateways: ['istio-system/ingress'], http: [{ route: [{ destination: { host: 'reviews' } }] }] })];
    const { issues } = warningsFor(objects, 'VirtualService default/edge');
    assert.deepEqual(issues.map((i) => [i.code, i.severity, i.path]), [['MP_RULE_INEFFECTIVE', 'warning', 'spec.gateways[0]']]);
    assert.match(issues[0]?.message ?? '', /none of its hosts \(shop\.example\.com\) is a host the servers of Gateway istio-system\/ingress expose/);
  });

  it('the same rules written sensibly get no warning (the checks can stay silent)', () => {
    const objects = [
      ...MESH,
      entry('only', '2026-01-01T00:00:00Z', 443),
      rule('Sidecar', 'narrow', NS, { egress: [{ hosts: ['./*'] }] }),
      rule('DestinationRule', 'reviews', NS, { host: 'reviews', subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }] }),
      INGRESS,
      rule('VirtualService', 'edge', NS, { hosts: ['reviews'], gateways: ['istio-system/ingress', 'mesh'], http: [{ route: [{ destination: { host: 'reviews' } }] }] }),
    ];
    for (const object of ['ServiceEntry default/only', 'Sidecar default/narrow', 'DestinationRule default/reviews', 'VirtualService default/edge']) {
      assert.deepEqual(warningsFor(objects, object).issues, [], object);
    }
  });
});
