// Istio's own validation corpus (test/data/istio-validation, vendored from istio/istio): every
// document goes through what `meshpilot analyze` and the file source run, and meshpilot's verdict
// must say what Istio's does. A kind meshpilot does not serve is MP_UNSUPPORTED, never a mistake.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { readObjectsFromText } from '../src/sources/config-dir.ts';
import { isFields } from '../src/sources/object-fields.ts';
import { agreesWithIstio, findingsFor, invalid, unsupported, VALID, verdictOf, warning, type IstioVerdict, type Verdict } from './support/verdict.ts';

const CORPUS = new URL('data/istio-validation/', import.meta.url).pathname;

/** The corpus files of kinds meshpilot does not serve, with the kind each holds: the one place to edit when a kind is served. */
const UNSERVED: Readonly<Record<string, string>> = {
  authz: 'AuthorizationPolicy',
  envoyfilter: 'EnvoyFilter',
  peerauth: 'PeerAuthentication',
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
  'destinationrule-valid.yaml#1': { verdict: VALID },
  'destinationrule-valid.yaml#2': { verdict: VALID },
  'destinationrule-valid.yaml#3': { verdict: VALID },
  'destinationrule-valid.yaml#4': { verdict: unsupported('spec.trafficPolicy.connectionPool.http.http2KeepAlive') },
  'destinationrule-invalid.yaml#1': { verdict: invalid('spec.trafficPolicy.loadBalancer.warmup.minimumPercent') },
  'destinationrule-invalid.yaml#2': { verdict: invalid('spec.trafficPolicy.loadBalancer.warmup.duration') },
  'destinationrule-invalid.yaml#3': { verdict: invalid('spec.trafficPolicy.loadBalancer.warmup.aggression') },
  'serviceentry-valid.yaml#1': { verdict: unsupported('spec.exportTo'), dependsOn: 'exportTo' },
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
  'workloadentry-valid.yaml#1': { verdict: unsupported('spec.serviceAccount') },
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
    assert.deepEqual([...stems].filter((s) => !(s in UNSERVED)).sort(), ['destinationrule', 'serviceentry', 'workloadentry']);
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
