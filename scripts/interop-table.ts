// Renders the interop table from test/interop/results/*.json (what the tests proved).
//   npm run interop-table               print it
//   npm run interop-table -- --write    put it into README.md between its markers
//   npm run interop-table -- --check    exit 1 when README.md's table is not what the results give
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { readInteropResults, renderInteropTable, withInteropTable } from '../test/support/interop-results.ts';

const README = fileURLToPath(new URL('../README.md', import.meta.url));
const table = renderInteropTable(readInteropResults());
const mode = process.argv[2];

if (mode === '--write' || mode === '--check') {
  const readme = readFileSync(README, 'utf8');
  const wanted = withInteropTable(readme, table);
  if (mode === '--write') writeFileSync(README, wanted);
  else if (wanted !== readme) {
    process.stderr.write('README.md: the interop table differs from test/interop/results; run npm run interop-table -- --write\n');
    process.exitCode = 1;
  }
} else {
  process.stdout.write(table);
}
