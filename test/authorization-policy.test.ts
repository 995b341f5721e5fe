// AuthorizationPolicy as Istio writes it: the mistakes users make, each with its code and field;
// which policies apply to which workload; and the Envoy RBAC filters each policy becomes on the
// workload's inbound side (HTTP and TCP) and on a proxyless gRPC server, failing closed where a
// target cannot evaluate a condition.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseProxy } from '../src/model/proxy.ts';
import { buildPushContext, type PushContext } from '../src/model/push-context.ts';
import type { ValidationIssue } from '../src/model/rules.ts';
import { convertObjects } from '../src/sources/kube-objects.ts';
import { grpcAuthorizationHttpFilters } from '../src/xds/generate/authz.ts';
import { grpcDegradations } from '../src/xds/generate/grpc-degradation.ts';
import type { JsonObject } from '../src/xds/proto-json.ts';
import { protoJson } from '../src/xds/proto-json.ts';
import { renderForProxy } from '../src/xds/render.ts';
import { LISTENER_TYPE, RBAC_HTTP_TYPE } from '../src/xds/type-urls.ts';
import { checkResourceJson } from '../src/xds/validate/pgv.ts';
import { endpointSlice, pod, rule, service, type K8sObject } from './support/mesh-dir.ts';
import { violations } from './support/rendered.ts';

const NS = 'default';
const base: K8sObject[] = [
  service('reviews', NS, [{ name: 'http', port: 9080, targetPort: 9080 }], '10.96.0.30'),
  service('mongo', NS, [{ name: 'tcp-mongo', port: 27017, targetPort: 27017 }], '10.96.0.40'),
  service('ratings', 'shop', [{ name: 'http', port: 9080, targetPort: 9080 }], '10.96.0.31'),
  pod('reviews-v1-0', NS, '10.244.0.10', { app: 'reviews', version: 'v1' }),
  pod('mongo-0', NS, '10.244.0.40', { app: 'mongo' }),
  pod('ratings-v1-0', 'shop', '10.244.0.20', { app: 'ratings', version: 'v1' }),
  endpointSlice('reviews', NS, { name: 'http', port: 9080 }, [{ name: 'reviews-v1-0', ip: '10.244.0.10' }]),
  endpointSlice('mongo', NS, { name: 'tcp-mongo', port: 27017 }, [{ name: 'mongo-0', ip: '10.244.0.40' }]),
  endpointSlice('ratings', 'shop', { name: 'http', port: 9080 }, [{ name: 'ratings-v1-0', ip: '10.244.0.20' }]),
];
const REVIEWS = parseProxy('sidecar~10.244.0.10~reviews-v1-0.default~default.svc.cluster.local');
const MONGO = parseProxy('sidecar~10.244.0.40~mongo-0.default~default.svc.cluster.local');
const RATINGS = parseProxy('sidecar~10.244.0.20~ratings-v1-0.shop~shop.svc.cluster.local');
const RATINGS_GRPC = parseProxy('sidecar~10.244.0.20~ratings-v1-0.shop~shop.svc.cluster.local', { GENERATOR: 'grpc' });

const policy = (name: string, spec: unknown, namespace = NS): K8sObject => rule('AuthorizationPolicy', name, namespace, spec);
const reviewsOnly = { selector: { matchLabels: { app: 'reviews' } } };

function pushOf(objects: readonly K8sObject[]): PushContext {
  return buildPushContext(convertObjects(objects.map((object) => ({ object, source: { origin: 'file', location: 'policies.yaml' } }))));
}

/** Every issue for the object named `name` and whether it is applied. */
function outcome(object: K8sObject): { issues: ValidationIssue[]; applied: boolean } {
  const objects = [...base, object];
  const converted = convertObjects(objects.map((o) => ({ object: o, source: { origin: 'file', location: 'policies.yaml' } })));
  const rejected = converted.rejected.filter((r) => r.name === 'broken');
  if (rejected.length > 0) return { issues: rejected.flatMap((r) => [...r.issues]), applied: false };
  const status = [...buildPushContext(converted).ruleStatus.values()].find((s) => s.rule.meta.name === 'broken');
  assert.ok(status, 'the policy is neither rejected nor known');
  return { issues: [...status.issues, ...(status.rule.meta.warnings ?? [])], applied: status.applied };
}

