import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DestinationRule, VirtualService } from '../src/model/rules.ts';
import type { SourceRef } from '../src/model/service.ts';
import type { SourcedObject } from '../src/sources/kube-objects.ts';
import { convertObjects, parseObject } from '../src/sources/kube-objects.ts';
import { checkRe2Regex } from '../src/sources/istio-objects.ts';

const source: SourceRef = { origin: 'file', location: 'cluster.yaml' };

function sourced(...objects: unknown[]): SourcedObject[] {
  return objects.map((object, index) => ({ object, source, position: `document ${index + 1}` }));
}

function service(name: string, ports: unknown[], extra: Record<string, unknown> = {}): unknown {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'shop', labels: { app: name } },
    spec: { clusterIP: '10.96.0.10', ports, ...extra },
  };
}

function pod(name: string, ip: string, labels: Record<string, string>, namespace = 'shop', phase = 'Running'): unknown {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace, labels }, status: { phase, podIP: ip, podIPs: [{ ip }] } };
}

function slice(serviceName: string, endpoints: unknown[], ports: unknown[] = [{ name: 'http', port: 8080, protocol: 'TCP' }]): unknown {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    addressType: 'IPv4',
    metadata: { name: `${serviceName}-abcde`, namespace: 'shop', labels: { 'kubernetes.io/service-name': serviceName } },
    ports,
    endpoints,
  };
}

function virtualService(spec: unknown, apiVersion = 'networking.istio.io/v1'): unknown {
  return { apiVersion, kind: 'VirtualService', metadata: { name: 'reviews', namespace: 'default' }, spec };
}

function destinationRule(spec: unknown): unknown {
  return { apiVersion: 'networking.istio.io/v1beta1', kind: 'DestinationRule', metadata: { name: 'reviews', namespace: 'default' }, spec };
}

const route = (subset: string, weight?: number): unknown => ({ destination: { host: 'reviews', subset }, ...(weight === undefined ? {} : { weight }) });

function issuesOf(object: unknown): { path: string; severity: string; code: string; message: string }[] {
  const parsed = parseObject({ object, source });
  if (parsed.type === 'rejected') return parsed.rejected.issues.map((issue) => ({ ...issue }));
  if (parsed.type === 'rule') return (parsed.rule.meta.warnings ?? []).map((issue) => ({ ...issue }));
  return [];
}

