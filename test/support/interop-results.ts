// The interop table: which Istio rule each real xDS client was seen to honour through meshpilot.
//
// A test proves a cell on real calls, then records it:
//   recordInterop('fault-abort', 'envoy', 'pass');
//   recordInterop('least-request', 'grpc-go', 'degraded', 'gRPC has no LEAST_REQUEST: served as ROUND_ROBIN');
// When the test process exits, its cells are written to test/interop/last-run/<test file>.json
// (the whole file, so a cell no longer proven disappears; the directory is not committed).
// `npm run interop-table -- --write` takes the last run into test/interop/results/ (committed)
// and renders them into README.md; test/interop-readme.test.ts checks that README.md is what the
// committed results give, and `npm run interop-table -- --compare` (in .ci/run, after each run)
// that the last run proved what they say. A row a client has no cell for renders as "—".
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Rows, in table order: stable short ids shared by every client's tests. */
export const INTEROP_RULES = {
  'header-match': 'header match (`end-user: jason` → v2)',
  'header-present': 'header presence match',
  'weighted-split': 'weighted split 80/20',
  'split-change-live': 'weighted split changed live',
  'fault-abort': 'fault abort (gRPC status)',
  'fault-delay': 'fault delay vs deadline',
  retries: 'retries (first attempt fails)',
  'route-timeout': 'route timeout',
  'consistent-hash': 'consistent hash by header',
  'outlier-ejection': 'outlier ejection',
  'least-request': 'LEAST_REQUEST',
  'sidecar-hides-namespace': 'Sidecar hides a namespace',
  'mtls-strict': 'mTLS STRICT (plaintext refused, caller identity seen)',
  'authz-principal': 'AuthorizationPolicy ALLOW by principal (others denied)',
  'no-nack': 'every resource ACKed',
} as const;
export type InteropRule = keyof typeof INTEROP_RULES;

/** Columns, in table order. */
export const INTEROP_CLIENTS = {
  'grpc-js': 'grpc-js-xds',
  'grpc-core': 'gRPC C-core',
  'grpc-core-1.51': 'gRPC C-core before 1.52',
  'grpc-go': 'grpc-go',
  envoy: 'Envoy',
} as const;
export type InteropClient = keyof typeof INTEROP_CLIENTS;

/** pass: as Istio specifies; degraded: a documented, tested fallback (the note says which); fail: the test failed. */
export type InteropVerdict = 'pass' | 'degraded' | 'fail';

export interface InteropCell {
  readonly rule: InteropRule;
  readonly client: InteropClient;
  readonly verdict: InteropVerdict;
  readonly note?: string;
}

export interface InteropResults {
  /** The test file that proved these cells, relative to the repository. */
  readonly source: string;
  /** Client versions the test observed, e.g. { "grpc-core": "grpcio 1.85.3" }. */
  readonly versions: Partial<Record<InteropClient, string>>;
  readonly cells: readonly InteropCell[];
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** What the README's table shows: committed. */
export const RESULTS_DIR = join(ROOT, 'test/interop/results');
/** What the last test run proved: not committed. */
export const LAST_RUN_DIR = process.env['MESHPILOT_INTEROP_LAST_RUN'] ?? join(ROOT, 'test/interop/last-run');

const recorded = new Map<string, InteropCell>();
const versions: Partial<Record<InteropClient, string>> = {};
let exitHookInstalled = false;

function byTableOrder(a: InteropCell, b: InteropCell): number {
  const rules = Object.keys(INTEROP_RULES);
  const clients = Object.keys(INTEROP_CLIENTS);
  return rules.indexOf(a.rule) - rules.indexOf(b.rule) || clients.indexOf(a.client) - clients.indexOf(b.client);
}

/** The results file of a test file: test/e2e-interop.test.ts -> e2e-interop.json. */
export function resultsFileName(testFile: string): string {
  return `${basename(testFile).replace(/\.test\.ts$/, '')}.json`;
}

function writeRecorded(): void {
  const testFile = process.argv[1];
  if (recorded.size === 0 || !testFile) return;
  const results: InteropResults = {
    source: relative(ROOT, testFile),
    versions: Object.fromEntries(Object.keys(INTEROP_CLIENTS).flatMap((c) => (versions[c as InteropClient] ? [[c, versions[c as InteropClient]]] : []))),
    cells: [...recorded.values()].sort(byTableOrder),
  };
  mkdirSync(LAST_RUN_DIR, { recursive: true });
  writeFileSync(join(LAST_RUN_DIR, resultsFileName(testFile)), `${JSON.stringify(results, null, 2)}\n`);
}

/** Records one cell of the interop table for the running test file; the last record of a (rule, client) wins. */
export function recordInterop(rule: InteropRule, client: InteropClient, verdict: InteropVerdict, note?: string): void {
  if (verdict !== 'pass' && !note) throw new Error(`recordInterop(${rule}, ${client}): a ${verdict} cell needs a note saying why`);
  recorded.set(`${rule}\n${client}`, note ? { rule, client, verdict, note } : { rule, client, verdict });
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', writeRecorded);
  }
}

/** Records the version of a client the running test file drove, shown in the column's header. */
export function recordInteropVersion(client: InteropClient, version: string): void {
  versions[client] = version;
}

