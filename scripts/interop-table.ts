// The interop table, from what the tests proved.
//   npm run interop-table               print the table the committed results give
//   npm run interop-table -- --write    take the last run (test/interop/last-run) into test/interop/results and README.md
//   npm run interop-table -- --check    exit 1 when README.md's table is not what the committed results give
//   npm run interop-table -- --compare  exit 1 when the last run did not prove what the committed results say
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LAST_RUN_DIR, RESULTS_DIR, compareInteropResults, readInteropResults, renderInteropTable, resultsFileName, withInteropTable } from '../test/support/interop-results.ts';

const README = fileURLToPath(new URL('../README.md', import.meta.url));
const mode = process.argv[2];

if (mode === '--write') {
  const run = readInteropResults(LAST_RUN_DIR);
  if (run.length === 0) throw new Error(`nothing recorded in ${LAST_RUN_DIR}: run the proving tests first (npm test)`);
  mkdirSync(RESULTS_DIR, { recursive: true });
  for (const results of run) copyFileSync(join(LAST_RUN_DIR, resultsFileName(results.source)), join(RESULTS_DIR, resultsFileName(results.source)));
  writeFileSync(README, withInteropTable(readFileSync(README, 'utf8'), renderInteropTable(readInteropResults())));
} else if (mode === '--check') {
  const readme = readFileSync(README, 'utf8');
  if (withInteropTable(readme, renderInteropTable(readInteropResults())) !== readme) {
    process.stderr.write('README.md: the interop table differs from test/interop/results; run npm run interop-table -- --write\n');
    process.exitCode = 1;
  }
} else if (mode === '--compare') {
  const { broken, notices } = compareInteropResults(readInteropResults(), readInteropResults(LAST_RUN_DIR));
  for (const line of notices) process.stdout.write(`interop table notice: ${line}\n`);
  for (const line of broken) process.stderr.write(`interop table broken: ${line}\n`);
  if (broken.length > 0) {
    process.stderr.write('The README claims cells the last run did not prove: fix the test, or run npm run interop-table -- --write to record what it proves.\n');
    process.exitCode = 1;
  } else process.stdout.write(`interop table: the last run proved every committed cell (${String(notices.length)} notices)\n`);
} else {
  process.stdout.write(renderInteropTable(readInteropResults()));
}
