// Cases derived from Istio's validation tests, per kind: each is read with the services it names,
// through what `meshpilot analyze` runs, and its verdict and code must be the one listed; the
// verdict must say what Istio's says unless the README's "Differences from Istio" says why.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { DESTINATION_RULE_CASES, SERVICE_ENTRY_CASES, SIDECAR_CASES, WORKLOAD_ENTRY_CASES } from './support/istio-cases-policy.ts';
import { CASE_CONTEXT as CONTEXT, VIRTUAL_SERVICE_CASES, type IstioCase } from './support/istio-cases-routing.ts';
import { GATEWAY_CASES } from './support/istio-cases-gateway.ts';
import { agreesWithIstio, findingsFor, verdictOf } from './support/verdict.ts';

const KINDS: Readonly<Record<string, readonly IstioCase[]>> = {
  VirtualService: VIRTUAL_SERVICE_CASES,
  DestinationRule: DESTINATION_RULE_CASES,
  ServiceEntry: SERVICE_ENTRY_CASES,
  WorkloadEntry: WORKLOAD_ENTRY_CASES,
  Sidecar: SIDECAR_CASES,
  Gateway: GATEWAY_CASES,
};

describe('cases derived from Istio validation, per kind', () => {
  it('the objects they refer to are themselves valid', () => {
    const findings = CONTEXT.flatMap((object, index) => findingsFor(object, CONTEXT.filter((_, i) => i !== index)));
    assert.deepEqual(findings, []);
  });

  it('cover valid, invalid and warning cases of every kind, over 180 in all', () => {
    for (const [kind, cases] of Object.entries(KINDS)) {
      for (const istio of ['valid', 'invalid'] as const) assert.ok(cases.some((c) => c.istio === istio), `${kind} has no ${istio} case`);
    }
    assert.ok(Object.values(KINDS).flat().length > 180);
  });

  it("every case where meshpilot answers otherwise than Istio is a bullet of the README's Differences from Istio", () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const section = readme.slice(readme.indexOf('### Differences from Istio'), readme.indexOf('## Architecture'));
    const differing = Object.values(KINDS).flat().flatMap((c) => (c.differs ? [c.differs] : []));
    assert.ok(differing.length > 0);
    for (const title of differing) assert.ok(section.includes(`- **${title}**`), `the README does not explain "${title}"`);
  });

  for (const [kind, cases] of Object.entries(KINDS)) {
    describe(kind, () => {
      for (const c of cases) {
        const note = c.dependsOn ? ` (today's ${c.dependsOn} behaviour)` : c.differs ? ` (differs from Istio: ${c.differs}, see the README)` : '';
        it(`${c.what}: Istio says ${c.istio}, meshpilot ${c.expect.verdict}${'code' in c.expect ? ` ${c.expect.code}` : ''}${'path' in c.expect ? ` at ${c.expect.path}` : ''}${note}`, () => {
          const verdict = verdictOf(findingsFor(c.object, CONTEXT));
          assert.deepEqual(verdict, c.expect);
          if (!c.differs && !c.dependsOn) assert.ok(agreesWithIstio(verdict, c.istio), `meshpilot says ${verdict.verdict}, Istio ${c.istio}`);
        });
      }
    });
  }
});