void describe('Services', () => {
  void it('a Service port named grpc-web is GRPC-Web; appProtocol wins over the name', () => {
    const { services } = convertObjects(
      sourced(
        service('catalog', [
          { name: 'grpc-web', port: 8080 },
          { name: 'http-admin', port: 9090, appProtocol: 'grpc' },
          { name: 'metrics', port: 9100 },
          { name: 'dns', port: 53, protocol: 'UDP' },
        ]),
      ),
    );
    assert.deepEqual(
      services[0]?.ports.map((port) => [port.name, port.protocol]),
      [['grpc-web', 'GRPC-Web'], ['http-admin', 'GRPC'], ['metrics', 'Unsupported'], ['dns', 'UDP']],
    );
  });

  void it('a Service becomes its FQDN with ports, target ports, labels and ClusterIP', () => {
    const { services, rejected } = convertObjects(sourced(service('catalog', [{ name: 'http', port: 80, targetPort: 8080 }, { name: 'grpc', port: 9000, targetPort: 'grpc-port' }])));
    assert.deepEqual(rejected, []);
    assert.deepEqual(services, [
      {
        hostname: 'catalog.shop.svc.cluster.local',
        name: 'catalog',
        namespace: 'shop',
        ports: [
          { name: 'http', port: 80, targetPort: 8080, protocol: 'HTTP' },
          { name: 'grpc', port: 9000, targetPort: 'grpc-port', protocol: 'GRPC' },
        ],
        labels: { app: 'catalog' },
        vip: '10.96.0.10',
        source,
      },
    ]);
  });

  void it('a headless Service has no vip, and a Service without a namespace lands in default, as kubectl apply would', () => {
    const headless = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'db' }, spec: { clusterIP: 'None', ports: [{ name: 'tcp', port: 5432 }] } };
    const [db] = convertObjects(sourced(headless)).services;
    assert.ok(db);
    assert.equal(db.hostname, 'db.default.svc.cluster.local');
    assert.equal(db.vip, undefined);
    assert.equal(db.ports[0]?.targetPort, 5432, 'targetPort defaults to the port');
  });

  void it('a Service with a port that is not a number is rejected, naming the field and what to write', () => {
    const { services, rejected } = convertObjects(sourced(service('catalog', [{ name: 'http', port: 'eighty' }])));
    assert.deepEqual(services, []);
    assert.equal(rejected[0]?.object, 'Service shop/catalog');
    const issue = rejected[0].issues[0];
    assert.ok(issue);
    assert.equal(issue.code, 'MP_OBJECT_INVALID');
    assert.equal(issue.path, 'spec.ports[0].port');
    assert.match(issue.message, /must be a port number 1\.\.65535, got string "eighty"/);
  });

  void it('an object without kind is rejected under the position it was found at', () => {
    const { rejected } = convertObjects(sourced({ apiVersion: 'v1', metadata: { name: 'x' } }, 'just a string'));
    assert.deepEqual(rejected.map((r) => [r.object, r.issues[0]?.path]), [['document 1', 'kind'], ['document 2', '']]);
  });

  void it('the same object twice is served once, and both files are told', () => {
    const first = { object: service('catalog', [{ name: 'http', port: 80 }]), source: { origin: 'file' as const, location: 'a.yaml' } };
    const second = { object: service('catalog', [{ name: 'http', port: 81 }]), source: { origin: 'file' as const, location: 'b.yaml' } };
    const { services, rejected, warnings } = convertObjects([first, second]);
    assert.deepEqual(services.map((s) => s.ports[0]?.port), [80]);
    assert.equal(rejected[0]?.source.location, 'b.yaml');
    assert.match(rejected[0].issues[0]?.message ?? '', /defined twice, here and in a\.yaml/);
    assert.equal(warnings[0]?.source.location, 'a.yaml');
    assert.match(warnings[0].issues[0]?.message ?? '', /defined twice, here and in b\.yaml: this one is served/);
  });

  void it('kinds meshpilot does not read are counted, not reported, and a Knative Service is not a Kubernetes Service', () => {
    const converted = convertObjects(
      sourced(
        { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'reviews-v1' } },
        { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'reviews-v2' } },
        { apiVersion: 'serving.knative.dev/v1', kind: 'Service', metadata: { name: 'hello' } },
      ),
    );
    assert.deepEqual(converted.rejected, []);
    assert.deepEqual(converted.services, []);
    assert.deepEqual(converted.ignored, { 'apps/v1 Deployment': 2, 'serving.knative.dev/v1 Service': 1 });
  });
});

