// pods/exec on the fake Kubernetes API as the Gateway API conformance suite's mesh cases use it:
// client-go's SPDY executor (test/conformance/exec-probe, built here) runs a command in a pod over
// HTTPS, and the pod's "container" is this machine (the registered handler runs the command).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { request } from 'node:https';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { CONFORMANCE_MODULE, servingCertificate } from './support/conformance-run.ts';
import { FakeKubeApi } from './support/fake-kube-api.ts';
import type { ExecRequest } from './support/fake-kube-exec.ts';
import { FRAME, controlFrame, encodeHeaderBlock, headerCompressor, uint32s } from './support/spdy-frames.ts';

const run = promisify(execFile);

interface ProbeResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly error: string;
  readonly exitCode: number;
}

/** The lines `seq first last` prints. */
function seq(first: number, last: number): string {
  const step = first <= last ? 1 : -1;
  const lines: string[] = [];
  for (let n = first; n !== last + step; n += step) lines.push(`${String(n)}\n`);
  return lines.join('');
}

describe('pods/exec over SPDY, driven by client-go', () => {
  let dir = '';
  let probe = '';
  let api: FakeKubeApi;
  let kubeconfig = '';
  const seen: ExecRequest[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshpilot-exec-'));
    probe = join(dir, 'exec-probe');
    await run('go', ['build', '-o', probe, './exec-probe'], { cwd: CONFORMANCE_MODULE, maxBuffer: 1 << 24 });
    api = await FakeKubeApi.start({ tls: await servingCertificate(dir) });
    api.apply({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'client', namespace: 'gateway-conformance-mesh' }, spec: { containers: [{ name: 'echo', image: 'echo-advanced' }] } });
    // The container is this machine: the command runs here; one that cannot start is the runtime's error.
    api.serveExec(async (request) => {
      seen.push(request);
      const [file = '', ...args] = request.command;
      return new Promise((resolve, reject) => {
        execFile(file, args, { encoding: 'buffer', maxBuffer: 1 << 24 }, (error, stdout, stderr) => {
          if (error && typeof error.code === 'string') reject(new Error(`exec: "${file}": executable file not found in $PATH`));
          else resolve({ stdout, stderr, exitCode: typeof error?.code === 'number' ? error.code : 0 });
        });
      });
    });
    kubeconfig = join(dir, 'kubeconfig');
    await api.writeKubeconfig(kubeconfig);
  });

  after(async () => {
    await api.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function exec(pod: string, ...command: string[]): Promise<ProbeResult> {
    const { stdout } = await run(probe, ['-namespace', 'gateway-conformance-mesh', '-pod', pod, '--', ...command], { env: { ...process.env, KUBECONFIG: kubeconfig }, maxBuffer: 1 << 24 });
    const result = JSON.parse(stdout) as { stdout: string | null; stderr: string | null; error: string; exitCode: number };
    const text = (base64: string | null): string => Buffer.from(base64 ?? '', 'base64').toString('utf8');
    return { stdout: text(result.stdout), stderr: text(result.stderr), error: result.error, exitCode: result.exitCode };
  }

  it('brings back stdout and stderr intact, far beyond the first 64 KiB window, over TLS', async () => {
    const result = await exec('client', 'sh', '-c', 'seq 1 60000; seq 50000 -1 1 >&2');
    assert.equal(result.error, '');
    assert.equal(result.exitCode, 0);
    assert.ok(result.stdout.length > 200_000, `stdout has ${String(result.stdout.length)} bytes`);
    assert.equal(result.stdout, seq(1, 60000));
    assert.equal(result.stderr, seq(50000, 1));
    assert.deepEqual(seen.at(-1), { namespace: 'gateway-conformance-mesh', pod: 'client', container: 'echo', command: ['sh', '-c', 'seq 1 60000; seq 50000 -1 1 >&2'] });
    const upgrade = api.requests.findLast((r) => r.path.endsWith('/exec'));
    assert.equal(upgrade?.user, 'admin');
  });

  it('reports a non-zero exit as client-go exit code error, after the output', async () => {
    const result = await exec('client', 'sh', '-c', 'echo partial; echo oops >&2; exit 7');
    assert.equal(result.exitCode, 7);
    assert.equal(result.error, 'command terminated with exit code 7');
    assert.equal(result.stdout, 'partial\n');
    assert.equal(result.stderr, 'oops\n');
  });

  it('says so when the command cannot start', async () => {
    const result = await exec('client', 'no-such-command-here');
    assert.equal(result.exitCode, -1);
    assert.match(result.error, /^Internal error occurred: error executing command in container: exec: "no-such-command-here": executable file not found/);
  });

  it('refuses a pod that does not exist, and an exec without a command, before upgrading', async () => {
    const missing = await exec('ghost', 'true');
    assert.equal(missing.exitCode, -1);
    assert.match(missing.error, /pods "ghost" not found/);
    const empty = await exec('client');
    assert.match(empty.error, /you must specify at least 1 command/);
    assert.equal(seen.filter((r) => r.pod === 'ghost' || r.command.length === 0).length, 0);
  });

  it('holds output to the windows of a client that does SPDY/3.1 flow control (client-go never sends WINDOW_UPDATE)', async () => {
    const session = await rawSession(api, '/api/v1/namespaces/gateway-conformance-mesh/pods/client/exec?command=seq&command=1&command=30000&container=echo&stdout=true&stderr=true');
    const window = 16 * 1024;
    session.send(controlFrame(FRAME.settings, 0, uint32s(1, 7, window)));
    await session.open(['error', 'stdout', 'stderr']);
    await session.until(() => session.data(3).length >= window);
    // The command has finished; a PING answered means the server had its chance to send more, and did not.
    assert.ok(seen.some((r) => r.command.join(' ') === 'seq 1 30000'));
    session.send(controlFrame(FRAME.ping, 0, uint32s(1)));
    await session.until(() => session.pings > 0);
    assert.equal(session.data(3).length, window);
    session.send(controlFrame(FRAME.windowUpdate, 0, uint32s(3, 1 << 20)));
    session.send(controlFrame(FRAME.windowUpdate, 0, uint32s(0, 1 << 20)));
    await session.until(() => session.finished.has(1));
    assert.equal(session.data(3).toString('utf8'), seq(1, 30000));
    assert.deepEqual(JSON.parse(session.data(1).toString('utf8')), { metadata: {}, status: 'Success' });
    assert.equal(session.protocol, 'v4.channel.k8s.io');
    session.socket.destroy();
  });

  it('gives an older client (v3, no exit codes) the failure as text on the error stream', async () => {
    const session = await rawSession(api, '/api/v1/namespaces/gateway-conformance-mesh/pods/client/exec?command=sh&command=-c&command=exit%203&stdout=true', 'v3.channel.k8s.io,v2.channel.k8s.io');
    assert.equal(session.protocol, 'v3.channel.k8s.io');
    await session.open(['error', 'stdout']);
    await session.until(() => session.finished.has(1) && session.finished.has(3));
    assert.equal(session.data(1).toString('utf8'), 'command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3');
    assert.equal(session.data(3).length, 0);
    session.socket.destroy();
  });
});

