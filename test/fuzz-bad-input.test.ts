// Promises kept under bad input: a few hundred mutations of the fixtures (values, types, field
// names, deleted and duplicated keys, truncation, random bytes), each served by a real meshpilot
// from its config directory. For every input: nothing crashes, the admin API answers, and either
// an error names the object and field while proxies keep their last good config, or nothing is
// reported and what is served is exactly what a fresh start on the same files would serve.
// Bounded and seeded: MESHPILOT_FUZZ_SEED and MESHPILOT_FUZZ_INPUTS reproduce or widen a run.
import assert from 'node:assert/strict';
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { parseAllDocuments, stringify } from 'yaml';
import { pino } from 'pino';
import { ERROR_CODES } from '../src/errors.ts';
import { buildPushContext } from '../src/model/push-context.ts';
import { loadDirectory } from '../src/sources/config-dir.ts';
import { startMeshpilot, type TestMeshpilot } from './support/meshpilot.ts';
import { FIXTURES, servedVersions } from './support/rendered.ts';

const SEED = Number(process.env['MESHPILOT_FUZZ_SEED'] ?? 0x5eed);
const INPUTS = Number(process.env['MESHPILOT_FUZZ_INPUTS'] ?? 300);

/** mulberry32: small, fast and the same on every machine. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Random = () => number;
const pick = <T>(random: Random, items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;

const ODD_VALUES: readonly unknown[] = [
  'x', '', ' ', 'not-an-ip', '999.1.1.1', '../etc', 'a b', 'Upper', 'tab\there', 'nul\u0000', 'v9', '*', '10.0.0.1', 'ISTIO_MUTUAL', '1s', '99999999999999h',
  -1, 0, 1, 65536, 3.5, 1e300, Number.MAX_SAFE_INTEGER, true, false, null, [], {}, ['x'], { bogus: 1 }, 'x'.repeat(300),
];

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Container = Json[] | { [key: string]: Json };

/** Every place in a document that holds a value: its container and key. */
function slots(value: Json, out: [Container, string | number][] = []): [Container, string | number][] {
  if (Array.isArray(value)) {
    value.forEach((item, index) => {
      out.push([value, index]);
      slots(item, out);
    });
  } else if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      out.push([value, key]);
      slots(item, out);
    }
  }
  return out;
}

function typo(random: Random, word: string): string {
  const at = Math.floor(random() * (word.length + 1));
  const letter = String.fromCharCode(97 + Math.floor(random() * 26));
  return pick(random, [`${word.slice(0, at)}${letter}${word.slice(at)}`, `${word.slice(0, at)}${word.slice(at + 1)}`, word.toUpperCase(), `${word}_`, 'bogus']);
}

/** One structural mutation of one document, described; undefined when the document offers nothing to mutate. */
function mutateDocument(random: Random, document: Json): string | undefined {
  const places = slots(document);
  if (places.length === 0) return undefined;
  const [container, key] = pick(random, places);
  const kind = pick(random, ['value', 'type', 'rename', 'delete', 'duplicate']);
  if (Array.isArray(container)) {
    const index = key as number;
    if (kind === 'delete') container.splice(index, 1);
    else if (kind === 'duplicate') container.splice(index, 0, structuredClone(container[index] ?? null));
    else container[index] = (kind === 'type' ? pick(random, [[], {}, 'x', 7]) : pick(random, ODD_VALUES)) as Json;
    return `${kind} [${index}]`;
  }
  const name = key as string;
  if (kind === 'delete') Reflect.deleteProperty(container, name);
  else if (kind === 'rename' || kind === 'duplicate') {
    const value = container[name] ?? null;
    if (kind === 'rename') Reflect.deleteProperty(container, name);
    container[typo(random, name)] = structuredClone(value);
  } else container[name] = (kind === 'type' ? pick(random, [[], {}, 'x', 7]) : pick(random, ODD_VALUES)) as Json;
  return `${kind} ${name}`;
}

/** A mutated copy of a file's text and what was done, or undefined when nothing could be mutated. */
function mutateText(random: Random, text: string): { text: string; what: string } | undefined {
  const how = pick(random, ['structure', 'structure', 'structure', 'structure', 'duplicate-line', 'truncate', 'bytes', 'splice-bytes']);
  if (how === 'truncate') return { text: text.slice(0, Math.floor(random() * text.length)), what: 'truncate' };
  if (how === 'bytes' || how === 'splice-bytes') {
    const bytes = Buffer.from(Array.from({ length: 1 + Math.floor(random() * 64) }, () => Math.floor(random() * 256))).toString('latin1');
    const at = Math.floor(random() * text.length);
    return { text: how === 'bytes' ? bytes : `${text.slice(0, at)}${bytes}${text.slice(at)}`, what: how };
  }
  if (how === 'duplicate-line') {
    const lines = text.split('\n');
    const at = Math.floor(random() * lines.length);
    lines.splice(at, 0, lines[at] ?? '');
    return { text: lines.join('\n'), what: `duplicate line ${at + 1}` };
  }
  const documents = parseAllDocuments(text).map((document) => document.toJS() as Json);
  const index = Math.floor(random() * documents.length);
  const target = documents[index];
  if (target === undefined) return undefined;
  const what = mutateDocument(random, target);
  if (what === undefined) return undefined;
  return { text: documents.map((document) => stringify(document)).join('---\n'), what: `document ${index + 1}: ${what}` };
}