interface Mistake {
  readonly what: string;
  readonly spec: unknown;
  readonly code: string;
  readonly path: string;
  /** Warnings leave the policy applied (it fails closed where it cannot be enforced); errors reject it. */
  readonly severity?: 'error' | 'warning';
  readonly applied?: boolean;
}

const rules = (...list: unknown[]): Record<string, unknown> => ({ ...reviewsOnly, rules: list });
const to = (operation: unknown): Record<string, unknown> => rules({ to: [{ operation }] });
const from = (source: unknown): Record<string, unknown> => rules({ from: [{ source }] });
const when = (...conditions: unknown[]): Record<string, unknown> => rules({ when: conditions });

const MISTAKES: readonly Mistake[] = [
  { what: 'an action Istio does not have', spec: { ...reviewsOnly, action: 'PERMIT' }, code: 'MP_RULE_INVALID', path: 'spec.action' },
  { what: 'CUSTOM without a provider', spec: { action: 'CUSTOM', rules: [{}] }, code: 'MP_RULE_INVALID', path: 'spec.provider' },
  { what: 'a provider on an ALLOW policy', spec: { provider: { name: 'opa' }, rules: [{}] }, code: 'MP_RULE_INVALID', path: 'spec.provider' },
  { what: 'CUSTOM (external authorization), enforced as DENY', spec: { action: 'CUSTOM', provider: { name: 'opa' }, rules: [{}] }, code: 'MP_UNSUPPORTED', path: 'spec.action', severity: 'warning', applied: true },
  { what: 'an empty from', spec: rules({ from: [] }), code: 'MP_RULE_INVALID', path: 'spec.rules[0].from' },
  { what: 'an empty source', spec: from({}), code: 'MP_RULE_INVALID', path: 'spec.rules[0].from[0].source' },
  { what: 'a from entry without source', spec: rules({ from: [{}] }), code: 'MP_RULE_INVALID', path: 'spec.rules[0].from[0].source' },
  { what: 'an empty operation', spec: to({}), code: 'MP_RULE_INVALID', path: 'spec.rules[0].to[0].operation' },
  { what: 'a named port', spec: to({ ports: ['http'] }), code: 'MP_RULE_INVALID', path: 'spec.rules[0].to[0].operation.ports[0]' },
  { what: 'port 70000', spec: to({ notPorts: ['70000'] }), code: 'MP_RULE_INVALID', path: 'spec.rules[0].to[0].operation.notPorts[0]' },
  { what: 'a /33 block', spec: from({ ipBlocks: ['10.0.0.0/33'] }), code: 'MP_RULE_INVALID', path: 'spec.rules[0].from[0].source.ipBlocks[0]' },
  { what: 'a host name as an ipBlock', spec: from({ notRemoteIpBlocks: ['gateway.internal'] }), code: 'MP_RULE_INVALID', path: 'spec.rules[0].from[0].source.notRemoteIpBlocks[0]' },
  { what: 'an empty method', spec: to({ methods: [''] }), code: 'MP_RULE_INVALID', path: 'spec.rules[0].to[0].operation.methods[0]' },
  { what: 'paths as a string', spec: to({ paths: '/api' }), code: 'MP_RULE_INVALID', path: 'spec.rules[0].to[0].operation.paths' },
  { what: 'a when key Istio does not know', spec: when({ key: 'source.user', values: ['jason'] }), code: 'MP_RULE_INVALID', path: 'spec.rules[0].when[0].key' },
  { what: 'a header key without a name', spec: when({ key: 'request.headers[]', values: ['x'] }), code: 'MP_RULE_INVALID', path: 'spec.rules[0].when[0].key' },
  { what: 'a condition without values', spec: when({ key: 'source.namespace' }), code: 'MP_RULE_INVALID', path: 'spec.rules[0].when[0].values' },
  { what: 'a source.ip that is not an address', spec: when({ key: 'source.ip', values: ['10.1.2'] }), code: 'MP_RULE_INVALID', path: 'spec.rules[0].when[0].values[0]' },
  { what: 'a destination.port that is not a number', spec: when({ key: 'destination.port', notValues: ['web'] }), code: 'MP_RULE_INVALID', path: 'spec.rules[0].when[0].notValues[0]' },
  { what: 'a misspelt field', spec: { ...reviewsOnly, rule: [{}] }, code: 'MP_RULE_INVALID', path: 'spec.rule' },
  { what: 'a misspelt source field', spec: from({ principal: ['cluster.local/ns/default/sa/x'] }), code: 'MP_RULE_INVALID', path: 'spec.rules[0].from[0].source.principal' },
  { what: 'selector and targetRefs together', spec: { ...reviewsOnly, targetRefs: [{ kind: 'Service', group: '', name: 'reviews' }] }, code: 'MP_RULE_INVALID', path: 'spec.targetRefs' },
  { what: 'a spec that is a string', spec: 'deny-all', code: 'MP_RULE_INVALID', path: 'spec' },
  { what: 'requestPrincipals without RequestAuthentication', spec: from({ requestPrincipals: ['*'] }), code: 'MP_UNSUPPORTED', path: 'spec.rules[0].from[0].source.requestPrincipals', severity: 'warning', applied: true },
  { what: 'a JWT claim condition', spec: when({ key: 'request.auth.claims[iss]', values: ['x'] }), code: 'MP_UNSUPPORTED', path: 'spec.rules[0].when[0].key', severity: 'warning', applied: true },
  { what: 'a path template', spec: to({ paths: ['/api/{*}/info'] }), code: 'MP_UNSUPPORTED', path: 'spec.rules[0].to[0].operation.paths[0]', severity: 'warning', applied: true },
  { what: 'a policy attached to a Service (waypoints only)', spec: { targetRefs: [{ kind: 'Service', group: '', name: 'reviews' }], rules: [{}] }, code: 'MP_UNSUPPORTED', path: 'spec.targetRefs', severity: 'warning', applied: false },
  { what: 'a DENY policy without rules', spec: { ...reviewsOnly, action: 'DENY' }, code: 'MP_RULE_INEFFECTIVE', path: 'spec.rules', severity: 'warning', applied: true },
];