export function readInteropResults(dir = RESULTS_DIR): InteropResults[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as InteropResults);
}

const MARK: Record<InteropVerdict, string> = { pass: '✅', degraded: '⚠️', fail: '❌' };

/** The markdown table of every results file: one row per rule, one column per client with at least one cell. */
export function renderInteropTable(all: readonly InteropResults[]): string {
  const cells = new Map<string, InteropCell>();
  const versionOf: Partial<Record<InteropClient, string>> = {};
  for (const results of all) {
    Object.assign(versionOf, results.versions);
    for (const cell of results.cells) {
      const key = `${cell.rule}\n${cell.client}`;
      const earlier = cells.get(key);
      if (earlier && earlier.verdict !== cell.verdict) throw new Error(`${cell.rule} × ${cell.client} is both ${earlier.verdict} and ${cell.verdict} (${results.source})`);
      cells.set(key, cell);
    }
  }
  const clients = (Object.keys(INTEROP_CLIENTS) as InteropClient[]).filter((c) => [...cells.values()].some((cell) => cell.client === c));
  const notes: string[] = [];
  const footnote = (note: string): number => {
    const at = notes.indexOf(note);
    if (at >= 0) return at + 1;
    notes.push(note);
    return notes.length;
  };
  const header = clients.map((c) => (versionOf[c] ? `${INTEROP_CLIENTS[c]} (${versionOf[c]})` : INTEROP_CLIENTS[c]));
  const lines = [`| rule | ${header.join(' | ')} |`, `|---|${clients.map(() => '---').join('|')}|`];
  for (const [rule, label] of Object.entries(INTEROP_RULES)) {
    const row = clients.map((client) => {
      const cell = cells.get(`${rule}\n${client}`);
      if (!cell) return '—';
      return cell.note ? `${MARK[cell.verdict]} [${footnote(cell.note)}]` : MARK[cell.verdict];
    });
    lines.push(`| ${label} | ${row.join(' | ')} |`);
  }
  const legend = '✅ as Istio specifies · ⚠️ a tested degradation · ❌ failed · — not tested';
  return [...lines, '', legend, '', ...notes.map((note, i) => `${i + 1}. ${note}`)].join('\n').trimEnd() + '\n';
}

export const README_START = '<!-- interop-table:start (generated by npm run interop-table -- --write; do not edit) -->';
export const README_END = '<!-- interop-table:end -->';

/** README text with the table between the markers replaced by `table`. */
export function withInteropTable(readme: string, table: string): string {
  const start = readme.indexOf(README_START);
  const end = readme.indexOf(README_END);
  if (start < 0 || end < start) throw new Error(`README.md lacks the markers ${README_START} … ${README_END}`);
  return `${readme.slice(0, start + README_START.length)}\n${table}${readme.slice(end)}`;
}

/** What a run proved against what is committed: `broken` means the README's table says something this run did not prove. */
export interface InteropComparison {
  readonly broken: readonly string[];
  readonly notices: readonly string[];
}

/**
 * Compares the last run's results with the committed ones, test file by test file. A committed
 * cell that the run recorded with another verdict, or did not record, or whose test file did not
 * run at all, is broken; other differences (a version, a note, a cell the README lacks) are
 * notices, fixed by `npm run interop-table -- --write`.
 */
export function compareInteropResults(committed: readonly InteropResults[], run: readonly InteropResults[]): InteropComparison {
  const broken: string[] = [];
  const notices: string[] = [];
  const runBySource = new Map(run.map((r) => [r.source, r]));
  const cellsOf = (r: InteropResults) => new Map(r.cells.map((c) => [`${c.rule} × ${c.client}`, c]));
  for (const was of committed) {
    const now = runBySource.get(was.source);
    if (!now) {
      broken.push(`${was.source}: did not run (or recorded nothing), so none of its ${String(was.cells.length)} cells was proven`);
      continue;
    }
    const nowCells = cellsOf(now);
    for (const [key, cell] of cellsOf(was)) {
      const proven = nowCells.get(key);
      if (!proven) broken.push(`${was.source}: ${key} is ${cell.verdict} in the README, and this run did not record it`);
      else if (proven.verdict !== cell.verdict) broken.push(`${was.source}: ${key} is ${cell.verdict} in the README, and this run recorded ${proven.verdict}${proven.note ? ` (${proven.note})` : ''}`);
      else if ((proven.note ?? '') !== (cell.note ?? '')) notices.push(`${was.source}: ${key} note changed: "${cell.note ?? ''}" -> "${proven.note ?? ''}"`);
      nowCells.delete(key);
    }
    for (const [key, cell] of nowCells) notices.push(`${was.source}: ${key} was recorded (${cell.verdict}) and is not in the README`);
    for (const client of new Set([...Object.keys(was.versions), ...Object.keys(now.versions)]) as Set<InteropClient>) {
      if (was.versions[client] !== now.versions[client]) notices.push(`${was.source}: ${client} version ${was.versions[client] ?? 'none'} in the README, ${now.versions[client] ?? 'none'} in this run`);
    }
  }
  const committedSources = new Set(committed.map((r) => r.source));
  for (const r of run) if (!committedSources.has(r.source)) notices.push(`${r.source}: recorded ${String(r.cells.length)} cells the README lacks`);
  return { broken, notices };
}
