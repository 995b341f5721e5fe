// The Gateway API conformance suite's own cases against meshpilot (see README "Conformance").
//   npm run conformance                    run GATEWAY-HTTP, GATEWAY-GRPC and GATEWAY-TLS, print the table and failing cases
//   npm run conformance -- --write         ... and take the run into test/conformance/results.json and README.md
//   npm run conformance -- --check         exit 1 when README.md's table is not what results.json gives
//   npm run conformance -- --run NAME      one case (its features enabled), with the suite's output
//   npm run conformance -- --suite-timeouts  the suite's own (long) default waits instead of the bounded ones
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BOUNDED_TIMEOUTS, RUN_PROFILES, runConformance } from '../test/support/conformance-run.ts';
import { explainTally } from '../test/support/explain-check.ts';
import { LAST_RUN_FILE, readResults, renderConformanceTable, resultsOf, withConformanceTable, writeResults } from '../test/support/conformance-results.ts';

const README = fileURLToPath(new URL('../README.md', import.meta.url));
const { values } = parseArgs({ options: { write: { type: 'boolean' }, check: { type: 'boolean' }, run: { type: 'string' }, 'suite-timeouts': { type: 'boolean' } } });

if (values.check) {
  const committed = readResults();
  const readme = readFileSync(README, 'utf8');
  if (!committed || withConformanceTable(readme, renderConformanceTable(committed)) !== readme) {
    process.stderr.write('README.md: the conformance table differs from test/conformance/results.json; run npm run conformance -- --write\n');
    process.exitCode = 1;
  }
} else {
  const started = Date.now();
  const run = await runConformance({
    profiles: [...RUN_PROFILES],
    ...(values['suite-timeouts'] ? {} : { timeoutsSeconds: BOUNDED_TIMEOUTS }),
    ...(values.run ? { runTest: values.run } : {}),
    ...(values.run ? { onOutput: (line: string) => process.stdout.write(line) } : {}),
  });
  if (run.setupError !== undefined) {
    process.stderr.write(`${run.output}\nthe suite did not set up: ${run.setupError}\n`);
    process.exit(1);
  }
  const results = resultsOf(run);
  writeResults(results, LAST_RUN_FILE);
  process.stdout.write(`${renderConformanceTable(results)}\n\n${explainTally(run.explain)}\n${String(Math.round((Date.now() - started) / 1000))} s\n`);
  if (values.write && !values.run) {
    writeResults(results);
    writeFileSync(README, withConformanceTable(readFileSync(README, 'utf8'), renderConformanceTable(results)));
  }
}
