// The README's interop table is exactly what the results the tests recorded render to, so it
// never claims a cell no test proved; and a missing cell renders as "—", never as green.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { README_END, README_START, compareInteropResults, readInteropResults, renderInteropTable, withInteropTable, type InteropResults } from './support/interop-results.ts';

describe('the interop table', () => {
  it('in README.md is what test/interop/results renders to (npm run interop-table -- --write)', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8').split('\n');
    const wanted = withInteropTable(readme.join('\n'), renderInteropTable(readInteropResults())).split('\n');
    const differing = wanted.flatMap((line, i) => (line === readme[i] ? [] : [`line ${String(i + 1)}: README has ${JSON.stringify(readme[i])}, the results give ${JSON.stringify(line)}`]));
    assert.deepEqual(differing, [], 'npm run interop-table -- --write');
    assert.equal(readme.length, wanted.length);
  });

  it('names every proving test file that still exists', () => {
    for (const results of readInteropResults()) assert.doesNotThrow(() => readFileSync(new URL(`../${results.source}`, import.meta.url)), results.source);
  });

  it('shows a cell only for what was recorded, a dash for the rest, and notes under the table', () => {
    const table = renderInteropTable([
      {
        source: 'test/a.test.ts',
        versions: { 'grpc-go': '1.85.0' },
        cells: [
          { rule: 'header-match', client: 'grpc-go', verdict: 'pass' },
          { rule: 'least-request', client: 'grpc-go', verdict: 'degraded', note: 'served as ROUND_ROBIN' },
        ],
      },
      { source: 'test/b.test.ts', versions: {}, cells: [{ rule: 'header-match', client: 'envoy', verdict: 'fail', note: 'no route' }] },
    ]);
    const rows = table.split('\n');
    assert.equal(rows[0], '| rule | grpc-go (1.85.0) | Envoy |');
    assert.equal(rows.find((r) => r.startsWith('| header match')), '| header match (`end-user: jason` → v2) | ✅ | ❌ [1] |');
    assert.equal(rows.find((r) => r.startsWith('| LEAST_REQUEST')), '| LEAST_REQUEST | ⚠️ [2] | — |');
    assert.equal(rows.find((r) => r.startsWith('| fault abort')), '| fault abort (gRPC status) | — | — |');
    assert.ok(rows.includes('1. no route') && rows.includes('2. served as ROUND_ROBIN'));
  });

  it('refuses two test files disagreeing on one cell, and a README without its markers', () => {
    const cell = (verdict: 'pass' | 'fail') => ({ source: `test/${verdict}.test.ts`, versions: {}, cells: [{ rule: 'retries' as const, client: 'envoy' as const, verdict, note: 'x' }] });
    assert.throws(() => renderInteropTable([cell('pass'), cell('fail')]), /retries × envoy is both pass and fail/);
    assert.throws(() => withInteropTable('# no table here\n', ''), new RegExp(README_START.slice(0, 20)));
    assert.equal(withInteropTable(`a\n${README_START}\nold\n${README_END}\nb`, 'new\n'), `a\n${README_START}\nnew\n${README_END}\nb`);
  });

  it('compares a run with the committed results: a contradicted or unproven cell is broken, a new version or note a notice', () => {
    const committed: InteropResults[] = [
      { source: 'test/a.test.ts', versions: { envoy: '1.40.0' }, cells: [{ rule: 'retries', client: 'envoy', verdict: 'pass' }, { rule: 'route-timeout', client: 'envoy', verdict: 'pass' }, { rule: 'least-request', client: 'grpc-go', verdict: 'degraded', note: 'rr' }] },
      { source: 'test/b.test.ts', versions: {}, cells: [{ rule: 'header-match', client: 'grpc-js', verdict: 'pass' }] },
    ];
    assert.deepEqual(compareInteropResults(committed, committed), { broken: [], notices: [] });
    const run: InteropResults[] = [
      { source: 'test/a.test.ts', versions: { envoy: '1.41.0' }, cells: [{ rule: 'retries', client: 'envoy', verdict: 'fail', note: 'no retry' }, { rule: 'least-request', client: 'grpc-go', verdict: 'degraded', note: 'round robin' }, { rule: 'fault-abort', client: 'envoy', verdict: 'pass' }] },
      { source: 'test/c.test.ts', versions: {}, cells: [{ rule: 'header-match', client: 'grpc-go', verdict: 'pass' }] },
    ];
    assert.deepEqual(compareInteropResults(committed, run), {
      broken: [
        'test/a.test.ts: retries × envoy is pass in the README, and this run recorded fail (no retry)',
        'test/a.test.ts: route-timeout × envoy is pass in the README, and this run did not record it',
        'test/b.test.ts: did not run (or recorded nothing), so none of its 1 cells was proven',
      ],
      notices: [
        'test/a.test.ts: least-request × grpc-go note changed: "rr" -> "round robin"',
        'test/a.test.ts: fault-abort × envoy was recorded (pass) and is not in the README',
        'test/a.test.ts: envoy version 1.40.0 in the README, 1.41.0 in this run',
        'test/c.test.ts: recorded 1 cells the README lacks',
      ],
    });
  });
});
