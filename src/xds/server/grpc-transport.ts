// Just enough gRPC over node:http2 for the xDS streams: bidirectional streaming, no compression.
// A response is written as the bytes the connection encoded, which many streams share, behind a
// 5-byte prefix: nothing is copied per stream, so a thousand proxies cost a thousand writes of
// the same buffer, not a thousand copies of it.
import http2 from 'node:http2';
import type { Logger } from 'pino';
import type { Socket } from 'node:net';

/** gRPC status codes used here (grpc/doc/statuscodes.md). */
export const GrpcStatus = {
  OK: 0,
  INVALID_ARGUMENT: 3,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
} as const;

export interface GrpcTransportOptions {
  readonly log: Logger;
  /** PING every idle session this often; a peer that does not answer within the timeout is dropped. */
  readonly keepaliveMs?: number;
  readonly keepaliveTimeoutMs?: number;
  /** Largest request message accepted (a subscription of many thousand names fits easily). */
  readonly maxMessageBytes?: number;
}

/** One bidirectional call. The handler sets `onMessage` and `onClose`. */
export class GrpcCall {
  readonly peer: string;
  readonly path: string;
  onMessage: ((message: Buffer) => void) | undefined;
  onClose: ((reason: string) => void) | undefined;
  readonly #stream: http2.ServerHttp2Stream;
  #status: number = GrpcStatus.OK;
  #statusMessage = '';
  #closed = false;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #need = -1;
  readonly #maxMessageBytes: number;

