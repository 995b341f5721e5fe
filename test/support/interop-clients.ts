// Three real proxyless gRPC xDS clients behind one interface: grpc-js-xds in this process, gRPC
// C-core (PyPI's grpcio, test/interop/xds_client.py) and grpc-go (test/interop/grpcgo) as child
// processes. Each run opens a fresh channel, makes its calls and reports every outcome in order.
import * as grpc from '@grpc/grpc-js';
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Whoami } from './backends.ts';
import { GrpcXdsCaller, xdsBootstrap, type XdsClientOptions } from './grpc-xds-client.ts';
import type { InteropClient } from './interop-results.ts';

const run = promisify(execFile);

export interface CallOutcome {
  readonly backend?: string;
  /** `<STATUS_CODE_NAME>: <details>`, e.g. `PERMISSION_DENIED: fault filter abort`. */
  readonly error?: string;
  readonly ms: number;
}

export interface ClientRun {
  readonly counts: Record<string, number>;
  readonly errors: Record<string, number>;
  readonly calls: readonly CallOutcome[];
}

export interface RunOptions extends XdsClientOptions {
  readonly target: string;
  readonly count: number;
  readonly headers?: Record<string, string>;
  /** Call i also sends `key: values[i % values.length]`. */
  readonly headerCycle?: { readonly key: string; readonly values: readonly string[] };
  readonly timeoutMs?: number;
  readonly intervalMs?: number;
  /** How long a child-process client waits for its channel before calling anyway. */
  readonly readyTimeoutMs?: number;
}

export interface XdsCaller {
  readonly client: Exclude<InteropClient, 'envoy'>;
  run(options: RunOptions): Promise<ClientRun>;
}

/** The status code names gRPC's specification uses, shared by every client's error keys. */
export function errorCode(outcome: CallOutcome): string | undefined {
  return outcome.error?.split(':')[0];
}

function tallied(calls: CallOutcome[]): ClientRun {
  const counts: Record<string, number> = {};
  const errors: Record<string, number> = {};
  for (const call of calls) {
    if (call.backend !== undefined) counts[call.backend] = (counts[call.backend] ?? 0) + 1;
    else if (call.error !== undefined) errors[call.error] = (errors[call.error] ?? 0) + 1;
  }
  return { counts, errors, calls };
}

/** The version of @grpc/grpc-js-xds this process loads. */
export function grpcJsXdsVersion(): string {
  const manifest = new URL('../../node_modules/@grpc/grpc-js-xds/package.json', import.meta.url);
  return (JSON.parse(readFileSync(manifest, 'utf8')) as { version: string }).version;
}

export const grpcJs: XdsCaller = {
  client: 'grpc-js',
  async run(options) {
    const caller = new GrpcXdsCaller(options.target, options);
    const calls: CallOutcome[] = [];
    try {
      // As the child-process clients do: calls are made once the channel settles, or anyway.
      if ((options.readyTimeoutMs ?? 20_000) > 0) await caller.settled(options.readyTimeoutMs ?? 20_000);
      for (let i = 0; i < options.count; i++) {
        if (i > 0 && options.intervalMs) await new Promise((resolve) => setTimeout(resolve, options.intervalMs));
        const cycle = options.headerCycle;
        const headers = { ...options.headers, ...(cycle ? { [cycle.key]: cycle.values[i % cycle.values.length] ?? '' } : {}) };
        const started = Date.now();
        try {
          const { name }: Whoami = await caller.whoami(headers, options.timeoutMs ?? 2000);
          calls.push({ backend: name, ms: Date.now() - started });
        } catch (error) {
          const { code, details } = error as grpc.ServiceError;
          calls.push({ error: `${grpc.status[code]}: ${details}`, ms: Date.now() - started });
        }
      }
    } finally {
      caller.close();
    }
    return tallied(calls);
  },
};

