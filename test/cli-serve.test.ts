// The quick start as a user runs it: the real command, its JSON logs, readiness, and a clean stop.
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';

const BIN = new URL('../bin/meshpilot.js', import.meta.url).pathname;
const ROOT = new URL('..', import.meta.url).pathname;

interface Started {
  child: ChildProcessWithoutNullStreams;
  lines: Record<string, unknown>[];
  serving: Record<string, unknown>;
}

function start(args: string[]): Promise<Started> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, MESHPILOT_LOG_LEVEL: 'info' } });
  const lines: Record<string, unknown>[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`meshpilot did not start: ${JSON.stringify(lines)}`));
    }, 20_000);
    createInterface({ input: child.stdout }).on('line', (line) => {
      const entry = JSON.parse(line) as Record<string, unknown>;
      lines.push(entry);
      if (entry['msg'] === 'meshpilot is serving') {
        clearTimeout(timer);
        resolve({ child, lines, serving: entry });
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`meshpilot exited with ${code}: ${JSON.stringify(lines)}`));
    });
  });
}

function exitOf(child: ChildProcessWithoutNullStreams): Promise<{ code: number | null; ms: number }> {
  const started = Date.now();
  return new Promise((resolve) => child.on('exit', (code) => { resolve({ code, ms: Date.now() - started }); }));
}

describe('meshpilot serve, as the README starts it', () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`serves fixtures/bookinfo, reports ready, and exits 0 on ${signal} within seconds`, async () => {
      const { child, serving, lines } = await start(['serve', '--xds-port', '0', '--admin-port', '0']);
      const admin = `http://127.0.0.1:${String(serving['adminPort'])}`;
      const ready = await fetch(`${admin}/ready`);
      assert.equal(ready.status, 200);
      const registry = (await (await fetch(`${admin}/debug/registryz`)).json()) as { services: { hostname: string }[] };
      assert.deepEqual(
        registry.services.map((s) => s.hostname),
        ['details', 'productpage', 'ratings', 'reviews'].map((n) => `${n}.default.svc.cluster.local`),
      );
      assert.ok(lines.every((l) => l['app'] === 'meshpilot' && typeof l['level'] === 'number'), 'pino JSON lines');
      const exited = exitOf(child);
      child.kill(signal);
      const { code, ms } = await exited;
      assert.equal(code, 0);
      assert.ok(ms < 5000, `took ${ms} ms to stop`);
    });
  }

  it('refuses a config dir that does not exist with a coded error naming the flag', async () => {
    const child = spawn(process.execPath, [BIN, 'serve', '--config-dir', '/nonexistent/meshpilot', '--xds-port', '0', '--admin-port', '0'], { cwd: ROOT });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const { code } = await exitOf(child);
    assert.equal(code, 1);
    assert.match(out, /MP_CONFIG: --config-dir \/nonexistent\/meshpilot does not exist/);
  });

  it('rejects a bad port with a clear message', async () => {
    const child = spawn(process.execPath, [BIN, 'serve', '--xds-port', 'many'], { cwd: ROOT });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const { code } = await exitOf(child);
    assert.notEqual(code, 0);
    assert.match(err, /"many" is not a port number/);
  });

  it('rejects push tuning that would stall pushes, from a flag or its environment variable', async () => {
    for (const [args, env] of [
      [['--push-concurrency', '0'], {}],
      [[], { MESHPILOT_XDS_STREAM_BUFFER: '-5' }],
    ] as const) {
      const child = spawn(process.execPath, [BIN, 'serve', '--xds-port', '0', '--admin-port', '0', ...args], { cwd: ROOT, env: { ...process.env, ...env } });
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const { code } = await exitOf(child);
      assert.notEqual(code, 0);
      assert.match(err, /is not a positive whole number/);
    }
  });
});