void describe('Endpoints', () => {
  void it('an endpoint carries the labels of the Pod its targetRef names', () => {
    const { endpoints, rejected } = convertObjects(
      sourced(
        service('reviews', [{ name: 'http', port: 9080, targetPort: 8080 }]),
        pod('reviews-v2-abc', '10.244.1.7', { app: 'reviews', version: 'v2' }),
        slice('reviews', [
          { addresses: ['10.244.1.7'], conditions: { ready: true }, zone: 'eu-west-1b', nodeName: 'n1', targetRef: { kind: 'Pod', name: 'reviews-v2-abc' } },
          { addresses: ['10.244.1.8'], conditions: { ready: false }, targetRef: { kind: 'Pod', name: 'reviews-v3-gone', namespace: 'shop' } },
        ]),
      ),
    );
    assert.deepEqual(rejected, []);
    assert.deepEqual(endpoints, [
      {
        serviceHostname: 'reviews.shop.svc.cluster.local',
        servicePortName: 'http',
        address: '10.244.1.7',
        port: 8080,
        labels: { app: 'reviews', version: 'v2' },
        locality: { zone: 'eu-west-1b' },
        ready: true,
        workload: 'shop/reviews-v2-abc',
        // A Pod that names no service account runs as `default`, its identity.
        serviceAccount: 'default',
      },
      {
        serviceHostname: 'reviews.shop.svc.cluster.local',
        servicePortName: 'http',
        address: '10.244.1.8',
        port: 8080,
        labels: {},
        ready: false,
        workload: 'shop/reviews-v3-gone',
      },
    ]);
  });

  void it('an endpoint without targetRef gets the labels of the running Pod with its IP in the same namespace', () => {
    const { endpoints } = convertObjects(
      sourced(
        pod('ratings-v1', '10.244.2.2', { app: 'ratings', version: 'v1' }),
        pod('ratings-elsewhere', '10.244.2.3', { version: 'other-namespace' }, 'other'),
        pod('job-done', '10.244.2.4', { version: 'finished' }, 'shop', 'Succeeded'),
        slice('ratings', [{ addresses: ['10.244.2.2'] }, { addresses: ['10.244.2.3'] }, { addresses: ['10.244.2.4'] }], [{ port: 9080 }]),
      ),
    );
    assert.deepEqual(
      endpoints.map((e) => [e.address, e.servicePortName, e.labels['version'], e.workload, e.ready]),
      [
        ['10.244.2.2', '', 'v1', 'shop/ratings-v1', true],
        ['10.244.2.3', '', undefined, undefined, true],
        ['10.244.2.4', '', undefined, undefined, true],
      ],
    );
  });

  void it('one endpoint per address and slice port', () => {
    const ports = [{ name: 'http', port: 8080 }, { name: 'grpc', port: 9090 }];
    const { endpoints } = convertObjects(sourced(slice('catalog', [{ addresses: ['10.0.0.1', '10.0.0.2'] }], ports)));
    assert.deepEqual(
      endpoints.map((e) => `${e.servicePortName}:${e.address}:${e.port}`),
      ['grpc:10.0.0.1:9090', 'grpc:10.0.0.2:9090', 'http:10.0.0.1:8080', 'http:10.0.0.2:8080'],
    );
  });

  void it('legacy Endpoints are read, but only for services that have no EndpointSlice', () => {
    const legacy = (name: string, ip: string): unknown => ({
      apiVersion: 'v1',
      kind: 'Endpoints',
      metadata: { name, namespace: 'shop' },
      subsets: [
        {
          addresses: [{ ip, targetRef: { kind: 'Pod', name: `${name}-pod` } }],
          notReadyAddresses: [{ ip: '10.9.9.9' }],
          ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
        },
      ],
    });
    const { endpoints } = convertObjects(
      sourced(
        pod('old-pod', '10.1.1.1', { version: 'v1' }),
        legacy('old', '10.1.1.1'),
        legacy('sliced', '10.2.2.2'),
        slice('sliced', [{ addresses: ['10.3.3.3'] }]),
      ),
    );
    assert.deepEqual(
      endpoints.map((e) => [e.serviceHostname, e.address, e.ready, e.labels['version'] ?? null]),
      [
        ['old.shop.svc.cluster.local', '10.1.1.1', true, 'v1'],
        ['old.shop.svc.cluster.local', '10.9.9.9', false, null],
        ['sliced.shop.svc.cluster.local', '10.3.3.3', true, null],
      ],
    );
  });

  void it('an address listed in two slices during a rollout is served once, as ready', () => {
    const first = slice('reviews', [{ addresses: ['10.0.0.5'], conditions: { ready: false } }]);
    const second = { ...(slice('reviews', [{ addresses: ['10.0.0.5'], conditions: { ready: true } }]) as Record<string, unknown>), metadata: { name: 'reviews-zzzzz', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'reviews' } } };
    const { endpoints } = convertObjects(sourced(first, second));
    assert.deepEqual(endpoints.map((e) => [e.address, e.ready]), [['10.0.0.5', true]]);
  });
});

