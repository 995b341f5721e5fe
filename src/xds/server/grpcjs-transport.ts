// The xDS services over @grpc/grpc-js (`--xds-transport=grpc-js`), behind the same seam as the
// hand-written transport, so the two can be compared on the same load. Methods are registered
// with identity (de)serializers: a request arrives as its bytes, a response is handed over as
// the buffer the connection encoded. grpc-js then frames every message into a new buffer of its
// own (the 5-byte prefix and a copy of the message), once per stream: a response shared by N
// streams costs N copies, held until each stream has written it, which the shared write budget
// (it counts a shared buffer once) does not see.
import * as grpc from '@grpc/grpc-js';
import type { GrpcTransportOptions, HandlerOptions, TransportLimits, TransportStats } from './grpc-transport.ts';
import { DEFAULT_TRANSPORT_LIMITS, GrpcStatus } from './grpc-transport.ts';
import { StreamAdmission } from './stream-admission.ts';
import type { XdsCall, XdsTransport } from './transport.ts';

type Stream = grpc.ServerDuplexStream<Buffer, Buffer>;

const identity = (bytes: Buffer): Buffer => bytes;

/** The transport's bounds as grpc-js server options, where grpc-js has one. */
function serverOptions(limits: TransportLimits): grpc.ServerOptions {
  return {
    'grpc.max_receive_message_length': limits.maxMessageBytes,
    'grpc.max_send_message_length': -1,
    'grpc.max_concurrent_streams': limits.maxStreamsPerConnection,
    ...(limits.maxConnectionAgeMs > 0 ? { 'grpc.max_connection_age_ms': limits.maxConnectionAgeMs, 'grpc.max_connection_age_grace_ms': limits.drainGraceMs } : {}),
    'grpc.keepalive_time_ms': limits.keepaliveMs,
    'grpc.keepalive_timeout_ms': limits.keepaliveTimeoutMs,
    // As the hand-written transport: room for several large responses in flight per connection.
    'grpc-node.max_session_memory': 64,
    // Channelz keeps per-call records; the hand-written transport keeps none either.
    'grpc.enable_channelz': 0,
  };
}

/** One grpc-js bidirectional call, as the xDS services use a call. */
class GrpcJsCall implements XdsCall {
  readonly peer: string;
  onMessage: ((message: Buffer) => void) | undefined;
  onClose: ((reason: string) => void) | undefined;
  readonly #stream: Stream;
  /** `written` of writes grpc-js has not finished: it drops them when its stream goes, so they run on close. */
  readonly #unwritten = new Set<() => void>();
  #closed = false;
  #ended = false;

  constructor(stream: Stream) {
    this.#stream = stream;
    this.peer = stream.getPeer();
    stream.on('data', (message: Buffer) => {
      if (!this.#ended && !this.#closed) this.onMessage?.(message);
    });
    stream.on('end', () => {
      // The client has said all it will: the call ends, as an xDS stream does.
      this.#close('client closed the stream');
      this.end();
    });
    // grpc-js says 'cancelled' when its HTTP/2 stream has closed, whoever closed it.
    stream.on('cancelled', () => {
      this.#close('stream cancelled');
    });
    stream.on('error', (error: Error) => {
      this.#close(error.message);
    });
    stream.on('close', () => {
      this.#close('stream closed');
    });
  }

  get closed(): boolean {
    return this.#closed || this.#stream.cancelled || this.#stream.destroyed;
  }

  write(message: Buffer | readonly Buffer[], written: () => void): void {
    if (this.closed || this.#stream.writableEnded) {
      written();
      return;
    }
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      this.#unwritten.delete(finish);
      written();
    };
    this.#unwritten.add(finish);
    // grpc-js takes one Buffer per message (then frames it into a copy of its own): the pieces are
    // joined per stream, as a grpc-js server encoding each stream's response with its nonce would.
    this.#stream.write(Buffer.isBuffer(message) ? message : Buffer.concat(message), finish);
  }

  end(status: number = GrpcStatus.OK, message = ''): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#stream.destroyed || this.#stream.writableEnded) return;
    if (status === GrpcStatus.OK) {
      this.#stream.end();
      return;
    }
    // grpc-js's way to end a streaming call with a status: after what was written, the trailers.
    this.#stream.emit('error', Object.assign(new Error(message), { code: status, details: message }));
  }

  /**
   * grpc-js cannot reset one stream (its HTTP/2 stream is not reachable): the call ends with
   * UNAVAILABLE, which the client gets only once it has read what was written before.
   */
  reset(): void {
    this.end(GrpcStatus.UNAVAILABLE, 'the proxy stopped reading; reconnect');
  }

  #close(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const finish of [...this.#unwritten]) finish();
    this.onClose?.(reason);
  }
}

export class GrpcJsTransport implements XdsTransport {
  readonly #server: grpc.Server;
  readonly #limits: TransportLimits;
  readonly #admission: StreamAdmission;
  readonly #calls = new Set<GrpcJsCall>();
  #refusedByRate = 0;

  constructor(options: GrpcTransportOptions) {
    if (options.tls) throw new Error('the grpc-js xDS transport serves the plaintext port only');
    this.#limits = { ...DEFAULT_TRANSPORT_LIMITS, ...options.limits };
    this.#admission = new StreamAdmission(this.#limits.streamsPerSecond, this.#limits.streamBurst);
    this.#server = new grpc.Server(serverOptions(this.#limits));
  }

  handle(path: string, handler: (call: XdsCall) => void, options: HandlerOptions = {}): void {
    const rateLimited = options.rateLimited ?? true;
    this.#server.register<Buffer, Buffer>(path, (stream: Stream) => {
      if (rateLimited && !this.#admission.admit()) {
        this.#refusedByRate++;
        stream.emit('error', Object.assign(new Error('too many new xDS streams right now; retry with backoff'), { code: GrpcStatus.UNAVAILABLE }));
        return;
      }
      const call = new GrpcJsCall(stream);
      this.#calls.add(call);
      stream.once('close', () => this.#calls.delete(call));
      stream.once('cancelled', () => this.#calls.delete(call));
      handler(call);
    }, identity, identity, 'bidi');
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
      this.#server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (error, bound) => {
        if (error) reject(error);
        else resolve(bound);
      });
    });
  }

  /** GOAWAY to every connection (grpc-js's graceful shutdown), every call ends with OK, and whatever is left goes after `graceMs`. */
  async close(graceMs = this.#limits.drainGraceMs): Promise<void> {
    const shutdown = new Promise<void>((resolve) => {
      this.#server.tryShutdown(() => {
        resolve();
      });
    });
    for (const call of this.#calls) call.end(GrpcStatus.OK, 'meshpilot is shutting down; reconnect');
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => {
        resolve('late');
      }, graceMs);
    });
    if ((await Promise.race([shutdown, late])) === 'late') this.#server.forceShutdown();
    clearTimeout(timer);
  }

  /** grpc-js counts none of what the hand-written transport counts, except what is refused here. */
  stats(): TransportStats {
    return {
      bufferedBytes: 0,
      discardedBytes: 0,
      compressedMessages: 0,
      refusedMessages: new Map(),
      sessionErrors: 0,
      refusedStreams: new Map([['rate', this.#refusedByRate]]),
      tooManyPings: 0,
      maxAgeGoaways: 0,
      // A connection is one peer address; those with a call open.
      connections: new Set([...this.#calls].map((call) => call.peer)).size,
      scratchBytes: 0,
    };
  }
}

export function createGrpcJsTransport(options: GrpcTransportOptions): XdsTransport {
  return new GrpcJsTransport(options);
}
