// The demo as the README runs it: the fake API server started on its own, and the real
// `meshpilot serve --kubeconfig FILE` command watching it.
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { eventually } from './support/mesh-dir.ts';

const ROOT = new URL('..', import.meta.url).pathname;

/** Spawns a command and resolves with the first stdout line matching `ready`. */
function launch(args: string[], ready: (line: string) => boolean, env: NodeJS.ProcessEnv = {}): Promise<{ child: ChildProcessWithoutNullStreams; line: string; output: string[] }> {
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env } });
  const output: string[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${args.join(' ')} did not start: ${output.join('\n')}`));
    }, 20_000);
    createInterface({ input: child.stdout }).on('line', (line) => {
      output.push(line);
      if (ready(line)) {
        clearTimeout(timer);
        resolve({ child, line, output });
      }
    });
    child.stderr.on('data', (data: Buffer) => output.push(data.toString()));
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${args.join(' ')} exited with ${code}: ${output.join('\n')}`));
    });
  });
}

function stop(child: ChildProcessWithoutNullStreams): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) {
      resolve(child.exitCode);
      return;
    }
    child.on('exit', (code) => {
      resolve(code);
    });
    child.kill('SIGTERM');
  });
}

describe('meshpilot serve --kubeconfig against the fake API server started alone', () => {
  let dir: string;
  let fake: ChildProcessWithoutNullStreams;
  let meshpilot: ChildProcessWithoutNullStreams;
  let admin: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshpilot-kube-cli-'));
    const kubeconfig = join(dir, 'kubeconfig');
    const started = await launch(['--import', 'tsx', 'test/support/fake-kube-api-cli.ts', '--port', '0', '--kubeconfig-out', kubeconfig], (line) => line.startsWith('kubeconfig:'));
    fake = started.child;
    const serving = await launch(['bin/meshpilot.js', 'serve', '--kubeconfig', kubeconfig, '--xds-port', '0', '--admin-port', '0', '--secure-port', '0'], (line) => line.includes('"meshpilot is serving"'), {
      MESHPILOT_LOG_LEVEL: 'info',
    });
    meshpilot = serving.child;
    const entry = JSON.parse(serving.line) as { adminPort: number; sources: string[] };
    assert.deepEqual(entry.sources, ['kube'], 'a --kubeconfig alone means the cluster only');
    admin = `http://127.0.0.1:${entry.adminPort}`;
  });

  after(async () => {
    await Promise.all([stop(meshpilot), stop(fake)]);
    await rm(dir, { recursive: true, force: true });
  });

  it('becomes ready and serves BookInfo from the API, and stops cleanly on SIGTERM', async () => {
    await eventually(async () => ((await fetch(`${admin}/ready`)).status === 200 ? true : undefined), 10_000, '/ready');
    const registry = (await (await fetch(`${admin}/debug/registryz`)).json()) as { services: { hostname: string; source: { origin: string } }[] };
    assert.deepEqual(
      registry.services.map((s) => [s.hostname, s.source.origin]),
      ['details', 'productpage', 'ratings', 'reviews'].map((n) => [`${n}.default.svc.cluster.local`, 'kube']),
    );
    const configz = (await (await fetch(`${admin}/debug/configz`)).json()) as { rules: { applied: boolean }[] };
    assert.equal(configz.rules.filter((r) => r.applied).length, 8);
    assert.equal(await stop(meshpilot), 0);
  });

  it("deploy/'s container command line, exactly as the Deployment runs it, starts and answers the kubelet's probes and Prometheus without a token", async () => {
    interface Container { args: string[]; readinessProbe: { httpGet: { path: string } }; livenessProbe: { httpGet: { path: string } } }
    const deployment = parse(await readFile(join(ROOT, 'deploy/03-deployment.yaml'), 'utf8')) as { spec: { template: { spec: { containers: Container[] } } } };
    const container = deployment.spec.template.spec.containers[0];
    assert.ok(container);
    const dockerfile = await readFile(join(ROOT, 'Dockerfile'), 'utf8');
    const entrypoint = JSON.parse(/^ENTRYPOINT (.*)$/m.exec(dockerfile)?.[1] ?? '[]') as string[];
    assert.deepEqual(entrypoint.slice(0, 1), ['node']);
    // Ports come from the environment so the test can pick free ones; the arguments are the manifest's.
    const serving = await launch([...entrypoint.slice(1), ...container.args], (line) => line.includes('"meshpilot is serving"'), {
      KUBECONFIG: join(dir, 'kubeconfig'),
      MESHPILOT_XDS_PORT: '0',
      MESHPILOT_ADMIN_PORT: '0',
      MESHPILOT_LOG_LEVEL: 'info',
    });
    try {
      const adminUrl = `http://127.0.0.1:${(JSON.parse(serving.line) as { adminPort: number }).adminPort}`;
      await eventually(async () => ((await fetch(`${adminUrl}${container.readinessProbe.httpGet.path}`)).status === 200 ? true : undefined), 10_000, 'readiness probe');
      assert.equal((await fetch(`${adminUrl}${container.livenessProbe.httpGet.path}`)).status, 200);
      assert.equal((await fetch(`${adminUrl}/metrics`)).status, 200);
      assert.ok(serving.output.some((l) => l.includes('only loopback clients')), 'it says who may read /debug');
    } finally {
      assert.equal(await stop(serving.child), 0);
    }
  });

  it('refuses --kubeconfig with --source file, naming both flags', async () => {
    const child = spawn(process.execPath, ['bin/meshpilot.js', 'serve', '--source', 'file', '--kubeconfig', join(dir, 'kubeconfig'), '--xds-port', '0', '--admin-port', '0'], { cwd: ROOT });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise((resolve) => child.on('exit', resolve));
    assert.equal(code, 1);
    assert.match(out, /MP_CONFIG: --kubeconfig has no effect with --source file/);
  });
});
