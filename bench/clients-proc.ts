// The benchmark's proxies: P lightweight xDS clients in their own process, over raw HTTP/2,
// behaving like Envoy (wildcard CDS and LDS, then EDS and RDS for what those name; every
// response ACKed at once). Reports initial sync and when each proxy ACKs a marked change.
import http2 from 'node:http2';
import net from 'node:net';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../src/xds/type-urls.ts';
import type { ParsedResponse } from './wire-client.ts';
import { Deframer, deltaRequest, frame, parseDeltaResponse, parseSotwResponse, sotwRequest } from './wire-client.ts';

export type ClientMessage =
  | { type: 'start'; port: number; proxies: number; mode: 'sotw' | 'delta'; namespaces: number }
  | { type: 'watch'; id: string; marker: string }
  | { type: 'sink'; sockets: number; bytesPerSocket: number }
  | { type: 'stop' };

export type ClientReport =
  | { type: 'synced'; at: number; startedAt: number; bytesReceived: number; cpuSeconds: number }
  | { type: 'seen'; id: string; times: number[]; missing: number }
  | { type: 'sink-ready'; port: number }
  | { type: 'sink-done'; at: number }
  /** meshpilot closed light clients' connections (they do not reconnect): the scenario cannot finish. */
  | { type: 'failed'; message: string };

const now = (): number => performance.timeOrigin + performance.now();
const send = (report: ClientReport): void => {
  process.send?.(report);
};

interface Watch {
  readonly marker: Buffer;
  readonly times: (number | undefined)[];
  left: number;
}

const watches = new Map<string, Watch>();
let bytesReceived = 0;

class Proxy {
  readonly index: number;
  readonly #stream: http2.ClientHttp2Stream;
  readonly #mode: 'sotw' | 'delta';
  readonly #nodeId: string;
  #sentNode = false;
  eds: string[] = [];
  rds: string[] = [];
  readonly seen = new Set<string>();
  readonly #last = new Map<string, ParsedResponse>();
  onSynced: (() => void) | undefined;

  constructor(session: http2.ClientHttp2Session, index: number, mode: 'sotw' | 'delta', namespace: string) {
    this.index = index;
    this.#mode = mode;
    this.#nodeId = `sidecar~10.${100 + (index >> 16)}.${(index >> 8) & 255}.${index & 255}~proxy-${index}.${namespace}~${namespace}.svc.cluster.local`;
    const path = `/envoy.service.discovery.v3.AggregatedDiscoveryService/${mode === 'delta' ? 'DeltaAggregatedResources' : 'StreamAggregatedResources'}`;
    this.#stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' });
    const deframer = new Deframer();
    this.#stream.on('data', (chunk: Buffer) => {
      bytesReceived += chunk.length;
      deframer.push(chunk, (m) => {
        this.#onMessage(m);
      });
    });
    this.#stream.on('error', () => undefined);
    this.#request(CLUSTER_TYPE, [], [], '', '');
    this.#request(LISTENER_TYPE, [], [], '', '');
  }

  #request(typeUrl: string, names: readonly string[], unsubscribe: readonly string[], version: string, nonce: string): void {
    const nodeId = this.#sentNode ? undefined : this.#nodeId;
    this.#sentNode = true;
    const body =
      this.#mode === 'delta'
        ? deltaRequest({ ...(nodeId ? { nodeId } : {}), typeUrl, subscribe: names, unsubscribe, nonce })
        : sotwRequest({ ...(nodeId ? { nodeId } : {}), typeUrl, names, version, nonce });
    // One writev of the parts: the shared names block is handed to the socket, not copied.
    this.#stream.cork();
    for (const part of frame(body)) if (part.length > 0) this.#stream.write(part);
    this.#stream.uncork();
  }

  #onMessage(message: Buffer): void {
    const r = this.#mode === 'delta' ? parseDeltaResponse(message) : parseSotwResponse(message, !isFollowed(message));
    this.#last.set(r.typeUrl, r);
    // ACK first, as Envoy does once the config is applied.
    if (this.#mode === 'delta') this.#request(r.typeUrl, [], [], '', r.nonce);
    else this.#request(r.typeUrl, r.typeUrl === ENDPOINT_TYPE ? this.eds : r.typeUrl === ROUTE_TYPE ? this.rds : [], [], r.version, r.nonce);
    const at = now();
    for (const watch of watches.values()) {
      if (watch.times[this.index] === undefined && message.includes(watch.marker)) {
        watch.times[this.index] = at;
        watch.left--;
      }
    }
    if (r.typeUrl === CLUSTER_TYPE && r.names.length > 0) {
      this.#follow(ENDPOINT_TYPE, r.names.filter((n) => n.startsWith('outbound|')));
    }
    if (r.typeUrl === LISTENER_TYPE && r.names.length > 0) {
      // Sidecar HTTP listeners 0.0.0.0_PORT use the route config named PORT.
      this.#follow(ROUTE_TYPE, r.names.map((n) => /^0\.0\.0\.0_(\d+)$/.exec(n)?.[1]).filter((n): n is string => n !== undefined));
    }
    this.seen.add(r.typeUrl);
    if (this.seen.size === 4 && this.onSynced) {
      this.onSynced();
      this.onSynced = undefined;
    }
  }

  #follow(typeUrl: typeof ENDPOINT_TYPE | typeof ROUTE_TYPE, wanted: string[]): void {
    const current = typeUrl === ENDPOINT_TYPE ? this.eds : this.rds;
    const have = new Set(current);
    const want = new Set(wanted);
    const subscribe = wanted.filter((n) => !have.has(n));
    const unsubscribe = current.filter((n) => !want.has(n));
    if (subscribe.length === 0 && unsubscribe.length === 0) return;
    if (typeUrl === ENDPOINT_TYPE) this.eds = wanted;
    else this.rds = wanted;
    const last = this.#last.get(typeUrl);
    if (this.#mode === 'delta') this.#request(typeUrl, subscribe, unsubscribe, '', '');
    else this.#request(typeUrl, wanted, [], last?.version ?? '', last?.nonce ?? '');
  }

  close(): void {
    this.#stream.close();
  }
}