/** A hand-driven SPDY client session on an exec upgrade: what arrived per stream, FINs seen, PINGs answered. */
async function rawSession(api: FakeKubeApi, path: string, protocols = 'v5.channel.k8s.io,v4.channel.k8s.io') {
  const upgrade = request(`${api.url}${path}`, {
    method: 'POST',
    rejectUnauthorized: false,
    headers: { authorization: 'Bearer fake-token', connection: 'Upgrade', upgrade: 'SPDY/3.1', 'x-stream-protocol-version': protocols },
  });
  upgrade.end();
  const [response, socket] = (await once(upgrade, 'upgrade')) as [IncomingMessage, Socket];
  const received = new Map<number, Buffer[]>();
  const finished = new Set<number>();
  const changed = new Set<() => void>();
  let pings = 0;
  let pending = Buffer.alloc(0);
  const compress = headerCompressor();
  socket.on('data', (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 8 && pending.length >= 8 + (pending.readUInt32BE(4) & 0xffffff)) {
      const length = pending.readUInt32BE(4) & 0xffffff;
      const flags = pending.readUInt8(4);
      if ((pending.readUInt8(0) & 0x80) === 0) {
        const id = pending.readUInt32BE(0);
        received.set(id, [...(received.get(id) ?? []), pending.subarray(8, 8 + length)]);
        if ((flags & 1) !== 0) finished.add(id);
      } else if (pending.readUInt16BE(2) === FRAME.ping) pings++;
      pending = pending.subarray(8 + length);
    }
    for (const wake of changed) wake();
  });
  return {
    socket,
    protocol: response.headers['x-stream-protocol-version'],
    finished,
    get pings() {
      return pings;
    },
    send: (frame: Buffer) => socket.write(frame),
    /** SYN_STREAMs as client-go opens them: ids 1, 3, 5... in order, the remotecommand stream type in a header. */
    open: async (streamTypes: readonly string[]) => {
      for (const [index, streamType] of streamTypes.entries()) {
        socket.write(controlFrame(FRAME.synStream, 0, Buffer.concat([uint32s(index * 2 + 1, 0), Buffer.from([0, 0]), await compress(encodeHeaderBlock({ streamtype: streamType }))])));
      }
    },
    data: (id: number) => Buffer.concat(received.get(id) ?? []),
    /** Resolves once `condition` holds, checked as frames arrive (and now). */
    until: (condition: () => boolean) =>
      new Promise<void>((resolve) => {
        const check = (): void => {
          if (!condition()) return;
          changed.delete(check);
          resolve();
        };
        changed.add(check);
        check();
      }),
  };
}
