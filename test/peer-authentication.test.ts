// PeerAuthentication as a user writes it: which mode each workload port ends up with (Istio's
// precedence and inheritance), what validation refuses, and where a plaintext DestinationRule
// meets a STRICT server. Tables, as Istio's own tests are written.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { analyzeDirectory } from '../src/commands/analyze.ts';
import { DEFAULT_MESH_CONFIG } from '../src/model/mesh-config.ts';
import { portMode } from '../src/model/peer-authentication.ts';
import { buildPushContext, type PushContext } from '../src/model/push-context.ts';
import type { ValidationIssue } from '../src/model/rules.ts';
import { convertObjects, parseObject } from '../src/sources/kube-objects.ts';
import { endpointSlice, MeshDir, pod, rule, service, type K8sObject } from './support/mesh-dir.ts';

const source = { origin: 'file', location: 'policies.yaml' } as const;

function pa(name: string, namespace: string, spec: unknown, created = '2024-01-01T00:00:00Z', apiVersion = 'security.istio.io/v1'): K8sObject {
  return { apiVersion, kind: 'PeerAuthentication', metadata: { name, namespace, creationTimestamp: created }, spec };
}

/** reviews (app=reviews) in shop and ratings in other, each with a pod. */
const WORKLOADS: K8sObject[] = [
  service('reviews', 'shop', [{ name: 'http', port: 9080, targetPort: 8080 }], '10.96.0.1'),
  pod('reviews-v1', 'shop', '10.244.0.1', { app: 'reviews', version: 'v1' }),
  endpointSlice('reviews', 'shop', { name: 'http', port: 8080 }, [{ name: 'reviews-v1', ip: '10.244.0.1' }]),
  service('ratings', 'other', [{ name: 'http', port: 9080, targetPort: 9080 }], '10.96.0.2'),
  pod('ratings-v1', 'other', '10.244.0.2', { app: 'ratings' }),
  endpointSlice('ratings', 'other', { name: 'http', port: 9080 }, [{ name: 'ratings-v1', ip: '10.244.0.2' }]),
];

function pushOf(objects: readonly K8sObject[], rootNamespace?: string): PushContext {
  const converted = convertObjects([...WORKLOADS, ...objects].map((object) => ({ object, source })));
  assert.deepEqual(converted.rejected.flatMap((r) => r.issues), []);
  return buildPushContext(converted, { ...DEFAULT_MESH_CONFIG, ...(rootNamespace ? { rootNamespace } : {}) });
}

const REVIEWS = { namespace: 'shop', labels: { app: 'reviews', version: 'v1' } };

interface ModeCase {
  readonly what: string;
  readonly policies: readonly K8sObject[];
  readonly rootNamespace?: string;
  /** [namespace, labels, port, mode] */
  readonly expect: readonly (readonly [string, Readonly<Record<string, string>>, number, string])[];
}