void describe('VirtualService validation', () => {
  void it('weights are relative, as in Istio: 60 and 30 split 2:1, and 49 and 50 are valid', () => {
    assert.deepEqual(issuesOf(virtualService({ hosts: ['reviews'], http: [{ route: [route('v1', 60), route('v3', 30)] }] })), []);
    assert.deepEqual(issuesOf(virtualService({ hosts: ['reviews'], http: [{ route: [route('v1', 49), route('v2', 50)] }] })), []);
    assert.deepEqual(issuesOf(virtualService({ hosts: ['reviews'], http: [{ route: [route('v1', 1000), route('v2', 3000)] }] })), []);
  });

  void it('several destinations whose weights sum to 0 are rejected with the field path and the fix', () => {
    const { rules, rejected } = convertObjects(sourced(virtualService({ hosts: ['reviews'], http: [{ route: [route('v1', 0), route('v3', 0)] }] })));
    assert.deepEqual(rules, []);
    assert.equal(rejected[0]?.object, 'VirtualService default/reviews');
    assert.deepEqual(rejected[0].issues, [
      {
        code: 'MP_RULE_INVALID',
        severity: 'error',
        path: 'spec.http[0].route',
        message: 'the weights of http[0].route sum to 0, so no destination gets traffic: give at least one destination a positive weight',
      },
    ]);
  });

  void it('a single destination may omit its weight; several without weights are rejected', () => {
    assert.deepEqual(issuesOf(virtualService({ hosts: ['reviews'], http: [{ route: [route('v1')] }] })), []);
    const issues = issuesOf(virtualService({ hosts: ['reviews'], http: [{ route: [route('v1'), route('v2')] }] }));
    assert.deepEqual(issues.map((i) => i.path), ['spec.http[0].route']);
    assert.match(issues[0]?.message ?? '', /sum to 0/);
  });

  void it('weights must be whole numbers from 0 up', () => {
    const issues = issuesOf(virtualService({ hosts: ['reviews'], http: [{ route: [route('v1', 50.5), route('v2', -20), { ...(route('v3') as object), weight: '10' }] }] }));
    assert.deepEqual(issues.map((i) => i.path), ['spec.http[0].route[0].weight', 'spec.http[0].route[1].weight', 'spec.http[0].route[2].weight']);
    assert.match(issues[1]?.message ?? '', /whole number from 0 up, got number -20/);
  });

  void it('without hosts it is a delegate, and an http route needs a destination host', () => {
    const issues = issuesOf(virtualService({ hosts: [], http: [{ match: [{ uri: { prefix: '/a' } }], route: [{ destination: { subset: 'v1' } }] }, { match: [] }] }));
    assert.deepEqual(issues.map((i) => i.path), ['spec.http[0].route[0].destination.host', 'spec.http[1].route']);
    assert.ok(issues.every((i) => i.severity === 'error' && i.code === 'MP_RULE_INVALID'));
  });

  void it('a match needs exactly one of exact, prefix or regex; an empty header match tests presence', () => {
    const issues = issuesOf(
      virtualService({
        hosts: ['reviews'],
        http: [
          {
            match: [{ uri: { prefix: '/api', exact: '/api' }, headers: { 'end-user': { exact: 'jason', prefix: 'j' }, 'x-canary': {} } }, { uri: {} }],
            route: [route('v1')],
          },
        ],
      }),
    );
    assert.deepEqual(issues.map((i) => i.path), ['spec.http[0].match[0].uri', 'spec.http[0].match[0].headers.end-user', 'spec.http[0].match[1].uri']);
    assert.match(issues[0]?.message ?? '', /has exact and prefix, but a match takes exactly one/);
  });

  void it('a regex RE2 cannot compile is rejected; RE2 inline flags are accepted', () => {
    const issues = issuesOf(virtualService({ hosts: ['reviews'], http: [{ match: [{ uri: { regex: '/api/(v1|v2' } }, { headers: { ua: { regex: '(?i).*firefox.*' } } }], route: [route('v1')] }] }));
    assert.deepEqual(issues.map((i) => i.path), ['spec.http[0].match[0].uri.regex']);
    assert.match(issues[0]?.message ?? '', /does not compile as an RE2 regex/);
    assert.match(checkRe2Regex('(?=x)') ?? '', /unsupported Perl syntax/);
    assert.equal(checkRe2Regex('(?P<version>v[0-9]+)'), undefined);
    // RE2 syntax JS lacks is still RE2: POSIX classes, one-letter and script Unicode classes.
    for (const valid of ['[[:alpha:]]+', '\\pN+', '\\p{Greek}', '[0-9]{1000}']) assert.equal(checkRe2Regex(valid), undefined, valid);
    assert.match(checkRe2Regex('(a{100}){11}') ?? '', /invalid repeat count/);
  });

  void it('RE2 decides what a regex is, as in Envoy: repeat counts over 1000, backreferences and huge programs are refused', () => {
    assert.match(checkRe2Regex('a{2000}') ?? '', /invalid repeat count/);
    assert.match(checkRe2Regex('(a)\\1') ?? '', /invalid escape/);
    assert.match(checkRe2Regex('[a-z]{1000}'.repeat(40)) ?? '', /over the 32768 Envoy accepts/);
    for (const ok of ['(?i).*firefox.*', '\\Aabc\\z', '(?U)a+', '[[:alpha:]]+', '\\pL+', '(a+)+$']) assert.equal(checkRe2Regex(ok), undefined, ok);
  });

  void it('an unknown field is an error with a spelling hint, and the rule is not served', () => {
    const { rules, rejected } = convertObjects(sourced(virtualService({ hosts: ['reviews'], http: [{ route: [route('v1')], timeot: '5s' }] })));
    assert.deepEqual(rules, []);
    const issues = rejected[0]?.issues ?? [];
    assert.equal(issues.length, 1);
    assert.equal(issues[0]?.severity, 'error');
    assert.equal(issues[0].code, 'MP_RULE_INVALID');
    assert.equal(issues[0].path, 'spec.http[0].timeot');
    assert.match(issues[0].message, /did you mean "timeout"/);
  });

  void it('a valid Istio field meshpilot does not implement is an MP_UNSUPPORTED warning naming it, and the rule is served', () => {
    const { rules, rejected } = convertObjects(sourced(virtualService({ hosts: ['reviews'], http: [{ match: [{ uri: { prefix: '/' }, statPrefix: 'reviews' }], route: [route('v1')] }] })));
    assert.deepEqual(rejected, []);
    assert.deepEqual((rules[0]?.meta.warnings ?? []).map((w) => [w.code, w.severity, w.path]), [['MP_UNSUPPORTED', 'warning', 'spec.http[0].match[0].statPrefix']]);
  });

  void it('the mesh wildcard host is refused, but a gateway may use it', () => {
    assert.deepEqual(issuesOf(virtualService({ hosts: ['*'], http: [{ route: [route('v1')] }] })).map((i) => i.path), ['spec.hosts[0]']);
    assert.deepEqual(issuesOf(virtualService({ hosts: ['*'], gateways: ['istio-system/ingress'], http: [{ route: [route('v1')] }] })), []);
  });

  void it('networking.istio.io v1, v1beta1 and v1alpha3 are read alike, keeping the spec as written', () => {
    const spec = { hosts: ['reviews'], http: [{ name: 'canary', route: [route('v1', 95), route('v2', 5)], retries: { attempts: 3 } }] };
    const { rules, rejected } = convertObjects(
      ['v1', 'v1beta1', 'v1alpha3'].map((version, index) => ({
        object: { apiVersion: `networking.istio.io/${version}`, kind: 'VirtualService', metadata: { name: `reviews-${index}` }, spec },
        source,
      })),
    );
    assert.deepEqual(rejected, []);
    assert.deepEqual(rules.map((rule) => [rule.meta.kind, rule.meta.namespace, rule.meta.name]), [
      ['VirtualService', 'default', 'reviews-0'],
      ['VirtualService', 'default', 'reviews-1'],
      ['VirtualService', 'default', 'reviews-2'],
    ]);
    assert.deepEqual((rules[0] as VirtualService).spec, spec, 'short hosts and unmodelled fields stay as written');
  });

  void it('an unknown networking.istio.io version is rejected with the versions to use', () => {
    const issues = issuesOf(virtualService({ hosts: ['reviews'], http: [{ route: [route('v1')] }] }, 'networking.istio.io/v2'));
    assert.equal(issues[0]?.path, 'apiVersion');
    assert.match(issues[0].message, /use networking\.istio\.io\/v1 or networking\.istio\.io\/v1beta1 or networking\.istio\.io\/v1alpha3/);
  });
});

