// The Gateway API conformance suite's own cases (sigs.k8s.io/gateway-api/conformance v1.6.3, its
// tests/*.go and base manifests, run unchanged) against meshpilot: manifests applied through the
// fake Kubernetes API, requests through a real Envoy gateway per Gateway to the suite's echo
// backends, and from mesh pods (exec'd Istio echo clients) through their real Envoy sidecars,
// status read back. Every case test/conformance/results.json lists as passed must pass, and every
// request of the run agrees with what meshpilot's explain says that proxy does with it.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it, type TestContext } from 'node:test';
import { execFileSync } from 'node:child_process';
import { BOUNDED_TIMEOUTS, RUN_PROFILES, runConformance } from './support/conformance-run.ts';
import { explainTally } from './support/explain-check.ts';
import { LAST_RUN_FILE, readResults, regressions, renderConformanceTable, resultsOf, withConformanceTable, writeResults } from './support/conformance-results.ts';
import { requireEnvoy } from './support/envoy.ts';
import { requireNetns } from './support/netns.ts';

/** Go builds the suite; outside CI a machine without it skips (as without Envoy). */
function requireGo(t: TestContext): boolean {
  try {
    execFileSync('go', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    if (process.env['CI'] === 'true') throw new Error('Go is missing: the conformance suite is a Go module (test/conformance)');
    t.skip('go not found');
    return false;
  }
}

describe('the Gateway API conformance suite against meshpilot', () => {
  it("README.md's conformance table is what test/conformance/results.json records", () => {
    const committed = readResults();
    assert.ok(committed, 'test/conformance/results.json is missing: npm run conformance -- --write');
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    assert.equal(withConformanceTable(readme, renderConformanceTable(committed)), readme, 'npm run conformance -- --write renders it');
  });

  it('GATEWAY-HTTP, GATEWAY-GRPC and GATEWAY-TLS through real Envoy gateways, MESH-HTTP and MESH-GRPC through real sidecars, and no case that passed before fails now', async (t) => {
    if (!(await requireEnvoy(t)) || !(await requireNetns(t)) || !requireGo(t)) return;
    const run = await runConformance({ profiles: [...RUN_PROFILES], timeoutsSeconds: BOUNDED_TIMEOUTS });
    assert.equal(run.setupError, undefined, `the suite set up its base manifests and Gateways:\n${run.output.slice(-4000)}`);
    assert.equal(run.gatewayAPIVersion, 'v1.6.3');
    assert.deepEqual(run.profiles.map((p) => p.name).sort(), [...RUN_PROFILES].sort());
    const results = resultsOf(run);
    writeResults(results, LAST_RUN_FILE);
    const committed = readResults();
    assert.ok(committed);
    const lost = regressions(committed, results);
    assert.deepEqual(lost, [], lost.map((name) => `${name}: ${results.failed[name] ?? 'not run'}\n${run.failedOutput[name]?.slice(-3000) ?? ''}`).join('\n'));
    // Each profile's core cases all ran (none skipped for a feature meshpilot does not claim).
    for (const profile of run.profiles) assert.equal(profile.core.skipped, 0, `${profile.name} core skipped ${profile.core.skippedTests.join(', ')}`);
    // Every request sent through a gateway or a sidecar did what explain says, over what that proxy was sent.
    const tally = run.explain;
    assert.deepEqual(tally.disagreements, [], explainTally(tally));
    // A run checks about 1,150 gateway and 1,200 mesh requests: each way well over a floor of 500.
    const checked = (via: string): number => Object.entries(tally.agreedBy).filter(([how]) => how.startsWith(`${via} `)).reduce((sum, [, count]) => sum + count, 0);
    for (const via of ['gateway', 'mesh']) assert.ok(checked(via) >= 500, `${via} requests checked with explain: ${String(checked(via))}\n${explainTally(tally)}`);
  });
});
