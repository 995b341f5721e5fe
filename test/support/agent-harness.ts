// `meshpilot agent` in the test process, against a fake CA, in a temp dir: what a pod would have
// mounted (token, root) and where the agent writes (SDS socket, files), plus its log lines.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { startAgent, type AgentOptions, type RunningAgent } from '../../src/agent/agent.ts';
import { CA_SERVER_NAME, type FakeCa } from './fake-istio-ca.ts';

export interface AgentUnderTest {
  readonly agent: RunningAgent;
  readonly dir: string;
  readonly tokenFile: string;
  readonly sdsSocket: string;
  readonly outputDir: string;
  /** The gRPC xDS bootstrap, when `grpcBootstrap` was given (relative to the temp dir). */
  readonly bootstrapFile: string;
  /** Every log line the agent wrote, as text. */
  readonly logText: () => string;
  setToken(token: string): Promise<void>;
  close(): Promise<void>;
}

/** `ca`: the fake CA, or any CA at `address` whose serving certificate chains to `rootFile` and names meshpilot's service. */
export async function startTestAgent(ca: Pick<FakeCa, 'address' | 'rootFile'>, overrides: Partial<AgentOptions> = {}, token = 'token-for-productpage-1'): Promise<AgentUnderTest> {
  const dir = await mkdtemp(join(tmpdir(), 'meshpilot-agent-'));
  const tokenFile = join(dir, 'istio-token');
  await writeFile(tokenFile, `${token}\n`);
  const lines: string[] = [];
  const log = pino({ level: 'debug' }, new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  }));
  const sdsSocket = join(dir, 'var/run/secrets/workload-spiffe-uds/socket');
  const outputDir = join(dir, 'certs');
  const agent = await startAgent({
    trustDomain: 'cluster.local',
    namespace: 'default',
    serviceAccount: 'productpage',
    podName: 'productpage-v1-0',
    podIp: '127.0.0.1',
    keyType: 'ecdsa-p256',
    validitySeconds: 86_400,
    ca: { address: ca.address, serverName: CA_SERVER_NAME, rootCertFile: ca.rootFile, tokenFile, deadlineMs: 5000 },
    sdsSocket,
    outputDir,
    xdsAddress: '127.0.0.1:15010',
    grpcRefreshSeconds: 1,
    status: { host: '127.0.0.1', port: 0 },
    log,
    retryInitialMs: 100,
    retryMaxMs: 400,
    ...overrides,
    ...(overrides.grpcBootstrap ? { grpcBootstrap: join(dir, overrides.grpcBootstrap) } : {}),
  });
  return {
    agent,
    dir,
    tokenFile,
    sdsSocket,
    outputDir,
    bootstrapFile: join(dir, overrides.grpcBootstrap ?? 'bootstrap.json'),
    logText: () => lines.join(''),
    setToken: (token) => writeFile(tokenFile, `${token}\n`),
    close: async () => {
      await agent.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Polls `check` until it returns something (a positive signal), or fails after `timeoutMs`. */
export async function eventually<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
