// Istio's own validation corpus (test/data/istio-validation, vendored from istio/istio): every
// document goes through what `meshpilot analyze` and the file source run, and meshpilot's verdict
// must say what Istio's does. A kind meshpilot does not serve is MP_UNSUPPORTED, never a mistake;
// the valid DestinationRules render as Istio renders them.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { readObjectsFromText } from '../src/sources/config-dir.ts';
import { isFields } from '../src/sources/object-fields.ts';
import { buildPushContext } from '../src/model/push-context.ts';
import { convertObjects } from '../src/sources/kube-objects.ts';
import type { JsonObject } from '../src/xds/proto-json.ts';
import { renderForProxy, type RenderedResources } from '../src/xds/render.ts';
import { CLUSTER_TYPE } from '../src/xds/type-urls.ts';
import { service } from './support/mesh-dir.ts';
import { resource, SIDECAR } from './support/rendered.ts';
import { agreesWithIstio, findingsFor, invalid, unsupported, VALID, verdictOf, warning, type IstioVerdict, type Verdict } from './support/verdict.ts';

const CORPUS = new URL('data/istio-validation/', import.meta.url).pathname;

/** The corpus files of kinds meshpilot does not serve, with the kind each holds: the one place to edit when a kind is served. */
const UNSERVED: Readonly<Record<string, string>> = {
  envoyfilter: 'EnvoyFilter',
  proxyconfig: 'ProxyConfig',
  reqauth: 'RequestAuthentication',
  telemetry: 'Telemetry',
  wasm: 'WasmPlugin',
  workloadgroup: 'WorkloadGroup',
};

interface Expected {
  readonly verdict: Verdict;
  /** Istio warns about this document (its corpus only records errors). */
  readonly istioWarns?: true;
  /** The verdict depends on work elsewhere in the issue (exportTo visibility). */
  readonly dependsOn?: 'exportTo';
}

