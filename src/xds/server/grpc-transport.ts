// Just enough gRPC over node:http2 for the xDS streams, bounded under abuse. Per connection: a
// stream limit advertised in SETTINGS, a cap on the bytes of unfinished messages across its
// streams, keepalive PINGs both ways (a peer that floods PINGs is told to calm down, as grpc-go
// does), and a maximum age after which it is sent GOAWAY so proxies spread over new replicas.
// Per server: a rate of new streams, and a drain on close (GOAWAY first, then streams end).
// A response is written as the bytes the connection encoded, shared by many streams: nothing
// is copied per stream (see GrpcCall.write).
import http2 from 'node:http2';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { CallLimits, ReceiveBudget, ReceiveCounters } from './grpc-call.ts';
import { GrpcCall, GrpcStatus, Scratch, encodeGrpcMessage } from './grpc-call.ts';
import { StreamAdmission } from './stream-admission.ts';
import type { XdsTransport } from './transport.ts';

export { GrpcCall, GrpcStatus } from './grpc-call.ts';
export type { PeerCertificate } from './grpc-call.ts';

export interface TransportLimits {
  /** Largest request message, compressed or not (a subscription of many thousand names fits easily). */
  readonly maxMessageBytes: number;
  /** Bytes of unfinished messages one connection may hold across its streams. */
  readonly maxConnectionBufferBytes: number;
  /** Streams one connection may have open, advertised in SETTINGS. */
  readonly maxStreamsPerConnection: number;
  /** A message that has started arriving must complete within this long. */
  readonly messageTimeoutMs: number;
  /** A connection is sent GOAWAY after this long, ±10% (0: never). */
  readonly maxConnectionAgeMs: number;
  /** How long streams of a connection being closed have to end before it is dropped. */
  readonly drainGraceMs: number;
  /** New streams admitted per second across the server, and the burst above it (0: no limit). */
  readonly streamsPerSecond: number;
  readonly streamBurst: number;
  /** A client PING sooner than this after the previous one, with nothing sent between, is a strike. */
  readonly minPingIntervalMs: number;
  /** PING every idle connection this often; a peer that does not answer within the timeout is dropped. */
  readonly keepaliveMs: number;
  readonly keepaliveTimeoutMs: number;
}

export const DEFAULT_TRANSPORT_LIMITS: TransportLimits = {
  maxMessageBytes: 4 << 20,
  maxConnectionBufferBytes: 64 << 20,
  maxStreamsPerConnection: 128,
  messageTimeoutMs: 30_000,
  maxConnectionAgeMs: 30 * 60_000,
  drainGraceMs: 2000,
  streamsPerSecond: 0,
  streamBurst: 0,
  // Istio's enforcement policy: Envoy's xDS keepalive PINGs every 30 s are welcome.
  minPingIntervalMs: 15_000,
  keepaliveMs: 30_000,
  keepaliveTimeoutMs: 10_000,
};

/** grpc-go: more than this many PING strikes and the connection is told ENHANCE_YOUR_CALM. */
const MAX_PING_STRIKES = 2;

/** A TLS server's certificate (PEM, leaf first), its key, and the roots client certificates are checked against. */
export interface TransportTls {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
}

export interface GrpcTransportOptions {
  readonly log: Logger;
  readonly limits?: Partial<TransportLimits>;
  /** Serve TLS (h2 by ALPN), asking for a client certificate without requiring one. */
  readonly tls?: TransportTls;
}

export interface HandlerOptions {
  /** Counted against the server's rate of new streams (false for cheap unary calls). */
  readonly rateLimited?: boolean;
}

/** What the transport counts, for /metrics and tests. */
export interface TransportStats extends ReceiveCounters {
  readonly sessionErrors: number;
  /** New streams not served, by why: over the rate, the connection draining. */
  readonly refusedStreams: ReadonlyMap<'rate' | 'draining', number>;
  readonly tooManyPings: number;
  readonly maxAgeGoaways: number;
  readonly connections: number;
  /** The scratch space joining messages that arrived in pieces. */
  readonly scratchBytes: number;
}

interface SessionState {
  readonly calls: Set<GrpcCall>;
  readonly budget: ReceiveBudget;
  draining: boolean;
  pingStrikes: number;
  lastPingAt: number | undefined;
}

export class GrpcTransport implements XdsTransport<GrpcCall> {
  readonly #server: http2.Http2Server | http2.Http2SecureServer;
  readonly #handlers = new Map<string, { handler: (call: GrpcCall) => void; rateLimited: boolean }>();
  readonly #sessions = new Map<http2.ServerHttp2Session, SessionState>();
  readonly #sockets = new Set<Socket>();
  readonly #log: Logger;
  readonly #limits: TransportLimits;
  readonly #callLimits: CallLimits;
  readonly #scratch = new Scratch();
  readonly #counters: ReceiveCounters = { bufferedBytes: 0, discardedBytes: 0, compressedMessages: 0, refusedMessages: new Map() };
  readonly #refused = new Map<'rate' | 'draining', number>();
  #sessionErrors = 0;
  #tooManyPings = 0;
  #maxAgeGoaways = 0;
  readonly #admission: StreamAdmission;