const MODE_CASES: readonly ModeCase[] = [
  { what: 'no policy: every port is PERMISSIVE', policies: [], expect: [['shop', REVIEWS.labels, 8080, 'PERMISSIVE']] },
  {
    what: 'a mesh-wide STRICT reaches every namespace',
    policies: [pa('default', 'istio-system', { mtls: { mode: 'STRICT' } })],
    expect: [['shop', REVIEWS.labels, 8080, 'STRICT'], ['other', { app: 'ratings' }, 9080, 'STRICT']],
  },
  {
    what: 'a namespace policy overrides the mesh one, only in its namespace',
    policies: [pa('default', 'istio-system', { mtls: { mode: 'STRICT' } }), pa('default', 'shop', { mtls: { mode: 'PERMISSIVE' } })],
    expect: [['shop', REVIEWS.labels, 8080, 'PERMISSIVE'], ['other', { app: 'ratings' }, 9080, 'STRICT']],
  },
  {
    what: 'UNSET at the namespace inherits the mesh',
    policies: [pa('default', 'istio-system', { mtls: { mode: 'STRICT' } }), pa('default', 'shop', { mtls: { mode: 'UNSET' } })],
    expect: [['shop', REVIEWS.labels, 8080, 'STRICT']],
  },
  {
    what: 'a workload policy overrides its namespace, for the workloads it selects',
    policies: [pa('default', 'shop', { mtls: { mode: 'STRICT' } }), pa('reviews', 'shop', { selector: { matchLabels: { app: 'reviews' } }, mtls: { mode: 'DISABLE' } })],
    expect: [['shop', REVIEWS.labels, 8080, 'DISABLE'], ['shop', { app: 'details' }, 9080, 'STRICT']],
  },
  {
    what: 'portLevelMtls changes one port; UNSET there inherits the workload, whose UNSET inherits the namespace',
    policies: [
      pa('default', 'shop', { mtls: { mode: 'STRICT' } }),
      pa('reviews', 'shop', { selector: { matchLabels: { app: 'reviews' } }, portLevelMtls: { 8080: { mode: 'DISABLE' }, 8081: { mode: 'UNSET' } } }),
    ],
    expect: [['shop', REVIEWS.labels, 8080, 'DISABLE'], ['shop', REVIEWS.labels, 8081, 'STRICT'], ['shop', REVIEWS.labels, 9000, 'STRICT']],
  },
  {
    what: 'two mesh-wide policies: the oldest decides',
    policies: [pa('newer', 'istio-system', { mtls: { mode: 'DISABLE' } }, '2024-02-01T00:00:00Z'), pa('older', 'istio-system', { mtls: { mode: 'STRICT' } }, '2024-01-01T00:00:00Z')],
    expect: [['shop', REVIEWS.labels, 8080, 'STRICT']],
  },
  {
    what: 'two workload policies selecting one pod: the oldest decides',
    policies: [
      pa('newer', 'shop', { selector: { matchLabels: { version: 'v1' } }, mtls: { mode: 'DISABLE' } }, '2024-02-01T00:00:00Z'),
      pa('older', 'shop', { selector: { matchLabels: { app: 'reviews' } }, mtls: { mode: 'STRICT' } }, '2024-01-01T00:00:00Z'),
    ],
    expect: [['shop', REVIEWS.labels, 8080, 'STRICT']],
  },
  {
    what: 'a selector in the root namespace applies to no workload, as in Istio',
    policies: [pa('everyone', 'istio-system', { selector: { matchLabels: { app: 'reviews' } }, mtls: { mode: 'STRICT' } })],
    expect: [['shop', REVIEWS.labels, 8080, 'PERMISSIVE']],
  },
  {
    what: 'MeshConfig rootNamespace moves the mesh-wide level',
    rootNamespace: 'mesh-root',
    policies: [pa('default', 'mesh-root', { mtls: { mode: 'STRICT' } }), pa('default', 'istio-system', { mtls: { mode: 'DISABLE' } })],
    expect: [['shop', REVIEWS.labels, 8080, 'STRICT'], ['istio-system', {}, 15010, 'DISABLE']],
  },
];

describe('the mTLS mode a workload port gets', () => {
  for (const c of MODE_CASES) {
    it(c.what, () => {
      const push = pushOf(c.policies, c.rootNamespace);
      const got = c.expect.map(([namespace, labels, port]) => [namespace, labels, port, portMode(push.peerAuthentication.forWorkload(namespace, labels), port)]);
      assert.deepEqual(got, c.expect);
    });
  }

  it('the losers of a level are told, with the winner named, and are not applied', () => {
    const push = pushOf([
      pa('older', 'istio-system', { mtls: { mode: 'STRICT' } }, '2024-01-01T00:00:00Z'),
      pa('newer', 'istio-system', { mtls: { mode: 'DISABLE' } }, '2024-02-01T00:00:00Z'),
      pa('first', 'shop', { selector: { matchLabels: { app: 'reviews' } } }, '2024-01-01T00:00:00Z'),
      pa('second', 'shop', { selector: { matchLabels: { version: 'v1' } } }, '2024-02-01T00:00:00Z'),
      pa('rooted', 'istio-system', { selector: { matchLabels: { app: 'reviews' } } }, '2024-03-01T00:00:00Z'),
    ]);
    const status = (name: string, namespace: string): { applied: boolean; codes: string[]; text: string } => {
      const s = push.ruleStatus.get(`PeerAuthentication/${namespace}/${name}`);
      return { applied: s?.applied ?? false, codes: (s?.issues ?? []).map((i) => i.code), text: (s?.issues ?? []).map((i) => i.message).join(' ') };
    };
    assert.deepEqual(status('older', 'istio-system'), { applied: true, codes: [], text: '' });
    const newer = status('newer', 'istio-system');
    assert.deepEqual([newer.applied, newer.codes], [false, ['MP_RULE_CONFLICT']]);
    assert.match(newer.text, /PeerAuthentication istio-system\/older is older and is the mesh-wide policy/);
    const second = status('second', 'shop');
    assert.deepEqual([second.applied, second.codes], [true, ['MP_RULE_CONFLICT']]);
    assert.match(second.text, /also selects workload shop\/reviews-v1, which the older PeerAuthentication shop\/first selects/);
    assert.deepEqual(status('rooted', 'istio-system').codes, ['MP_RULE_INEFFECTIVE']);
  });
});