void describe('DestinationRule validation', () => {
  void it('a DestinationRule needs a host', () => {
    const issues = issuesOf(destinationRule({ subsets: [{ name: 'v1', labels: { version: 'v1' } }] }));
    assert.deepEqual(issues.map((i) => [i.path, i.severity]), [['spec.host', 'error']]);
  });

  void it('subset names must be present and unique; label values must be strings', () => {
    const issues = issuesOf(
      destinationRule({
        host: 'reviews',
        subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v1', labels: { version: 'v2' } }, { labels: { version: 3 } }],
      }),
    );
    assert.deepEqual(issues.map((i) => i.path), ['spec.subsets[1].name', 'spec.subsets[2].name', 'spec.subsets[2].labels.version']);
    assert.match(issues[0]?.message ?? '', /subset "v1" is already defined at spec\.subsets\[0\]/);
    assert.match(issues[2]?.message ?? '', /quote it, e\.g\. version: "3"/);
  });

  void it('a valid DestinationRule keeps its subsets as written', () => {
    const spec = { host: 'reviews', subsets: [{ name: 'v1', labels: { version: 'v1' } }], trafficPolicy: { loadBalancer: { simple: 'ROUND_ROBIN' } } };
    const { rules } = convertObjects(sourced(destinationRule(spec)));
    assert.deepEqual((rules[0] as DestinationRule).spec, spec);
    assert.equal(rules[0]?.meta.warnings, undefined);
  });
});