function cliArgs(options: RunOptions): string[] {
  return [
    '--target', options.target,
    '--count', String(options.count),
    '--timeout-ms', String(options.timeoutMs ?? 2000),
    '--interval-ms', String(options.intervalMs ?? 0),
    '--ready-timeout-ms', String(options.readyTimeoutMs ?? 20_000),
    ...Object.entries(options.headers ?? {}).flatMap(([k, v]) => ['--header', `${k}:${v}`]),
    ...(options.headerCycle ? ['--header-cycle', `${options.headerCycle.key}:${options.headerCycle.values.join(',')}`] : []),
  ];
}

async function runCli(command: string, args: string[], options: RunOptions, env: NodeJS.ProcessEnv = {}): Promise<ClientRun> {
  const { stdout } = await run(command, [...args, ...cliArgs(options)], {
    env: { ...process.env, ...env, GRPC_XDS_BOOTSTRAP_CONFIG: xdsBootstrap(options) },
    timeout: 60_000,
    maxBuffer: 16 * 1024 * 1024,
  });
  const line = stdout.trim().split('\n').pop() ?? '';
  const parsed = JSON.parse(line) as { calls: CallOutcome[] };
  return tallied(parsed.calls);
}

const PYTHON = process.env['MESHPILOT_PYTHON'] ?? 'python3';
const PY_CLIENT = new URL('../interop/xds_client.py', import.meta.url).pathname;

/** Where .ci/run installs grpcio 1.51.3 (`pip install --target`), the last C-core before 1.52. */
export const OLD_GRPCIO_DIR = process.env['MESHPILOT_OLD_GRPCIO'] ?? join(tmpdir(), 'meshpilot-grpcio-1.51.3');

/** gRPC C-core through grpcio; `pythonPath` puts another grpcio (the old one in OLD_GRPCIO_DIR) first. */
export function grpcCore(pythonPath?: string): XdsCaller {
  return {
    client: pythonPath ? 'grpc-core-1.51' : 'grpc-core',
    run: (options) => runCli(PYTHON, [PY_CLIENT], options, pythonPath ? { PYTHONPATH: pythonPath } : {}),
  };
}

/** The grpcio version `python3` imports (with `pythonPath` first), or why it cannot. */
export async function grpcioVersion(pythonPath?: string): Promise<{ version?: string; missing?: string }> {
  try {
    const { stdout } = await run(PYTHON, ['-c', 'import grpc; print(grpc.__version__)'], { env: { ...process.env, ...(pythonPath ? { PYTHONPATH: pythonPath } : {}) } });
    return { version: stdout.trim() };
  } catch {
    return { missing: `${PYTHON} cannot import grpc: python3 -m pip install grpcio (.ci/run pins the version)` };
  }
}

const GO_DIR = new URL('../interop/grpcgo/', import.meta.url).pathname;

/** The grpc-go version go.mod pins. */
export function grpcGoVersion(): string {
  return /google\.golang\.org\/grpc v(\S+)/.exec(readFileSync(join(GO_DIR, 'go.mod'), 'utf8'))?.[1] ?? 'unknown';
}

/**
 * Builds test/interop/grpcgo with the machine's Go once per content of its sources (go.mod,
 * go.sum, main.go) into the temp dir, and returns the binary, or why it cannot.
 */
export async function buildGrpcGo(): Promise<{ binary?: string; missing?: string }> {
  const hash = createHash('sha256');
  for (const file of ['go.mod', 'go.sum', 'main.go']) hash.update(readFileSync(join(GO_DIR, file)));
  const dir = join(tmpdir(), `meshpilot-grpcgo-${hash.digest('hex').slice(0, 16)}`);
  const binary = join(dir, 'grpcgo');
  if (existsSync(binary)) return { binary };
  mkdirSync(dir, { recursive: true });
  const building = join(dir, `grpcgo.${process.pid}`);
  try {
    await run('go', ['build', '-trimpath', '-ldflags=-s -w', '-o', building, '.'], { cwd: GO_DIR, timeout: 600_000 });
  } catch (error) {
    return { missing: `go build in test/interop/grpcgo failed: ${(error as Error).message}` };
  }
  // A rename is atomic, so concurrent builders never see half a binary.
  renameSync(building, binary);
  return { binary };
}

export function grpcGo(binary: string): XdsCaller {
  return { client: 'grpc-go', run: (options) => runCli(binary, [], options) };
}