describe('AuthorizationPolicy mistakes are reported with their code and field', () => {
  for (const mistake of MISTAKES) {
    const severity = mistake.severity ?? 'error';
    it(`${mistake.what}: ${mistake.code} (${severity}) at ${mistake.path}`, () => {
      const { issues, applied } = outcome(policy('broken', mistake.spec));
      assert.ok(issues.some((i) => i.code === mistake.code && i.path === mistake.path && i.severity === severity), JSON.stringify(issues, null, 1));
      assert.equal(applied, mistake.applied ?? false);
    });
  }

  it('a broken policy changes nothing a workload is served', () => {
    const served = (objects: readonly K8sObject[]): string[] => renderForProxy(pushOf(objects), REVIEWS)[LISTENER_TYPE].map((r) => `${r.name}@${r.version}`);
    assert.deepEqual(served([...base, policy('broken', { ...reviewsOnly, action: 'PERMIT' })]), served(base));
  });
});

describe('which policies apply to a workload', () => {
  const objects = [
    ...base,
    policy('mesh-wide', { action: 'AUDIT', rules: [{}] }, 'istio-system'),
    policy('root-selector', { selector: { matchLabels: { app: 'ratings' } }, rules: [{}] }, 'istio-system'),
    policy('namespace-wide', { action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin'] } }] }] }),
    policy('reviews-only', { ...reviewsOnly, rules: [{}] }),
  ];
  const applied = (proxy: typeof REVIEWS): string[] => pushOf(objects).authorizationPoliciesFor(proxy).map((a) => `${a.policy.meta.name}:${a.scope}`);

  it('the root namespace is the whole mesh, a namespace its workloads, a selector the workloads it picks', () => {
    assert.deepEqual(applied(REVIEWS), ['mesh-wide:mesh', 'namespace-wide:namespace', 'reviews-only:workload']);
    assert.deepEqual(applied(MONGO), ['mesh-wide:mesh', 'namespace-wide:namespace']);
  });

  it('a selector in the root namespace picks matching workloads in every namespace, as in Istio', () => {
    assert.deepEqual(applied(RATINGS), ['mesh-wide:mesh', 'root-selector:workload']);
  });

  it('a gateway is not a workload any policy selects', () => {
    assert.deepEqual(applied(parseProxy('router~10.244.9.9~gw-0.istio-system~istio-system.svc.cluster.local')), []);
  });
});

/** The filters of the inbound chain for `port` in the workload's virtualInbound. */
function inboundFilters(push: PushContext, proxy: typeof REVIEWS, port: number): { http: JsonObject[]; network: JsonObject[] } {
  const rendered = renderForProxy(push, proxy);
  assert.deepEqual(violations(rendered), [], 'Envoy validate.rules and cross-references');
  const listener = rendered[LISTENER_TYPE].find((r) => r.name === 'virtualInbound')?.json as { filter_chains: { name: string; filters: JsonObject[] }[] };
  const chain = listener.filter_chains.find((c) => c.name === `0.0.0.0_${String(port)}`);
  assert.ok(chain, `a chain for ${String(port)}`);
  const hcm = chain.filters.find((f) => f['name'] === 'envoy.filters.network.http_connection_manager');
  const http = ((hcm?.['typed_config'] as JsonObject | undefined)?.['http_filters'] ?? []) as JsonObject[];
  return { http: http.filter((f) => f['name'] === 'envoy.filters.http.rbac'), network: chain.filters.filter((f) => f['name'] === 'envoy.filters.network.rbac') };
}

function rbacOf(filter: JsonObject | undefined): { action: string; policies: Record<string, JsonObject> } {
  const rules = (filter?.['typed_config'] as JsonObject | undefined)?.['rules'] as { action: string; policies: Record<string, JsonObject> } | undefined;
  assert.ok(rules, 'an RBAC filter with rules');
  return rules;
}

const ANY_PRINCIPAL = [{ and_ids: { ids: [{ any: true }] } }];
const ANY_PERMISSION = [{ and_rules: { rules: [{ any: true }] } }];
const orRules = (...rules: JsonObject[]): JsonObject => ({ or_rules: { rules } });
const orIds = (...ids: JsonObject[]): JsonObject => ({ or_ids: { ids } });

describe('policies become Envoy RBAC filters on the inbound side, as Istio builds them', () => {
  it('spec {} allows nothing: an ALLOW filter whose only policy never matches', () => {
    const { http } = inboundFilters(pushOf([...base, policy('allow-nothing', {})]), REVIEWS, 9080);
    assert.deepEqual(http.map((f) => rbacOf(f).action), ['ALLOW']);
    assert.deepEqual(rbacOf(http[0]).policies, {
      'ns[default]-policy[allow-nothing]-rule[0]': { permissions: [{ not_rule: { any: true } }], principals: [{ not_id: { any: true } }] },
    });
  });

  it('a DENY on paths: exact, prefix (x*), suffix (*x) and any (*) paths, any caller', () => {
    const { http } = inboundFilters(pushOf([...base, policy('no-admin', { ...reviewsOnly, action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin', '/admin/*', '*/debug', '*'] } }] }] })]), REVIEWS, 9080);
    assert.deepEqual(rbacOf(http[0]), {
      action: 'DENY',
      policies: {
        'ns[default]-policy[no-admin]-rule[0]': {
          permissions: [{ and_rules: { rules: [orRules(
            { url_path: { path: { exact: '/admin' } } },
            { url_path: { path: { prefix: '/admin/' } } },
            { url_path: { path: { suffix: '/debug' } } },
            { url_path: { path: { safe_regex: { regex: '.+' } } } },
          )] } }],
          principals: ANY_PRINCIPAL,
        },
      },
    });
  });

  it('an ALLOW for principals, namespaces, ipBlocks and methods: SPIFFE names, a namespace regex, CIDRs, the :method header', () => {
    const { http } = inboundFilters(
      pushOf([...base, policy('callers', rules({
        from: [{ source: { principals: ['cluster.local/ns/default/sa/productpage'], notNamespaces: ['test-*'], ipBlocks: ['198.51.100.0/24'], notRemoteIpBlocks: ['203.0.113.9'] } }],
        to: [{ operation: { methods: ['GET', 'HEAD'], notPorts: ['15000'] } }],
        when: [{ key: 'request.headers[x-user]', values: ['jason*'] }, { key: 'destination.ip', notValues: ['fd00::/8'] }],
      }))]),
      REVIEWS,
      9080,
    );
    assert.deepEqual(rbacOf(http[0]).policies['ns[default]-policy[callers]-rule[0]'], {
      permissions: [{ and_rules: { rules: [
        orRules({ header: { name: ':method', string_match: { exact: 'GET' } } }, { header: { name: ':method', string_match: { exact: 'HEAD' } } }),
        { not_rule: orRules({ destination_port: 15000 }) },
        { not_rule: orRules({ destination_ip: { address_prefix: 'fd00::', prefix_len: 8 } }) },
      ] } }],
      principals: [{ and_ids: { ids: [
        orIds({ authenticated: { principal_name: { exact: 'spiffe://cluster.local/ns/default/sa/productpage' } } }),
        { not_id: orIds({ authenticated: { principal_name: { safe_regex: { regex: '.*/ns/test-.*/.*' } } } }) },
        { not_id: orIds({ remote_ip: { address_prefix: '203.0.113.9', prefix_len: 32 } }) },
        orIds({ direct_remote_ip: { address_prefix: '198.51.100.0', prefix_len: 24 } }),
        orIds({ header: { name: 'x-user', string_match: { prefix: 'jason' } } }),
      ] } }],
    });
  });

  it("Istio's order: CUSTOM (as DENY), AUDIT (LOG), DENY, ALLOW, each action one filter holding every policy's rules", () => {
    const { http } = inboundFilters(pushOf([
      ...base,
      policy('allow', { ...reviewsOnly, rules: [{}] }),
      policy('deny', { ...reviewsOnly, action: 'DENY', rules: [{ to: [{ operation: { methods: ['DELETE'] } }] }, { to: [{ operation: { paths: ['/x'] } }] }] }),
      policy('audit', { action: 'AUDIT', rules: [{}] }, 'istio-system'),
      policy('ext', { ...reviewsOnly, action: 'CUSTOM', provider: { name: 'opa' }, rules: [{ to: [{ operation: { paths: ['/opa/*'] } }] }] }),
    ]), REVIEWS, 9080);
    assert.deepEqual(http.map((f) => [rbacOf(f).action, Object.keys(rbacOf(f).policies)]), [
      ['DENY', ['ns[default]-policy[ext]-rule[0]']],
      ['LOG', ['ns[istio-system]-policy[audit]-rule[0]']],
      ['DENY', ['ns[default]-policy[deny]-rule[0]', 'ns[default]-policy[deny]-rule[1]']],
      ['ALLOW', ['ns[default]-policy[allow]-rule[0]']],
    ]);
    assert.deepEqual(rbacOf(http[3]).policies['ns[default]-policy[allow]-rule[0]'], { permissions: ANY_PERMISSION, principals: ANY_PRINCIPAL });
  });

  it('a TCP port gets network RBAC filters: a DENY on HTTP methods denies every connection, an ALLOW on them allows none', () => {
    const objects = [
      ...base,
      policy('deny-get', { action: 'DENY', selector: { matchLabels: { app: 'mongo' } }, rules: [{ to: [{ operation: { methods: ['GET'] } }] }] }),
      policy('allow-get', { selector: { matchLabels: { app: 'mongo' } }, rules: [{ to: [{ operation: { methods: ['GET'], ports: ['27017'] } }] }] }),
    ];
    const { network, http } = inboundFilters(pushOf(objects), MONGO, 27017);
    assert.deepEqual(http, []);
    assert.deepEqual(network.map((f) => [rbacOf(f).action, (f['typed_config'] as JsonObject)['stat_prefix']]), [['DENY', 'tcp.'], ['ALLOW', 'tcp.']]);
    assert.deepEqual(rbacOf(network[0]).policies['ns[default]-policy[deny-get]-rule[0]'], { permissions: ANY_PERMISSION, principals: ANY_PRINCIPAL });
    assert.deepEqual(rbacOf(network[1]).policies, {});
  });

  it('requestPrincipals fail closed: an ALLOW rule using them is left out, a DENY rule ignores them and denies more', () => {
    const { http } = inboundFilters(pushOf([
      ...base,
      policy('jwt-allow', rules({ from: [{ source: { requestPrincipals: ['issuer/subject'] } }] }, {})),
      policy('jwt-deny', { ...reviewsOnly, action: 'DENY', rules: [{ from: [{ source: { notRequestPrincipals: ['*'] } }], to: [{ operation: { paths: ['/private/*'] } }] }] }),
    ]), REVIEWS, 9080);
    assert.deepEqual(Object.keys(rbacOf(http[1]).policies), ['ns[default]-policy[jwt-allow]-rule[1]'], 'rule[0] is not there to allow anyone');
    assert.deepEqual(rbacOf(http[0]).policies['ns[default]-policy[jwt-deny]-rule[0]'], {
      permissions: [{ and_rules: { rules: [orRules({ url_path: { path: { prefix: '/private/' } } })] } }],
      principals: ANY_PRINCIPAL,
    });
  });

  it('the inbound passthrough chain carries the network filters too, so an undeclared port is no way around a policy', () => {
    const rendered = renderForProxy(pushOf([...base, policy('allow-nothing', {})]), REVIEWS);
    const listener = rendered[LISTENER_TYPE].find((r) => r.name === 'virtualInbound')?.json as { filter_chains: { name: string; filters: JsonObject[] }[] };
    const catchall = listener.filter_chains.find((c) => c.name === 'virtualInbound-catchall');
    assert.deepEqual(catchall?.filters.map((f) => f['name']), ['envoy.filters.network.rbac', 'envoy.filters.network.tcp_proxy']);
  });

  it('a workload no policy applies to is sent no RBAC filter at all', () => {
    const { http, network } = inboundFilters(pushOf([...base, policy('reviews-only', { ...reviewsOnly, rules: [{}] })]), MONGO, 27017);
    assert.deepEqual([http, network], [[], []]);
  });
});

describe('proxyless gRPC servers get the same RBAC filter, restricted to what gRPC evaluates (gRFC A41)', () => {
  const objects = [
    ...base,
    policy('audit', { action: 'AUDIT', rules: [{}] }, 'istio-system'),
    policy('sni-deny', { action: 'DENY', rules: [{ to: [{ operation: { methods: ['POST'] } }], when: [{ key: 'connection.sni', values: ['*.internal'] }] }] }, 'shop'),
    policy('sni-allow', { rules: [{ when: [{ key: 'connection.sni', values: ['ratings.shop'] }] }, { from: [{ source: { namespaces: ['default'] } }] }] }, 'shop'),
  ];
  const push = pushOf(objects);

  it('what gRPC cannot evaluate fails closed: DENY drops the condition (denies more), ALLOW drops the rule (allows less), AUDIT is not sent', () => {
    const filters = grpcAuthorizationHttpFilters(push, RATINGS_GRPC).map(protoJson);
    for (const filter of filters) {
      const { '@type': typeUrl, ...config } = filter['typed_config'] as JsonObject;
      assert.equal(typeUrl, RBAC_HTTP_TYPE);
      assert.deepEqual(checkResourceJson(RBAC_HTTP_TYPE, config), []);
    }
    assert.deepEqual(filters.map((f) => rbacOf(f).action), ['DENY', 'ALLOW']);
    // gRPC refuses a listener whose HTTP filters share a name: Istio's names for the two.
    assert.deepEqual(filters.map((f) => f['name']), ['envoy.filters.http.rbac.DENY', 'envoy.filters.http.rbac']);
    assert.deepEqual(rbacOf(filters[0]).policies['ns[shop]-policy[sni-deny]-rule[0]']?.['permissions'], [
      { and_rules: { rules: [orRules({ header: { name: ':method', string_match: { exact: 'POST' } } })] } },
    ]);
    assert.deepEqual(Object.keys(rbacOf(filters[1]).policies), ['ns[shop]-policy[sni-allow]-rule[1]']);
  });

  it('each degradation is reported as MP_GRPC_DEGRADED on the policy it comes from', () => {
    const issuesOf = (name: string): string[] => {
      const status = [...push.ruleStatus.values()].find((s) => s.rule.meta.name === name);
      assert.ok(status);
      return grpcDegradations(push, status.rule).map((i) => `${i.code} ${i.path}`);
    };
    assert.deepEqual(issuesOf('sni-deny'), ['MP_GRPC_DEGRADED spec.rules[0].when[0].values[0]']);
    assert.deepEqual(issuesOf('sni-allow'), ['MP_GRPC_DEGRADED spec.rules[0].when[0].values[0]']);
    assert.deepEqual(issuesOf('audit'), ['MP_GRPC_DEGRADED spec.action']);
  });

  it('an Envoy sidecar of the same workload keeps the SNI condition', () => {
    const { http } = inboundFilters(push, RATINGS, 9080);
    const deny = http.find((f) => rbacOf(f).action === 'DENY');
    assert.ok(JSON.stringify(deny).includes('"requested_server_name":{"suffix":".internal"}'));
  });
});