  constructor(options: GrpcTransportOptions) {
    this.#log = options.log;
    this.#limits = { ...DEFAULT_TRANSPORT_LIMITS, ...options.limits };
    this.#callLimits = { maxMessageBytes: this.#limits.maxMessageBytes, messageTimeoutMs: this.#limits.messageTimeoutMs };
    this.#admission = new StreamAdmission(this.#limits.streamsPerSecond, this.#limits.streamBurst);
    const http2Options: http2.ServerOptions = {
      // Each stream is one proxy's ADS; many share a connection only behind a proxy. Past the
      // limit, node:http2 refuses a stream with REFUSED_STREAM until the client has acknowledged
      // the SETTINGS, and treats it as a connection error after.
      settings: { maxConcurrentStreams: this.#limits.maxStreamsPerConnection, initialWindowSize: 1 << 20 },
      // Responses are large (a whole mesh's clusters): room for several in flight per session.
      maxSessionMemory: 64,
    };
    this.#server = options.tls
      ? http2.createSecureServer({ ...http2Options, ...options.tls, minVersion: 'TLSv1.2', requestCert: true, rejectUnauthorized: false })
      : http2.createServer(http2Options);
    // The raw sockets, so close() can end a connection whose peer never finishes a graceful close.
    this.#server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
    this.#server.on('session', (session) => {
      this.#track(session);
    });
    this.#server.on('stream', (stream, headers) => {
      this.#route(stream, headers);
    });
  }

  /** Registers the handler for `/package.Service/Method`. */
  handle(path: string, handler: (call: GrpcCall) => void, options: HandlerOptions = {}): void {
    this.#handlers.set(path, { handler, rateLimited: options.rateLimited ?? true });
  }

  /** Serves new connections with another certificate (a renewal); open connections keep theirs. */
  setTls(tls: TransportTls): void {
    if (!('setSecureContext' in this.#server)) throw new Error('this transport serves plaintext');
    this.#server.setSecureContext({ ...tls, minVersion: 'TLSv1.2' });
  }

  stats(): TransportStats {
    return {
      ...this.#counters,
      sessionErrors: this.#sessionErrors,
      refusedStreams: this.#refused,
      tooManyPings: this.#tooManyPings,
      maxAgeGoaways: this.#maxAgeGoaways,
      connections: this.#sessions.size,
      scratchBytes: this.#scratch.size,
    };
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (error: Error): void => {
        reject(error);
      };
      this.#server.once('error', onError);
      // A backlog for thousands of proxies reconnecting at once (a replica going away).
      this.#server.listen({ host, port, backlog: 4096 }, () => {
        this.#server.off('error', onError);
        const address = this.#server.address();
        resolve(typeof address === 'object' && address ? address.port : port);
      });
    });
  }

  /** Listens on a Unix socket (the agent's SDS server); the caller removes a stale socket first. */
  listenPath(path: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen({ path }, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
  }

  /**
   * Stops accepting, sends every connection GOAWAY, then ends its streams with OK (clients
   * reconnect, to another replica); connections still open after `graceMs` are dropped.
   */
  async close(graceMs = this.#limits.drainGraceMs): Promise<void> {
    const closed = new Promise<void>((resolve) => {
      this.#server.close(() => {
        resolve();
      });
    });
    for (const session of this.#sessions.keys()) this.#drain(session, GrpcStatus.OK, 'meshpilot is shutting down; reconnect');
    const deadline = Date.now() + graceMs;
    while (this.#sessions.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    for (const session of this.#sessions.keys()) session.destroy();
    for (const socket of this.#sockets) socket.destroy();
    await closed;
  }

  /** GOAWAY (no new streams), then every stream of the session ends with `status`; dropped after the grace. */
  #drain(session: http2.ServerHttp2Session, status: number, message: string): void {
    const state = this.#sessions.get(session);
    if (!state || state.draining) return;
    state.draining = true;
    if (!session.closed && !session.destroyed) session.close();
    for (const call of state.calls) call.end(status, message);
    setTimeout(() => {
      if (!session.destroyed) session.destroy();
    }, this.#limits.drainGraceMs).unref();
  }

  #track(session: http2.ServerHttp2Session): void {
    const state: SessionState = { calls: new Set(), budget: { bytes: 0, limit: this.#limits.maxConnectionBufferBytes, sentSincePing: false }, draining: false, pingStrikes: 0, lastPingAt: undefined };
    this.#sessions.set(session, state);
    let errorLogged = false;
    session.on('error', (error: Error) => {
      // Counted every time, logged once per connection: a broken peer must not flood the log.
      this.#sessionErrors++;
      if (errorLogged) return;
      errorLogged = true;
      this.#log.warn({ code: 'MP_XDS_SESSION_ERROR', err: error.message }, 'MP_XDS_SESSION_ERROR: an xDS connection failed; its streams end and its proxies reconnect');
    });
    session.on('ping', () => {
      this.#onPing(session, state);
    });
    // A connection-level window as large as a stream's, so many streams' ACKs never wait on it.
    try {
      session.setLocalWindowSize(8 << 20);
    } catch {
      // a session that is already closing
    }
    const stopKeepalive = this.#keepalive(session);
    const age = this.#limits.maxConnectionAgeMs;
    const ageTimer = age > 0
      ? setTimeout(() => {
          this.#maxAgeGoaways++;
          this.#drain(session, GrpcStatus.OK, 'connection reached its maximum age; reconnect');
        }, age * (0.9 + Math.random() * 0.2))
      : undefined;
    ageTimer?.unref();
    session.on('close', () => {
      stopKeepalive();
      clearTimeout(ageTimer);
      this.#sessions.delete(session);
    });
  }

  /** grpc-go's enforcement: PINGs more often than allowed, with nothing sent between, are strikes. */
  #onPing(session: http2.ServerHttp2Session, state: SessionState): void {
    const now = performance.now();
    if (state.budget.sentSincePing) {
      state.budget.sentSincePing = false;
      state.pingStrikes = 0;
    } else if (state.lastPingAt !== undefined && now - state.lastPingAt < this.#limits.minPingIntervalMs) {
      state.pingStrikes++;
    }
    state.lastPingAt = now;
    if (state.pingStrikes <= MAX_PING_STRIKES || state.draining) return;
    this.#tooManyPings++;
    this.#log.warn({ code: 'MP_XDS_TOO_MANY_PINGS' }, 'MP_XDS_TOO_MANY_PINGS: a peer sent PINGs more often than allowed; its connection is closed');
    // The debug data grpc clients look for to slow their keepalive down.
    session.goaway(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM, 0, Buffer.from('too_many_pings'));
    this.#drain(session, GrpcStatus.UNAVAILABLE, 'too many pings');
  }

  #keepalive(session: http2.ServerHttp2Session): () => void {
    let timeout: NodeJS.Timeout | undefined;
    const interval = setInterval(() => {
      if (session.destroyed || timeout) return;
      timeout = setTimeout(() => {
        this.#log.warn({ code: 'MP_XDS_KEEPALIVE' }, 'MP_XDS_KEEPALIVE: a peer did not answer a keepalive PING in time; its connection is closed');
        session.destroy();
      }, this.#limits.keepaliveTimeoutMs);
      const sent = session.ping(() => {
        clearTimeout(timeout);
        timeout = undefined;
      });
      if (!sent) {
        clearTimeout(timeout);
        timeout = undefined;
      }
    }, this.#limits.keepaliveMs);
    interval.unref();
    return () => {
      clearInterval(interval);
      clearTimeout(timeout);
    };
  }

  #route(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    const state = this.#sessions.get(stream.session as http2.ServerHttp2Session);
    if (!state || state.draining) {
      // Arrived as GOAWAY went out: the client retries it on another connection.
      this.#refused.set('draining', (this.#refused.get('draining') ?? 0) + 1);
      stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    const path = headers[':path'] ?? '';
    const contentType = headers['content-type'] ?? '';
    if (headers[':method'] !== 'POST' || !contentType.startsWith('application/grpc')) {
      stream.respond({ ':status': 415, 'content-type': 'text/plain' });
      stream.end('this port speaks gRPC (xDS); the admin API is on the admin port\n');
      return;
    }
    const route = this.#handlers.get(path);
    if (!route) {
      trailersOnly(stream, GrpcStatus.UNIMPLEMENTED, `unknown method ${path.slice(0, 200)}`);
      return;
    }
    if (route.rateLimited && !this.#admission.admit()) {
      this.#refused.set('rate', (this.#refused.get('rate') ?? 0) + 1);
      trailersOnly(stream, GrpcStatus.UNAVAILABLE, 'too many new xDS streams right now; retry with backoff');
      return;
    }
    const call = new GrpcCall(stream, headers, { limits: this.#callLimits, budget: state.budget, counters: this.#counters, scratch: this.#scratch });
    state.calls.add(call);
    stream.on('close', () => {
      state.calls.delete(call);
    });
    route.handler(call);
  }
}

/** A response that is only a status: in the headers, no body, and the stream reset if the client is still sending. */
function trailersOnly(stream: http2.ServerHttp2Stream, status: number, message: string): void {
  stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(status), 'grpc-message': encodeGrpcMessage(message) }, { endStream: true });
  if (!stream.readableEnded) stream.close(http2.constants.NGHTTP2_NO_ERROR);
}