  constructor(stream: http2.ServerHttp2Stream, path: string, maxMessageBytes: number) {
    this.#stream = stream;
    this.path = path;
    this.#maxMessageBytes = maxMessageBytes;
    const socket = stream.session?.socket;
    this.peer = socket ? `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}` : 'unknown';
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => {
      stream.sendTrailers({ 'grpc-status': String(this.#status), ...(this.#statusMessage ? { 'grpc-message': encodeURIComponent(this.#statusMessage) } : {}) });
    });
    stream.on('data', (chunk: Buffer) => {
      this.#receive(chunk);
    });
    stream.on('end', () => {
      // The client has said all it will: the call ends, as a unary-less xDS stream does.
      this.#close('client closed the stream');
      this.end();
    });
    stream.on('aborted', () => {
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
    return this.#closed || this.#stream.destroyed || this.#stream.closed;
  }

  /** Writes one message; `written` is called once the transport has taken the bytes (or the call is gone). */
  write(message: Buffer, written: () => void): void {
    if (this.closed || !this.#stream.writable) {
      written();
      return;
    }
    const prefix = Buffer.allocUnsafe(5);
    prefix[0] = 0; // not compressed
    prefix.writeUInt32BE(message.length, 1);
    // Two writes in one cork go out as one writev: the shared message buffer itself is handed on.
    this.#stream.cork();
    this.#stream.write(prefix);
    this.#stream.write(message, () => {
      written();
    });
    this.#stream.uncork();
  }

  /** Ends the call with a status; OK is how a server going away tells clients to reconnect elsewhere. */
  end(status: number = GrpcStatus.OK, message = ''): void {
    if (this.#stream.destroyed || this.#stream.writableEnded) return;
    this.#status = status;
    this.#statusMessage = message;
    this.#stream.end();
  }

  #close(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#pending = [];
    this.onClose?.(reason);
  }

  #receive(chunk: Buffer): void {
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.length;
    for (;;) {
      if (this.#need < 0) {
        if (this.#pendingBytes < 5) return;
        const head = (this.#pending[0] as Buffer).length >= 5 ? (this.#pending[0] as Buffer) : Buffer.concat(this.#pending, this.#pendingBytes);
        if (head[0] !== 0) {
          this.#fail(GrpcStatus.UNIMPLEMENTED, 'compressed messages are not supported; send them uncompressed');
          return;
        }
        const length = head.readUInt32BE(1);
        if (length > this.#maxMessageBytes) {
          this.#fail(GrpcStatus.RESOURCE_EXHAUSTED, `message of ${length} bytes is larger than the limit of ${this.#maxMessageBytes}`);
          return;
        }
        this.#need = 5 + length;
      }
      if (this.#pendingBytes < this.#need) return;
      const { message, rest } = takeMessage(this.#pending, this.#need);
      this.#pending = rest;
      this.#pendingBytes -= this.#need;
      this.#need = -1;
      if (this.#closed) return;
      this.onMessage?.(message);
    }
  }

  #fail(status: number, message: string): void {
    this.#pending = [];
    this.#pendingBytes = 0;
    this.end(status, message);
    this.#close(message);
  }
}

// A message that arrived in several chunks is joined here, not in a new buffer: an EDS ACK
// repeats tens of kilobytes of names, and thousands of them would otherwise be garbage. The
// message is read synchronously by the handler (which copies what it keeps), then overwritten.
let scratch = Buffer.allocUnsafe(64 * 1024);

/** The first `need` bytes of `chunks` (a 5-byte prefix and the message) and what follows them. */
function takeMessage(chunks: readonly Buffer[], need: number): { message: Buffer; rest: Buffer[] } {
  const first = chunks[0] as Buffer;
  if (first.length >= need) {
    return { message: first.subarray(5, need), rest: first.length > need ? [first.subarray(need), ...chunks.slice(1)] : chunks.slice(1) };
  }
  if (scratch.length < need) scratch = Buffer.allocUnsafe(Math.max(need, scratch.length * 2));
  let offset = 0;
  const rest: Buffer[] = [];
  for (const chunk of chunks) {
    if (offset === need) {
      rest.push(chunk);
      continue;
    }
    const take = Math.min(chunk.length, need - offset);
    chunk.copy(scratch, offset, 0, take);
    offset += take;
    if (take < chunk.length) rest.push(chunk.subarray(take));
  }
  return { message: scratch.subarray(5, need), rest };
}

export class GrpcTransport {
  readonly #server: http2.Http2Server;
  readonly #handlers = new Map<string, (call: GrpcCall) => void>();
  readonly #sessions = new Set<http2.ServerHttp2Session>();
  /** Every accepted socket, also those whose HTTP/2 session has not started yet. */
  readonly #sockets = new Set<Socket>();
  readonly #options: GrpcTransportOptions;

  constructor(options: GrpcTransportOptions) {
    this.#options = options;
    this.#server = http2.createServer({
      // Many proxies share a connection only behind a proxy; each stream here is one proxy's ADS.
      settings: { maxConcurrentStreams: 1024, initialWindowSize: 1 << 20 },
      // Responses are large (a whole mesh's clusters): room for several in flight per session.
      maxSessionMemory: 64,
    });
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
  handle(path: string, handler: (call: GrpcCall) => void): void {
    this.#handlers.set(path, handler);
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

  /** Stops accepting and drops every session (calls should have been ended first). */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => {
      this.#server.close(() => {
        resolve();
      });
    });
    for (const session of this.#sessions) session.destroy();
    // A connection accepted just before close may have no session yet; it must not hold close open.
    for (const socket of this.#sockets) socket.destroy();
    await closed;
  }

  #track(session: http2.ServerHttp2Session): void {
    this.#sessions.add(session);
    session.on('error', () => undefined); // reported per stream; a broken session just goes away
    // A connection-level window as large as a stream's, so many streams' ACKs never wait on it.
    try {
      session.setLocalWindowSize(8 << 20);
    } catch {
      // a session that is already closing
    }
    const keepaliveMs = this.#options.keepaliveMs ?? 30_000;
    const timeoutMs = this.#options.keepaliveTimeoutMs ?? 10_000;
    let timeout: NodeJS.Timeout | undefined;
    const keepalive = setInterval(() => {
      if (session.destroyed || timeout) return;
      timeout = setTimeout(() => {
        this.#options.log.warn({ code: 'MP_XDS_KEEPALIVE' }, 'MP_XDS_KEEPALIVE: a peer did not answer a keepalive PING in time; its connection is closed');
        session.destroy();
      }, timeoutMs);
      const sent = session.ping(() => {
        clearTimeout(timeout);
        timeout = undefined;
      });
      if (!sent) {
        clearTimeout(timeout);
        timeout = undefined;
      }
    }, keepaliveMs);
    keepalive.unref();
    session.on('close', () => {
      clearInterval(keepalive);
      clearTimeout(timeout);
      this.#sessions.delete(session);
    });
  }

  #route(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    const path = headers[':path'] ?? '';
    const contentType = headers['content-type'] ?? '';
    if (headers[':method'] !== 'POST' || !contentType.startsWith('application/grpc')) {
      stream.respond({ ':status': 415, 'content-type': 'text/plain' });
      stream.end('this port speaks gRPC (xDS); the admin API is on the admin port\n');
      return;
    }
    const handler = this.#handlers.get(path);
    if (!handler) {
      // Trailers-only response: status in the headers, no body.
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(GrpcStatus.UNIMPLEMENTED), 'grpc-message': encodeURIComponent(`unknown method ${path}`) }, { endStream: true });
      return;
    }
    handler(new GrpcCall(stream, path, this.#options.maxMessageBytes ?? 64 << 20));
  }
}