interface Issue {
  code: string;
  severity?: string;
  path: string;
  message: string;
}
interface Configz {
  rejected: { object: string; source: { location: string }; errors: Issue[] }[];
}

const FILE_LEVEL = new Set(['MP_YAML_PARSE', 'MP_FILE_REFUSED']);

describe('under a few hundred mutated fixtures, every promise holds', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it(`seed ${SEED}, ${INPUTS} inputs: no crash, the admin API answers, and each input is either reported (last good served) or served as a fresh start would`, async (t) => {
    const random = prng(SEED);
    const fixtures = (await readdir(FIXTURES, { withFileTypes: true })).filter((entry) => entry.isDirectory()).map((entry) => entry.name).sort();
    const perFixture = Math.ceil(INPUTS / fixtures.length);
    const counts = { inputs: 0, rejected: 0, acceptedChanged: 0, acceptedUnchanged: 0 };
    for (const fixture of fixtures) {
      const dir = await mkdtemp(join(tmpdir(), `meshpilot-fuzz-${process.pid}-`));
      dirs.push(dir);
      await cp(join(FIXTURES, fixture), dir, { recursive: true });
      const files = (await readdir(dir)).filter((file) => /\.(ya?ml|json)$/.test(file)).sort();
      const failures: string[] = [];
      const log = pino(
        { level: 'error' },
        new Writable({
          write(chunk: Buffer, _encoding, done) {
            failures.push(chunk.toString());
            done();
          },
        }),
      );
      const meshpilot: TestMeshpilot = await startMeshpilot(dir, { log });
      try {
        const targets = buildPushContext(meshpilot.store.current()).services.slice(0, 4).flatMap((s) => s.ports.slice(0, 1).map((p) => `${s.hostname}:${p.port}`));
        const serve = (): string[] => servedVersions(buildPushContext(meshpilot.store.current()), targets);
        const lastGood = serve();
        for (let n = 0; n < perFixture && counts.inputs < INPUTS; n++) {
          const file = pick(random, files);
          const original = await readFile(join(dir, file), 'utf8');
          const mutation = mutateText(random, original);
          if (!mutation || mutation.text === original) continue;
          counts.inputs++;
          const label = `${fixture}/${file} (${mutation.what})`;
          await writeFile(join(dir, file), mutation.text);
          await meshpilot.reloadConfig();
          meshpilot.pushController.flush();

          const configzResponse = await meshpilot.admin('/debug/configz');
          assert.equal(configzResponse.status, 200, `${label}: /debug/configz answers`);
          assert.equal((await meshpilot.admin('/debug/syncz')).status, 200, `${label}: /debug/syncz answers`);
          const configz = (await configzResponse.json()) as Configz;
          const errors = configz.rejected.filter((r) => r.source.location === file).flatMap((r) => r.errors.map((e) => ({ ...e, object: r.object })));
          for (const error of errors) {
            assert.ok(error.code in ERROR_CODES, `${label}: ${error.code} is a catalogued code`);
            assert.ok(error.object !== '', `${label}: the error names an object`);
            assert.ok(error.path !== '' || FILE_LEVEL.has(error.code) || /not a Kubernetes object/.test(error.message), `${label}: ${error.code} ${error.message} names a field`);
          }
          const served = serve();
          if (errors.length > 0) {
            counts.rejected++;
            assert.deepEqual(served, lastGood, `${label}: reported (${errors[0]?.code} ${errors[0]?.path}), so proxies keep their last good config`);
          } else {
            const fresh = servedVersions(buildPushContext(await loadDirectory(dir)), targets);
            assert.deepEqual(served, fresh, `${label}: nothing reported, so what is served is what a fresh start serves`);
            if (JSON.stringify(served) === JSON.stringify(lastGood)) counts.acceptedUnchanged++;
            else counts.acceptedChanged++;
          }
          assert.deepEqual(failures, [], `${label}: nothing failed inside meshpilot`);
          await writeFile(join(dir, file), original);
          await meshpilot.reloadConfig();
          meshpilot.pushController.flush();
          assert.deepEqual(serve(), lastGood, `${label}: restoring the file restores what is served`);
        }
      } finally {
        await meshpilot.close();
      }
    }
    t.diagnostic(`inputs ${counts.inputs}: reported and last good kept ${counts.rejected}, accepted and served ${counts.acceptedChanged} (changed) + ${counts.acceptedUnchanged} (unchanged)`);
    assert.ok(counts.inputs >= Math.min(INPUTS, 200), `${counts.inputs} inputs ran`);
    assert.ok(counts.rejected > 0 && counts.acceptedChanged + counts.acceptedUnchanged > 0, 'both outcomes occur, so neither check is vacuous');
  });
});
