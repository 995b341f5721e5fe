// The error catalogue is the whole truth: every code meshpilot emits is listed in src/errors.ts
// and in the README's table, and nothing listed is never emitted.
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ERROR_CODES } from '../src/errors.ts';

const ROOT = new URL('..', import.meta.url).pathname;

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await sourceFiles(path)));
    else if (entry.name.endsWith('.ts')) out.push(path);
  }
  return out;
}

describe('the error catalogue', () => {
  it('lists every code the sources use, and every code it lists is used', async () => {
    const used = new Set<string>();
    for (const file of await sourceFiles(join(ROOT, 'src'))) {
      if (file.endsWith('/errors.ts')) continue;
      for (const match of (await readFile(file, 'utf8')).matchAll(/\bMP_[A-Z][A-Z0-9_]*\b/g)) used.add(match[0]);
    }
    const listed = new Set(Object.keys(ERROR_CODES));
    assert.deepEqual([...used].filter((code) => !listed.has(code)).sort(), [], 'used but not in src/errors.ts');
    assert.deepEqual([...listed].filter((code) => !used.has(code)).sort(), [], 'in src/errors.ts but never used');
  });

  it("the README's table lists exactly the catalogue", async () => {
    const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Error codes'), readme.indexOf('\n## ', readme.indexOf('## Error codes') + 1));
    const documented = new Set([...section.matchAll(/^\| `(MP_[A-Z0-9_]+)` \|/gm)].map((m) => m[1]));
    assert.deepEqual([...documented].sort(), Object.keys(ERROR_CODES).sort());
  });
});
