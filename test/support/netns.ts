// Pods as network namespaces on one Linux bridge, with Istio's iptables capture for sidecar pods.
// Addresses come only from the documentation ranges, and pods have on-link routes only (no
// gateway), so a packet nothing captures just ARPs on the bridge: nothing leaves the machine.
// 192.0.2.0/24 is left alone: a host may itself live there (this one's eth0 and gateway do).
import { execFile, spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { mkdir, open, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Pods and the bridge: one /27 of it per test process. */
export const POD_RANGE = '198.51.100.0/24';
/** Service VIPs (203.0.113.0/26) and hosts outside the mesh (203.0.113.64/26), all on-link from pods. */
export const OUTSIDE_RANGE = '203.0.113.0/24';
/** Istio's proxy uid, which its capture rules leave alone. */
export const PROXY_UID = 1337;
/** Envoy's admin port in a sidecar pod (Istio's), excluded from inbound capture so the test can read /stats. */
export const PROXY_ADMIN_PORT = 15000;

/** Per-namespace files `ip netns exec` mounts over /etc (a pod's resolv.conf). */
const ETC_NETNS = '/etc/netns';

/** One /27 of the pod range per test process, so several processes can each have a bridge at once. */
const SLOT_SIZE = 32;
const SLOTS = 256 / SLOT_SIZE;
const SLOT_DIR = tmpdir();
const slotFile = (slot: number): string => join(SLOT_DIR, `meshpilot-netns-slot-${slot}`);

async function ip(...args: string[]): Promise<string> {
  const { stdout } = await run('ip', args);
  return stdout;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes one free /27 (a lock file per slot holding our pid); a slot of a dead process is taken over. */
async function claimOneSlot(slot: number): Promise<boolean> {
  const file = slotFile(slot);
  for (let tries = 0; tries < 2; tries++) {
    try {
      const handle = await open(file, 'wx');
      await handle.writeFile(String(process.pid));
      await handle.close();
      return true;
    } catch {
      const owner = Number(await readFile(file, 'utf8').catch(() => ''));
      if (Number.isInteger(owner) && owner > 0 && pidAlive(owner)) return false;
      await rm(file, { force: true });
    }
  }
  return false;
}

/** Takes `count` adjacent free slots aligned to `count` (one prefix of the pod range); returns the first. */
async function claimSlots(count: number): Promise<number> {
  for (let first = 0; first + count <= SLOTS; first += count) {
    const taken: number[] = [];
    for (let slot = first; slot < first + count && (await claimOneSlot(slot)); slot++) taken.push(slot);
    if (taken.length === count) return first;
    for (const slot of taken) await rm(slotFile(slot), { force: true });
  }
  throw new Error(`no ${String(count)} free adjacent slots of ${POD_RANGE}: ${SLOT_DIR}/meshpilot-netns-slot-* belong to live processes`);
}

/** Namespaces and links named `mp<pid>…` whose process is gone (a test killed before its cleanup). */
async function removeStaleLeftovers(): Promise<void> {
  const stalePid = (name: string): boolean => {
    const pid = Number(/^mp(\d+)/.exec(name)?.[1]);
    return Number.isInteger(pid) && pid > 0 && pid !== process.pid && !pidAlive(pid);
  };
  const namespaces = (await ip('netns', 'list')).split('\n').map((l) => l.split(' ')[0] ?? '').filter(Boolean);
  for (const ns of namespaces.filter(stalePid)) {
    // Envoys of a killed test outlive it: end what still runs inside before removing the namespace.
    await killAllIn(ns);
    await ip('netns', 'del', ns).catch(() => undefined);
  }
  for (const dir of (await readdir(ETC_NETNS).catch(() => [])).filter(stalePid)) await rm(join(ETC_NETNS, dir), { recursive: true, force: true });
  const links = (await readdir('/sys/class/net')).filter(stalePid);
  for (const link of links) await ip('link', 'del', link).catch(() => undefined);
}

/** Refuses to start where the host already routes a range the pods use: their traffic must stay theirs. */
async function refuseRangesInUse(): Promise<void> {
  const routes = JSON.parse(await ip('-j', 'route', 'show', 'table', 'all')) as { dst?: string; dev?: string }[];
  const clash = routes.filter((r) => !r.dev?.startsWith('mp') && /^(198\.51\.100|203\.0\.113)\./.test(r.dst ?? ''));
  if (clash.length > 0) throw new Error(`the host routes ${clash.map((r) => `${r.dst ?? ''} dev ${r.dev ?? ''}`).join(', ')}: pods in ${POD_RANGE} and ${OUTSIDE_RANGE} would not be isolated`);
}

let netnsSupport: Promise<string | undefined> | undefined;

/** Why pods cannot be made here (not root, no iproute2/iptables/setpriv), or undefined when they can. */
export function netnsUnsupported(): Promise<string | undefined> {
  netnsSupport ??= (async () => {
    if (process.getuid?.() !== 0) return 'network namespaces need root';
    for (const tool of [['ip', '-V'], ['iptables', '--version'], ['setpriv', '--version']] as const) {
      try {
        await run(tool[0], [tool[1]]);
      } catch {
        return `${tool[0]} not found (iproute2, iptables, util-linux)`;
      }
    }
    return undefined;
  })();
  return netnsSupport;
}

/** True when pods can be made; otherwise in CI a failure, elsewhere a skip that says why. */
export async function requireNetns(t: TestContext): Promise<boolean> {
  const why = await netnsUnsupported();
  if (why === undefined) return true;
  if (process.env['CI'] === 'true') throw new Error(`${why} (CI must run the sidecar suite)`);
  t.skip(why);
  return false;
}

/** SIGKILLs every process in a namespace (`ip netns pids`). */
async function killAllIn(netns: string): Promise<void> {
  const pids = (await ip('netns', 'pids', netns).catch(() => '')).split('\n').map(Number).filter((pid) => pid > 0);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

export interface Pod {
  readonly name: string;
  /** Network namespace name (`ip netns exec NAME ...`). */
  readonly netns: string;
  readonly ip: string;
}

/** A process started inside a pod; its output is kept for assertion messages. */
export interface PodProcess {
  readonly child: ChildProcess;
  readonly output: () => string;
}

/**
 * A bridge in the host namespace holding `hostIp` (where meshpilot's xDS listens), and pods
 * joined to it by veth pairs. Everything is removed by `close()`, and on process exit or signal.
 */
export class PodNetwork {
  readonly pods = new Map<string, Pod>();
  readonly #children = new Set<ChildProcess>();
  readonly #prefix: string;
  readonly #bridge: string;
  readonly #base: number;
  /** Addresses in this network's prefix (32 per slot). */
  readonly #size: number;
  readonly #prefixLength: number;
  /** Host numbers of removed pods, given out again first. */
  readonly #freeHosts: number[] = [];
  #nextHost = 2;
  #nextLink = 0;
  #closed = false;

  private constructor(
    readonly slot: number,
    readonly slots: number,
  ) {
    this.#prefix = `mp${process.pid}`;
    this.#bridge = `${this.#prefix}br`;
    this.#base = slot * SLOT_SIZE;
    this.#size = slots * SLOT_SIZE;
    this.#prefixLength = 32 - Math.log2(this.#size);
  }

  /** The bridge's address in the host namespace. */
  get hostIp(): string {
    return `198.51.100.${this.#base + 1}`;
  }

  /** A network of `slots` adjacent /27s (1, 2 or 4: a /27, /26 or /25) for pods. */
  static async create(slots: 1 | 2 | 4 = 1): Promise<PodNetwork> {
    await removeStaleLeftovers();
    await refuseRangesInUse();
    const network = new PodNetwork(await claimSlots(slots), slots);
    cleanupOnExit(network);
    try {
      // A fixed address: a bridge otherwise takes its lowest port's, and pods that cached the old one lose the host.
      const mac = `02:6d:70:${[process.pid >> 16, process.pid >> 8, process.pid].map((b) => (b & 0xff).toString(16).padStart(2, '0')).join(':')}`;
      // Frames between pods skip the host's iptables (br_netfilter): a host FORWARD policy of DROP must not matter.
      await ip('link', 'add', network.#bridge, 'address', mac, 'type', 'bridge', 'nf_call_iptables', '0', 'nf_call_ip6tables', '0', 'nf_call_arptables', '0');
      await ip('addr', 'add', `${network.hostIp}/${String(network.#prefixLength)}`, 'dev', network.#bridge);
      await ip('link', 'set', network.#bridge, 'up');
    } catch (error) {
      await network.close();
      throw error;
    }
    return network;
  }

  /**
   * A pod on the bridge: lo up, eth0 with the next free address of this network's prefix, an
   * on-link route to 203.0.113.0/24; with `resolvConf`, what its processes read as /etc/resolv.conf.
   */
  async addPod(name: string, options: { readonly resolvConf?: string } = {}): Promise<Pod> {
    const host = this.#freeHosts.shift() ?? (this.#nextHost < this.#size - 1 ? this.#nextHost++ : undefined);
    if (host === undefined) throw new Error(`no pod address left in this /${String(this.#prefixLength)}`);
    const pod = await this.#join(name, `198.51.100.${this.#base + host}`, this.#prefixLength, [OUTSIDE_RANGE]);
    if (options.resolvConf !== undefined) {
      await mkdir(join(ETC_NETNS, pod.netns), { recursive: true });
      await writeFile(join(ETC_NETNS, pod.netns, 'resolv.conf'), options.resolvConf);
    }
    return pod;
  }

  /** Ends what runs in a pod, removes its namespace (its veth pair goes with it) and frees its address. */
  async removePod(name: string): Promise<void> {
    const pod = this.pods.get(name);
    if (!pod) return;
    this.pods.delete(name);
    await killAllIn(pod.netns);
    await ip('netns', 'del', pod.netns).catch(() => undefined);
    await rm(join(ETC_NETNS, pod.netns), { recursive: true, force: true });
    const host = Number(pod.ip.split('.')[3]) - this.#base;
    if (host >= 2 && host < this.#size - 1) this.#freeHosts.push(host);
  }

  /** A host outside the mesh at an address of 203.0.113.64/26, on the bridge, answering pods on-link. */
  async addExternalHost(name: string, address: string): Promise<Pod> {
    const last = Number(/^203\.0\.113\.(\d+)$/.exec(address)?.[1]);
    if (!(last >= 64 && last < 128)) throw new Error(`${address} is not in 203.0.113.64/26`);
    return this.#join(name, address, 24, [`198.51.100.${this.#base}/${String(this.#prefixLength)}`]);
  }

  async #join(name: string, address: string, prefixLength: number, onLink: readonly string[]): Promise<Pod> {
    if (this.pods.has(name)) throw new Error(`pod ${name} exists`);
    const netns = `${this.#prefix}-${name}`;
    const hostEnd = `${this.#prefix}v${this.#nextLink}`;
    const podEnd = `${this.#prefix}p${this.#nextLink++}`;
    await ip('netns', 'add', netns);
    const pod: Pod = { name, netns, ip: address };
    this.pods.set(name, pod);
    await ip('link', 'add', hostEnd, 'type', 'veth', 'peer', 'name', podEnd);
    await ip('link', 'set', podEnd, 'netns', netns);
    await ip('link', 'set', hostEnd, 'master', this.#bridge, 'up');
    const inPod = (...args: string[]) => ip('-n', netns, ...args);
    await inPod('link', 'set', 'lo', 'up');
    await inPod('link', 'set', podEnd, 'name', 'eth0');
    await inPod('addr', 'add', `${address}/${prefixLength}`, 'dev', 'eth0');
    await inPod('link', 'set', 'eth0', 'up');
    for (const range of onLink) await inPod('route', 'add', range, 'dev', 'eth0', 'scope', 'link');
    return pod;
  }

  /** Routes `range` from the host onto the bridge (on-link: what nothing there answers goes nowhere); gone with the bridge. */
  async routeToBridge(range: string): Promise<void> {
    if (!/^(198\.51\.100|203\.0\.113)\./.test(range)) throw new Error(`${range} is outside ${POD_RANGE} and ${OUTSIDE_RANGE}`);
    await ip('route', 'add', range, 'dev', this.#bridge, 'scope', 'link');
  }

  /** `iptables` in a pod's namespace. */
  async iptables(pod: Pod, ...args: string[]): Promise<string> {
    const { stdout } = await run('ip', ['netns', 'exec', pod.netns, 'iptables', '-w', ...args]);
    return stdout;
  }

  /** Istio's sidecar capture in a pod (what `istio-iptables` installs), see `istioCaptureRules`. */
  async captureLikeIstio(pod: Pod, options: CaptureOptions = {}): Promise<void> {
    const rules = istioCaptureRules(options);
    const file = join(tmpdir(), `${this.#prefix}-${pod.name}.rules`);
    await writeFile(file, rules);
    try {
      await run('ip', ['netns', 'exec', pod.netns, 'iptables-restore', '-w', '--noflush', file]);
    } finally {
      await rm(file, { force: true });
    }
  }

  /** Runs `command args` inside the pod to its end. */
  async exec(pod: Pod, command: string, args: readonly string[]): Promise<string> {
    const { stdout } = await run('ip', ['netns', 'exec', pod.netns, command, ...args]);
    return stdout;
  }

  /** Starts `command args` inside the pod (as root unless `uid` is given); stopped by `close()`. */
  spawn(pod: Pod, command: string, args: readonly string[], options: { uid?: number } & SpawnOptions = {}): PodProcess {
    let full = [command, ...args];
    if (options.uid !== undefined) full = ['setpriv', `--reuid=${options.uid}`, `--regid=${options.uid}`, '--clear-groups', '--', ...full];
    const child = spawn('ip', ['netns', 'exec', pod.netns, ...full], { stdio: ['pipe', 'pipe', 'pipe'], ...options });
    this.#children.add(child);
    child.once('exit', () => this.#children.delete(child));
    const chunks: string[] = [];
    child.stderr?.on('data', (chunk: Buffer) => {
      chunks.push(chunk.toString('utf8'));
      if (chunks.length > 200) chunks.splice(0, chunks.length - 200);
    });
    return { child, output: () => chunks.join('') };
  }

  /** Stops what was started in the pods, removes the namespaces, links and bridge, frees the slot. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#children].map((child) => stopChild(child)));
    for (const pod of this.pods.values()) {
      await killAllIn(pod.netns);
      await ip('netns', 'del', pod.netns).catch(() => undefined);
      await rm(join(ETC_NETNS, pod.netns), { recursive: true, force: true });
    }
    for (const link of (await readdir('/sys/class/net')).filter((l) => l.startsWith(this.#prefix))) {
      await ip('link', 'del', link).catch(() => undefined);
    }
    for (let slot = this.slot; slot < this.slot + this.slots; slot++) await rm(slotFile(slot), { force: true });
    networks.delete(this);
  }

  /** What `close()` does, synchronously, for `process.on('exit')`. */
  closeSync(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const child of this.#children) child.kill('SIGKILL');
    const sh = [
      ...[...this.pods.values()].map((p) => `kill -9 $(ip netns pids ${p.netns}) 2>/dev/null; ip netns del ${p.netns}; rm -rf ${ETC_NETNS}/${p.netns}`),
      `for l in /sys/class/net/${this.#prefix}*; do ip link del "$(basename "$l")"; done`,
      ...Array.from({ length: this.slots }, (_, i) => `rm -f ${slotFile(this.slot + i)}`),
    ].join('; ');
    spawnSyncQuiet(sh);
  }
}

export interface CaptureOptions {
  /** Inbound ports left uncaptured besides Istio's own (15090, 15021, 15020) and the admin port. */
  readonly excludeInboundPorts?: readonly number[];
}

/**
 * The nat rules `istio-iptables` writes for REDIRECT mode: inbound TCP to 15006 except the
 * proxy's own ports; outbound TCP to 15001 except the proxy's own traffic (uid/gid 1337), the
 * 127.0.0.6 passthrough source, and loopback that is not the proxy talking to its own pod IP.
 */
export function istioCaptureRules(options: CaptureOptions = {}): string {
  const excluded = [15090, 15021, 15020, PROXY_ADMIN_PORT, ...(options.excludeInboundPorts ?? [])];
  return [
    '*nat',
    ':ISTIO_INBOUND - [0:0]',
    ':ISTIO_REDIRECT - [0:0]',
    ':ISTIO_IN_REDIRECT - [0:0]',
    ':ISTIO_OUTPUT - [0:0]',
    '-A ISTIO_INBOUND -p tcp --dport 15008 -j RETURN',
    '-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001',
    '-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006',
    '-A PREROUTING -p tcp -j ISTIO_INBOUND',
    ...excluded.map((port) => `-A ISTIO_INBOUND -p tcp --dport ${port} -j RETURN`),
    '-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT',
    '-A OUTPUT -p tcp -j ISTIO_OUTPUT',
    '-A ISTIO_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN',
    `-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m owner --uid-owner ${PROXY_UID} -j ISTIO_IN_REDIRECT`,
    `-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner ${PROXY_UID} -j RETURN`,
    `-A ISTIO_OUTPUT -m owner --uid-owner ${PROXY_UID} -j RETURN`,
    `-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m owner --gid-owner ${PROXY_UID} -j ISTIO_IN_REDIRECT`,
    `-A ISTIO_OUTPUT -o lo -m owner ! --gid-owner ${PROXY_UID} -j RETURN`,
    `-A ISTIO_OUTPUT -m owner --gid-owner ${PROXY_UID} -j RETURN`,
    '-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN',
    '-A ISTIO_OUTPUT -j ISTIO_REDIRECT',
    'COMMIT',
    '',
  ].join('\n');
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
  await gone;
  clearTimeout(timer);
}

const networks = new Set<PodNetwork>();
let hooksInstalled = false;

function cleanupOnExit(network: PodNetwork): void {
  networks.add(network);
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.once('exit', () => {
    for (const n of networks) n.closeSync();
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      for (const n of networks) n.closeSync();
      process.kill(process.pid, signal);
    });
  }
}

/** Exit handlers cannot wait for promises. */
function spawnSyncQuiet(sh: string): void {
  spawnSync('sh', ['-c', sh], { stdio: 'ignore' });
}