function issuesOf(object: K8sObject): ValidationIssue[] {
  const parsed = parseObject({ object, source });
  return parsed.type === 'rejected' ? [...parsed.rejected.issues] : parsed.type === 'rule' ? [...(parsed.rule.meta.warnings ?? [])] : [];
}

const SELECTOR = { matchLabels: { app: 'reviews' } };

describe('PeerAuthentication validation, as Istio admission', () => {
  const BAD: readonly (readonly [string, K8sObject, string, RegExp])[] = [
    ['a mode that does not exist', pa('x', 'shop', { mtls: { mode: 'STRICTEST' } }), 'spec.mtls.mode', /not one of UNSET, DISABLE, PERMISSIVE, STRICT/],
    ['a lowercase mode', pa('x', 'shop', { mtls: { mode: 'strict' } }), 'spec.mtls.mode', /not one of/],
    ['portLevelMtls on a namespace policy', pa('x', 'shop', { portLevelMtls: { 8080: { mode: 'DISABLE' } } }), 'spec.portLevelMtls', /cannot have port-level mTLS/],
    ['portLevelMtls keyed by a name', pa('x', 'shop', { selector: SELECTOR, portLevelMtls: { http: { mode: 'DISABLE' } } }), 'spec.portLevelMtls.http', /not a port number/],
    ['port 0', pa('x', 'shop', { selector: SELECTOR, portLevelMtls: { 0: { mode: 'DISABLE' } } }), 'spec.portLevelMtls.0', /not a port number 1\.\.65535/],
    ['port 70000', pa('x', 'shop', { selector: SELECTOR, portLevelMtls: { 70000: { mode: 'DISABLE' } } }), 'spec.portLevelMtls.70000', /not a port number/],
    ['an empty portLevelMtls', pa('x', 'shop', { selector: SELECTOR, portLevelMtls: {} }), 'spec.portLevelMtls', /is empty/],
    ['a bad port-level mode', pa('x', 'shop', { selector: SELECTOR, portLevelMtls: { 8080: { mode: 'OFF' } } }), 'spec.portLevelMtls.8080.mode', /not one of/],
    ['an unknown field', pa('x', 'shop', { mtls: { mode: 'STRICT', strict: true } }), 'spec.mtls.strict', /unknown field|not a field/],
    ['selector.labels (Sidecar\'s spelling)', pa('x', 'shop', { selector: { labels: { app: 'reviews' } } }), 'spec.selector.labels', /matchLabels/],
    ['a label value that is not a string', pa('x', 'shop', { selector: { matchLabels: { version: 2 } } }), 'spec.selector.matchLabels.version', /must be a string/],
    ['mtls as a string', pa('x', 'shop', { mtls: 'STRICT' }), 'spec.mtls', /must be a map/],
    ['an API version Istio never had', pa('x', 'shop', { mtls: { mode: 'STRICT' } }, undefined, 'security.istio.io/v1alpha1'), 'apiVersion', /security\.istio\.io\/v1 or security\.istio\.io\/v1beta1/],
  ];
  for (const [what, object, path, message] of BAD) {
    it(`${what}: an error at ${path}`, () => {
      const issue = issuesOf(object).find((i) => i.severity === 'error' && i.path === path);
      assert.ok(issue, JSON.stringify(issuesOf(object)));
      assert.match(issue.message, message);
    });
  }

  it('every valid form is accepted without a word: v1 and v1beta1, empty spec, workload with ports', () => {
    for (const object of [
      pa('mesh', 'istio-system', { mtls: { mode: 'STRICT' } }),
      pa('beta', 'shop', { mtls: { mode: 'PERMISSIVE' } }, undefined, 'security.istio.io/v1beta1'),
      { apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata: { name: 'empty', namespace: 'shop' } },
      pa('ports', 'shop', { selector: SELECTOR, mtls: { mode: 'UNSET' }, portLevelMtls: { 8080: { mode: 'DISABLE' }, '9090': { mode: 'STRICT' } } }),
    ]) {
      const parsed = parseObject({ object, source });
      assert.equal(parsed.type, 'rule', JSON.stringify(parsed));
      assert.deepEqual(issuesOf(object), []);
    }
  });
});