/** meshpilot's verdict for each document of the kinds it serves, by file and document number. */
const SERVED: Readonly<Record<string, Expected>> = {
  // Istio accepts them; what meshpilot cannot enforce is reported, and the rule fails closed.
  'authz-valid.yaml#1': { verdict: unsupported('spec.rules[0].from[0].source.requestPrincipals') },
  'authz-valid.yaml#2': { verdict: unsupported('spec.rules[0].from[0].source.serviceAccounts') },
  'authz-invalid.yaml#1': { verdict: invalid('spec.rules[0].from[0].source.serviceAccounts') },
  'authz-invalid.yaml#2': { verdict: invalid('spec.rules[0].from[0].source.serviceAccounts') },
  'peerauth-valid.yaml#1': { verdict: VALID },
  'peerauth-valid.yaml#2': { verdict: VALID },
  'peerauth-invalid.yaml#1': { verdict: invalid('spec.mtls.mode') },
  'peerauth-invalid.yaml#2': { verdict: invalid('spec.portLevelMtls.acd') },
  'peerauth-invalid.yaml#3': { verdict: invalid('spec.portLevelMtls') },
  'peerauth-invalid.yaml#4': { verdict: invalid('spec.portLevelMtls') },
  'peerauth-invalid.yaml#5': { verdict: invalid('spec.portLevelMtls.0') },
  'peerauth-invalid.yaml#6': { verdict: invalid('spec.portLevelMtls.42949672') },
  'destinationrule-valid.yaml#1': { verdict: VALID },
  'destinationrule-valid.yaml#2': { verdict: VALID },
  'destinationrule-valid.yaml#3': { verdict: VALID },
  'destinationrule-valid.yaml#4': { verdict: VALID },
  'destinationrule-invalid.yaml#1': { verdict: invalid('spec.trafficPolicy.loadBalancer.warmup.minimumPercent') },
  'destinationrule-invalid.yaml#2': { verdict: invalid('spec.trafficPolicy.loadBalancer.warmup.duration') },
  'destinationrule-invalid.yaml#3': { verdict: invalid('spec.trafficPolicy.loadBalancer.warmup.aggression') },
  'serviceentry-valid.yaml#1': { verdict: VALID },
  'serviceentry-valid.yaml#2': { verdict: VALID },
  'serviceentry-valid.yaml#3': { verdict: warning('spec.workloadSelector', 'MP_RULE_WARNING'), istioWarns: true },
  'serviceentry-valid.yaml#4': { verdict: warning('spec.hosts[0]', 'MP_RULE_WARNING'), istioWarns: true },
  'serviceentry-valid.yaml#5': { verdict: warning('spec.ports', 'MP_RULE_INEFFECTIVE') },
  'serviceentry-invalid.yaml#1': { verdict: invalid('spec') },
  'serviceentry-invalid.yaml#2': { verdict: invalid('spec.hosts') },
  'serviceentry-invalid.yaml#3': { verdict: invalid('spec.workloadSelector.labels.val') },
  'serviceentry-invalid.yaml#4': { verdict: invalid('spec.workloadSelector') },
  'serviceentry-invalid.yaml#5': { verdict: invalid('spec.hosts[0]') },
  'serviceentry-invalid.yaml#6': { verdict: invalid('spec.addresses[0]') },
  'serviceentry-invalid.yaml#7': { verdict: invalid('spec.ports[1].name') },
  'serviceentry-invalid.yaml#8': { verdict: invalid('spec.ports[1].number') },
  'serviceentry-invalid.yaml#9': { verdict: invalid('spec.ports[0].number') },
  'serviceentry-invalid.yaml#10': { verdict: invalid('spec.ports[0].targetPort') },
  'serviceentry-invalid.yaml#11': { verdict: invalid('spec.endpoints') },
  'serviceentry-invalid.yaml#12': { verdict: invalid('spec.endpoints') },
  'workloadentry-valid.yaml#1': { verdict: unsupported('spec.network') },
  'workloadentry-valid.yaml#2': { verdict: warning('spec.address', 'MP_RULE_WARNING'), istioWarns: true },
  'workloadentry-valid.yaml#3': { verdict: unsupported('spec.address') },
  'workloadentry-valid.yaml#4': { verdict: unsupported('spec.address') },
  'workloadentry-valid.yaml#5': { verdict: VALID },
  'workloadentry-invalid.yaml#1': { verdict: invalid('spec') },
  'workloadentry-invalid.yaml#2': { verdict: invalid('spec.address') },
  'workloadentry-invalid.yaml#3': { verdict: invalid('spec.address') },
  'workloadentry-invalid.yaml#4': { verdict: invalid('spec.address') },
  'workloadentry-invalid.yaml#5': { verdict: invalid('spec.ports') },
  'workloadentry-invalid.yaml#6': { verdict: invalid('spec.ports.http') },
  'workloadentry-invalid.yaml#7': { verdict: invalid('spec.ports.@') },
};

interface CorpusDocument {
  readonly id: string;
  readonly file: string;
  readonly object: Record<string, unknown>;
  /** Istio's expected error (the corpus's `_err`), absent for a valid document. */
  readonly istioError?: string;
}

function corpus(): CorpusDocument[] {
  return readdirSync(CORPUS).filter((f) => f.endsWith('.yaml')).sort().flatMap((file) => {
    const read = readObjectsFromText(readFileSync(`${CORPUS}${file}`, 'utf8'), file);
    assert.ok(read.ok, `${file} does not parse`);
    return read.objects.map(({ object }, index) => {
      assert.ok(isFields(object));
      const { _err: istioError, ...rest } = object;
      return { id: `${file}#${index + 1}`, file, object: rest, ...(typeof istioError === 'string' ? { istioError } : {}) };
    });
  });
}

const DOCUMENTS = corpus();
const istioVerdict = (doc: CorpusDocument, expected?: Expected): IstioVerdict => (doc.istioError !== undefined ? 'invalid' : expected?.istioWarns ? 'warning' : 'valid');

