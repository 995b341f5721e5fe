// Logging never blocks serving: a full disk or a reader that stops costs log lines, counted in
// /metrics and reported once writing works again.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { closeSync, openSync, readSync, constants as fsConstants } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { LogSink } from '../src/log-sink.ts';
import { CLUSTER_TYPE } from '../src/xds/type-urls.ts';
import { RawAdsClient } from './support/ads-client.ts';
import { eventually } from './support/mesh-dir.ts';

const ROOT = new URL('..', import.meta.url).pathname;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  return typeof address === 'object' && address ? address.port : 0;
}

describe('logging never blocks serving', () => {
  it('with stdout on a full disk (/dev/full), meshpilot serves xDS and the admin API and counts the lost lines', async () => {
    const [adminPort, xdsPort] = [await freePort(), await freePort()];
    const full = openSync('/dev/full', 'w');
    const child = spawn(process.execPath, ['bin/meshpilot.js', 'serve', '--admin-port', String(adminPort), '--xds-port', String(xdsPort), '--log-level', 'debug'], {
      cwd: ROOT,
      stdio: ['ignore', full, 'pipe'],
    });
    closeSync(full);
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      await eventually(async () => ((await fetch(`http://127.0.0.1:${adminPort}/ready`)).status === 200 ? true : undefined), 20_000, '/ready');
      const client = new RawAdsClient(xdsPort, 'sidecar~10.244.0.20~productpage-v1-0.default~default.svc.cluster.local');
      try {
        client.send({ typeUrl: CLUSTER_TYPE });
        const response = await client.next((r) => r.type_url === CLUSTER_TYPE, 0, 10_000);
        assert.ok(response.resources.length > 0);
      } finally {
        client.close();
      }
      const dropped = await eventually(async () => {
        const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
        const value = Number(/^meshpilot_log_dropped_lines (\d+)/m.exec(text)?.[1] ?? '0');
        return value > 0 ? value : undefined;
      }, 10_000, 'dropped lines counted');
      assert.ok(dropped > 0);
      child.kill('SIGTERM');
      assert.equal(await exited, 0, 'it still stops cleanly');
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('a reader that stops costs lines beyond the buffer, not memory or the event loop; when it reads again, the loss is reported', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'meshpilot-log-'));
    const fifo = join(dir, 'log.fifo');
    await promisify(execFile)('mkfifo', [fifo]);
    const reader = openSync(fifo, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
    const writer = openSync(fifo, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK);
    try {
      const sink = new LogSink({ fd: writer, maxBufferedBytes: 256 * 1024 });
      const line = `${JSON.stringify({ msg: 'x'.repeat(200) })}\n`;
      let turns = 0;
      const ticking = setInterval(() => turns++, 1);
      // 20 MB of lines into a pipe nobody reads (it holds 64 KB).
      for (let i = 0; i < 100_000; i++) {
        sink.write(line);
        if (i % 10_000 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
      await eventually(() => (turns > 5 ? true : undefined), 5000, 'the event loop keeps turning');
      clearInterval(ticking);
      assert.ok(sink.droppedLines > 50_000, `dropped ${String(sink.droppedLines)}`);
      // The reader comes back: what was kept arrives, then a line saying how much was lost.
      let received = '';
      const buffer = Buffer.alloc(1 << 16);
      await eventually(() => {
        for (;;) {
          let n: number;
          try {
            n = readSync(reader, buffer, 0, buffer.length, null);
          } catch {
            break; // EAGAIN: nothing more to read right now
          }
          if (n <= 0) break;
          received += buffer.subarray(0, n).toString('utf8');
        }
        return received.includes('log lines were dropped') ? true : undefined;
      }, 10_000, 'the loss report');
      const report = received.split('\n').find((l) => l.includes('log lines were dropped'));
      assert.match(report ?? '', /"droppedLines":\d+/);
    } finally {
      closeSync(writer);
      closeSync(reader);
      await rm(dir, { recursive: true, force: true });
    }
  });
});