describe('a plaintext DestinationRule towards a STRICT server', () => {
  const strict = pa('default', 'istio-system', { mtls: { mode: 'STRICT' } });
  const plaintext = rule('DestinationRule', 'reviews', 'shop', { host: 'reviews', trafficPolicy: { portLevelSettings: [{ port: { number: 9080 }, tls: { mode: 'DISABLE' } }] } });

  it('is an MP_MTLS_CONFLICT warning on the rule, naming the policy, in what configz and analyze show', async () => {
    const push = pushOf([strict, plaintext]);
    const issues = push.ruleStatus.get('DestinationRule/shop/reviews')?.issues ?? [];
    assert.deepEqual(issues.map((i) => [i.code, i.severity, i.path]), [['MP_MTLS_CONFLICT', 'warning', 'spec.trafficPolicy.portLevelSettings[0].tls.mode']]);
    assert.match(issues[0]?.message ?? '', /sends plaintext to reviews\.shop\.svc\.cluster\.local, whose PeerAuthentication istio-system\/default is STRICT/);
    const dir = await MeshDir.create();
    try {
      await dir.write('mesh.yaml', [...WORKLOADS, strict, plaintext]);
      const findings = await analyzeDirectory(dir.path);
      assert.deepEqual(findings.filter((f) => f.code === 'MP_MTLS_CONFLICT').map((f) => [f.object, f.path]), [['DestinationRule shop/reviews', 'spec.trafficPolicy.portLevelSettings[0].tls.mode']]);
    } finally {
      await dir.remove();
    }
  });

  it('is silent when the server takes plaintext (a workload DISABLE, or no policy at all)', () => {
    const off = pa('reviews', 'shop', { selector: { matchLabels: { app: 'reviews' } }, mtls: { mode: 'DISABLE' } });
    assert.deepEqual(pushOf([strict, off, plaintext]).ruleStatus.get('DestinationRule/shop/reviews')?.issues, []);
    assert.deepEqual(pushOf([plaintext]).ruleStatus.get('DestinationRule/shop/reviews')?.issues, []);
  });
});

describe('workload identities on endpoints', () => {
  it("a Pod's spec.serviceAccountName, else default, and a WorkloadEntry's serviceAccount", () => {
    const withAccount = pod('reviews-v2', 'shop', '10.244.0.3', { app: 'reviews', version: 'v2' });
    const converted = convertObjects([
      ...WORKLOADS.filter((o) => o['kind'] !== 'EndpointSlice' || (o['metadata'] as { name: string }).name !== 'reviews-abcde'),
      { ...withAccount, spec: { ...(withAccount['spec'] as object), serviceAccountName: 'bookinfo-reviews' } },
      endpointSlice('reviews', 'shop', { name: 'http', port: 8080 }, [{ name: 'reviews-v1', ip: '10.244.0.1' }, { name: 'reviews-v2', ip: '10.244.0.3' }]),
      { apiVersion: 'networking.istio.io/v1', kind: 'ServiceEntry', metadata: { name: 'vms', namespace: 'shop' }, spec: { hosts: ['vm.shop.internal'], location: 'MESH_INTERNAL', resolution: 'STATIC', ports: [{ number: 80, name: 'http', protocol: 'HTTP' }], workloadSelector: { labels: { app: 'vm' } } } },
      { apiVersion: 'networking.istio.io/v1', kind: 'WorkloadEntry', metadata: { name: 'vm-1', namespace: 'shop' }, spec: { address: '10.0.0.9', labels: { app: 'vm' }, serviceAccount: 'vm-runner' } },
    ].map((object) => ({ object, source })));
    assert.deepEqual(converted.rejected, []);
    assert.deepEqual(converted.endpoints.map((e) => [e.address, e.serviceAccount]), [['10.244.0.2', 'default'], ['10.244.0.1', 'default'], ['10.244.0.3', 'bookinfo-reviews'], ['10.0.0.9', 'vm-runner']]);
    assert.deepEqual(converted.warnings, []);
  });

  it('a service account name Kubernetes would refuse is an error on the Pod', () => {
    const bad = pod('reviews-v9', 'shop', '10.244.0.9', { app: 'reviews' });
    const parsed = parseObject({ object: { ...bad, spec: { serviceAccountName: 'Not_A_Name' } }, source });
    assert.deepEqual(parsed.type === 'rejected' ? parsed.rejected.issues.map((i) => i.path) : parsed.type, ['spec.serviceAccountName']);
  });
});
