// Production runs the compiled JavaScript: `npm run build` output, laid out as the image lays it
// out (bin/, dist/, proto/, ui/, production node_modules without tsx), serves and renders exactly
// what the sources do.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { eventually } from './support/mesh-dir.ts';

const run = promisify(execFile);
const ROOT = new URL('..', import.meta.url).pathname;

describe('the compiled build', () => {
  let image: string;

  before(async () => {
    image = await mkdtemp(join(tmpdir(), 'meshpilot-dist-'));
    await run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', join(image, 'dist')], { cwd: ROOT });
    await cp(join(ROOT, 'bin'), join(image, 'bin'), { recursive: true });
    await cp(join(ROOT, 'package.json'), join(image, 'package.json'));
    for (const dir of ['proto', 'ui', 'fixtures']) await symlink(join(ROOT, dir), join(image, dir));
    // Every installed package except tsx: production must not need it.
    await mkdir(join(image, 'node_modules'));
    for (const entry of await readdir(join(ROOT, 'node_modules'))) {
      if (entry === 'tsx' || entry === '.bin') continue;
      await symlink(join(ROOT, 'node_modules', entry), join(image, 'node_modules', entry));
    }
  });

  after(async () => {
    await rm(image, { recursive: true, force: true });
  });

  it('renders what the sources render, without tsx installed', async () => {
    const args = ['render', '--config-dir', join(ROOT, 'fixtures/bookinfo'), '--node-id', 'sidecar~10.244.0.20~productpage-v1-0.default~default.svc.cluster.local'];
    const compiled = await run(process.execPath, [join(image, 'bin/meshpilot.js'), ...args], { env: { ...process.env, MESHPILOT_FROM_SOURCE: '' }, maxBuffer: 64 << 20 });
    const source = await run(process.execPath, [join(ROOT, 'bin/meshpilot.js'), ...args], { env: { ...process.env, MESHPILOT_FROM_SOURCE: '1' }, maxBuffer: 64 << 20 });
    const withoutTimes = (dump: string): string => dump.replace(/"last_updated": "[^"]*"/g, '"last_updated": "-"');
    assert.ok(compiled.stdout.length > 1000);
    assert.equal(withoutTimes(compiled.stdout), withoutTimes(source.stdout));
  });

  it('serves, with the admin API, its docs and the UI (files found relative to dist/)', async () => {
    const child = spawn(process.execPath, [join(image, 'bin/meshpilot.js'), 'serve', '--config-dir', join(ROOT, 'fixtures/bookinfo'), '--xds-port', '0', '--admin-port', '0', '--log-level', 'info'], {
      env: { ...process.env, MESHPILOT_FROM_SOURCE: '' },
    });
    try {
      let output = '';
      child.stdout.on('data', (d: Buffer) => (output += d.toString()));
      const adminPort = await eventually(() => {
        const line = output.split('\n').find((l) => l.includes('"meshpilot is serving"'));
        return line ? (JSON.parse(line) as { adminPort: number }).adminPort : undefined;
      }, 20_000, 'serving');
      const admin = `http://127.0.0.1:${String(adminPort)}`;
      await eventually(async () => ((await fetch(`${admin}/ready`)).status === 200 ? true : undefined), 10_000, '/ready');
      assert.equal((await fetch(`${admin}/ui/`)).status, 200);
      assert.match(await (await fetch(`${admin}/debug/registryz`)).text(), /reviews\.default\.svc\.cluster\.local/);
    } finally {
      child.kill('SIGTERM');
    }
  });

  it('the image ships dist/, never src/, and installs production dependencies only', async () => {
    const dockerfile = await readFile(join(ROOT, 'Dockerfile'), 'utf8');
    const finalStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    assert.match(finalStage, /COPY --from=build \/app\/dist \.\/dist/);
    assert.doesNotMatch(finalStage, /COPY src/);
    assert.match(dockerfile, /npm ci --omit=dev --ignore-scripts/);
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; scripts: Record<string, string> };
    assert.equal(pkg.dependencies['tsx'], undefined, 'tsx is a development dependency');
    assert.equal(pkg.scripts['prepare'], 'npm run build');
  });
});