describe("Istio's validation corpus, read as meshpilot analyze reads it", () => {
  it('holds every file of the vendored corpus, each valid file with its invalid twin', () => {
    const stems = new Set(DOCUMENTS.map((d) => d.file.replace(/-(in)?valid\.yaml$/, '')));
    for (const stem of stems) assert.ok(DOCUMENTS.some((d) => d.file === `${stem}-valid.yaml`) && DOCUMENTS.some((d) => d.file === `${stem}-invalid.yaml`), stem);
    const servedStems = new Set(Object.keys(SERVED).map((id) => id.replace(/-(in)?valid\.yaml#\d+$/, '')));
    assert.deepEqual([...stems].filter((s) => !(s in UNSERVED)).sort(), [...servedStems].sort());
    assert.equal(DOCUMENTS.filter((d) => !((d.file.split('-')[0] ?? '') in UNSERVED)).length, Object.keys(SERVED).length);
  });

  for (const doc of DOCUMENTS) {
    const stem = doc.file.split('-')[0] ?? '';
    const kind = UNSERVED[stem];
    if (kind !== undefined) {
      it(`${doc.id}: ${kind} ${String((doc.object['metadata'] as { name?: string } | undefined)?.name)} is MP_UNSUPPORTED, naming the kind, valid or not`, () => {
        const findings = findingsFor(doc.object);
        assert.deepEqual(verdictOf(findings), unsupported('kind'));
        assert.equal(findings.length, 1);
        assert.match(findings[0]?.message ?? '', new RegExp(`\\b${kind}\\b is not implemented by meshpilot: it is not applied`));
      });
      continue;
    }
    const expected = SERVED[doc.id];
    it(`${doc.id}: ${doc.istioError ? `Istio rejects it (${doc.istioError})` : 'Istio accepts it'}, and so does meshpilot${expected?.dependsOn ? ` (today's ${expected.dependsOn} behaviour)` : ''}`, () => {
      assert.ok(expected, `no expectation for ${doc.id}`);
      const verdict = verdictOf(findingsFor(doc.object));
      assert.deepEqual(verdict, expected.verdict);
      assert.ok(agreesWithIstio(verdict, istioVerdict(doc, expected)), `${doc.id}: meshpilot says ${verdict.verdict}, Istio ${istioVerdict(doc, expected)}`);
    });
  }
});

describe("the corpus's valid DestinationRules, rendered as Istio renders them", () => {
  const ratings = service('ratings', 'prod', [{ name: 'grpc', port: 9090, targetPort: 9090 }, { name: 'http', port: 9080, targetPort: 9080 }], '10.96.7.7');
  const rendered = (id: string): RenderedResources => {
    const doc = DOCUMENTS.find((d) => d.id === id);
    assert.ok(doc);
    const converted = convertObjects([ratings, doc.object].map((object) => ({ object, source: { origin: 'file' as const, location: id } })));
    return renderForProxy(buildPushContext(converted), SIDECAR);
  };

  it("warmup becomes slow start on Istio's default least-request balancer, with its window, aggression and floor (1 and 10% unless set)", () => {
    const slowStart = (id: string): unknown => (resource(rendered(id), CLUSTER_TYPE, 'outbound|9080||ratings.prod.svc.cluster.local')['least_request_lb_config'] as JsonObject | undefined)?.['slow_start_config'];
    assert.deepEqual(slowStart('destinationrule-valid.yaml#1'), { slow_start_window: '300s', aggression: { default_value: 1, runtime_key: '(' }, min_weight_percent: { value: 10 } });
    assert.deepEqual(slowStart('destinationrule-valid.yaml#3'), { slow_start_window: '300s', aggression: { default_value: 5, runtime_key: '(' }, min_weight_percent: { value: 5 } });
  });

  it('http2KeepAlive becomes HTTP/2 PINGs on the HTTP/2 port, and nothing on the HTTP/1.1 one (as Istio)', () => {
    const http2Options = (port: number): unknown => {
      const cluster = resource(rendered('destinationrule-valid.yaml#4'), CLUSTER_TYPE, `outbound|${port}||ratings.prod.svc.cluster.local`);
      const options = (cluster['typed_extension_protocol_options'] as JsonObject | undefined)?.['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'] as JsonObject | undefined;
      return (options?.['explicit_http_config'] as JsonObject | undefined)?.['http2_protocol_options'];
    };
    assert.deepEqual(http2Options(9090), { connection_keepalive: { interval: '15s', timeout: '5s' } });
    assert.equal(http2Options(9080), undefined);
  });
});