const ENVOY_WINDOW = 256 * 1024 * 1024;
const EDS_URL = Buffer.from(ENDPOINT_TYPE);
const RDS_URL = Buffer.from(ROUTE_TYPE);
/** EDS and RDS responses name nothing a client goes on to ask for; their resources need no reading. */
function isFollowed(message: Buffer): boolean {
  // type_url comes after the resources; its 60-odd bytes sit near the end of the message.
  const tail = message.subarray(Math.max(0, message.length - 512));
  return tail.includes(EDS_URL) || tail.includes(RDS_URL);
}

const sessions: http2.ClientHttp2Session[] = [];
let stopping = false;
let closed = 0;
const proxies: Proxy[] = [];
let sink: net.Server | undefined;

function start(message: Extract<ClientMessage, { type: 'start' }>): void {
  const startedAt = now();
  const startCpu = process.cpuUsage();
  let synced = 0;
  for (let i = 0; i < message.proxies; i++) {
    // One connection per proxy, as every Envoy has its own.
    // Envoy's default HTTP/2 windows for its xDS connection: 256 MiB per stream and connection.
    const session = http2.connect(`http://127.0.0.1:${message.port}`, { settings: { initialWindowSize: ENVOY_WINDOW } });
    session.on('connect', () => {
      session.setLocalWindowSize(ENVOY_WINDOW);
    });
    session.on('error', () => undefined);
    session.on('close', () => {
      if (!stopping && closed++ === 0) send({ type: 'failed', message: 'meshpilot closed a light client connection, most likely for a keepalive PING unanswered in time (10 s, or MESHPILOT_BENCH_KEEPALIVE_TIMEOUT_MS) on a busy machine (MESHPILOT_BENCH_LOG=warn shows it)' });
    });
    sessions.push(session);
    const proxy = new Proxy(session, i, message.mode, `ns-${i % message.namespaces}`);
    proxy.onSynced = () => {
      if (++synced === message.proxies) {
        const cpu = process.cpuUsage(startCpu);
        send({ type: 'synced', at: now(), startedAt, bytesReceived, cpuSeconds: (cpu.user + cpu.system) / 1e6 });
      }
    };
    proxies.push(proxy);
  }
}

function watch(message: Extract<ClientMessage, { type: 'watch' }>): void {
  const entry: Watch = { marker: Buffer.from(message.marker), times: new Array<number | undefined>(proxies.length), left: proxies.length };
  watches.set(message.id, entry);
  const deadline = now() + 30_000;
  const poll = setInterval(() => {
    if (entry.left > 0 && now() < deadline) return;
    clearInterval(poll);
    watches.delete(message.id);
    send({ type: 'seen', id: message.id, times: entry.times.filter((t): t is number => t !== undefined), missing: entry.left });
  }, 20);
}

function startSink(message: Extract<ClientMessage, { type: 'sink' }>): void {
  const expected = message.sockets * message.bytesPerSocket;
  let received = 0;
  sink = net.createServer((socket) => {
    socket.on('data', (chunk) => {
      received += chunk.length;
      if (received >= expected && received - chunk.length < expected) send({ type: 'sink-done', at: now() });
    });
  });
  // Room for every socket connecting at once, as the xDS port has for its proxies.
  sink.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => {
    const address = sink?.address();
    send({ type: 'sink-ready', port: typeof address === 'object' && address ? address.port : 0 });
  });
}

process.on('message', (message: ClientMessage) => {
  if (message.type === 'start') start(message);
  else if (message.type === 'watch') watch(message);
  else if (message.type === 'sink') startSink(message);
  else {
    stopping = true;
    for (const p of proxies) p.close();
    for (const s of sessions) s.destroy();
    sink?.close();
    process.exit(0);
  }
});
// The harness is gone: nothing will ask this process for anything again.
process.on('disconnect', () => {
  process.exit(1);
});
