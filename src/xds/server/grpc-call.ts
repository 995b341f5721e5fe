// One gRPC call on one HTTP/2 stream: length-prefixed messages in, each bounded in size and in
// time, optionally compressed; messages out as the shared buffers they are; a status in the
// trailers. A call that ends with an error stops reading: the stream is reset after the
// trailers (as grpc-go does) and whatever else arrives is dropped, never buffered.
import type { X509Certificate } from 'node:crypto';
import http2 from 'node:http2';
import type { TLSSocket } from 'node:tls';
import zlib from 'node:zlib';

/** gRPC status codes used here (grpc/doc/statuscodes.md). */
export const GrpcStatus = {
  OK: 0,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

/** The client certificate a TLS peer presented, and whether it chains to the server's trusted roots. */
export interface PeerCertificate {
  readonly certificate: X509Certificate;
  readonly authorized: boolean;
  readonly authorizationError?: string;
}

/** Request compressions read (grpc/doc/compression.md); responses are sent uncompressed. */
export const ACCEPT_ENCODING = 'identity,deflate,gzip';

/** What one connection's calls share: the bytes of half-received messages across its streams. */
export interface ReceiveBudget {
  bytes: number;
  readonly limit: number;
  /** Set when a call writes, so a PING after it is not counted as a strike (grpc-go's policy). */
  sentSincePing: boolean;
}

/** Counters kept for /metrics and tests, one set per transport. */
export interface ReceiveCounters {
  /** Bytes of half-received messages held right now, across every connection. */
  bufferedBytes: number;
  /** Bytes dropped because their call had already ended with an error. */
  discardedBytes: number;
  /** Messages that arrived compressed (gzip or deflate). */
  compressedMessages: number;
  /** Calls ended because of what the client sent (too large, bad compression, too slow), by status. */
  readonly refusedMessages: Map<number, number>;
}

export interface CallLimits {
  readonly maxMessageBytes: number;
  /** A message whose first bytes arrived this long ago and is still incomplete ends the call. */
  readonly messageTimeoutMs: number;
}

/** Scratch space to join a message that arrived in pieces, reused across calls up to a bound. */
export class Scratch {
  #buffer = Buffer.allocUnsafe(64 * 1024);
  /** Larger messages get a buffer of their own, released with them. */
  static readonly MAX_BYTES = 1 << 20;

  get(size: number): Buffer {
    if (size > Scratch.MAX_BYTES) return Buffer.allocUnsafe(size);
    if (this.#buffer.length < size) this.#buffer = Buffer.allocUnsafe(Math.min(Scratch.MAX_BYTES, Math.max(size, this.#buffer.length * 2)));
    return this.#buffer;
  }

  get size(): number {
    return this.#buffer.length;
  }
}

/**
 * grpc-message as the gRPC HTTP/2 spec encodes it: UTF-8 bytes outside 0x20-0x7E, and `%`,
 * percent-encoded; everything else as it is (clients decode with decodeURI, which would leave
 * an encoded `:` or `,` as it was sent).
 */
export function encodeGrpcMessage(message: string): string {
  let out = '';
  for (const byte of Buffer.from(message, 'utf8')) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** `grpc-timeout` (an integer of at most 8 digits and a unit) in milliseconds. */
export function parseGrpcTimeout(value: string | undefined): number | undefined {
  const match = value === undefined ? null : /^(\d{1,8})([HMSmun])$/.exec(value);
  if (!match) return undefined;
  const unitMs = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000_001 }[match[2] as 'H' | 'M' | 'S' | 'm' | 'u' | 'n'];
  return Number(match[1]) * unitMs;
}

/** One bidirectional call. The handler sets `onMessage` and `onClose`. */
export class GrpcCall {
  readonly peer: string;
  readonly path: string;
  readonly headers: http2.IncomingHttpHeaders;
  /** Unary calls answer after the client's half-close; streams (xDS) end with it. */
  endsWithClient = true;
  /** Called when the client has sent all it will, for calls that do not end with it. */
  onHalfClose: (() => void) | undefined;
  onMessage: ((message: Buffer) => void) | undefined;
  onClose: ((reason: string) => void) | undefined;
  readonly #stream: http2.ServerHttp2Stream;
  readonly #limits: CallLimits;
  readonly #budget: ReceiveBudget;
  readonly #counters: ReceiveCounters;
  readonly #scratch: Scratch;
  readonly #encoding: string;
  #status: number = GrpcStatus.OK;
  #statusMessage = '';
  #closed = false;
  #clientDone = false;
  #discarding = false;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #need = -1;
  #compressed = false;
  #messageTimer: NodeJS.Timeout | undefined;
  #deadline: NodeJS.Timeout | undefined;

  constructor(
    stream: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
    shared: { limits: CallLimits; budget: ReceiveBudget; counters: ReceiveCounters; scratch: Scratch },
  ) {
    this.#stream = stream;
    this.path = headers[':path'] ?? '';
    this.headers = headers;
    this.#limits = shared.limits;
    this.#budget = shared.budget;
    this.#counters = shared.counters;
    this.#scratch = shared.scratch;
    this.#encoding = String(headers['grpc-encoding'] ?? 'identity').toLowerCase();
    const socket = stream.session?.socket;
    this.peer = socket ? `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}` : 'unknown';
    stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-accept-encoding': ACCEPT_ENCODING }, { waitForTrailers: true });
    stream.on('wantTrailers', () => {
      stream.sendTrailers({ 'grpc-status': String(this.#status), ...(this.#statusMessage ? { 'grpc-message': encodeGrpcMessage(this.#statusMessage) } : {}) });
      // A client still sending learns the call is over and stops (RST_STREAM NO_ERROR): on the next
      // turn, once the trailers are on their way (a reset submitted with them would drop them).
      if (!this.#clientDone) {
        setImmediate(() => {
          if (!stream.closed) stream.close(http2.constants.NGHTTP2_NO_ERROR);
        });
      }
    });
    stream.on('data', (chunk: Buffer) => {
      this.#receive(chunk);
    });
    stream.on('end', () => {
      this.#clientDone = true;
      if (!this.endsWithClient) {
        this.onHalfClose?.();
        return;
      }
      // The client has said all it will: the call ends, as an xDS stream does.
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
    const timeoutMs = parseGrpcTimeout(headers['grpc-timeout'] as string | undefined);
    if (timeoutMs !== undefined) {
      this.#deadline = setTimeout(() => {
        this.#fail(GrpcStatus.DEADLINE_EXCEEDED, 'the deadline set by grpc-timeout has passed', false);
      }, Math.max(0, Math.ceil(timeoutMs)));
    }
  }

  get closed(): boolean {
    return this.#closed || this.#stream.destroyed || this.#stream.closed;
  }

  /** The client's certificate on a TLS connection that presented one. */
  peerCertificate(): PeerCertificate | undefined {
    const socket = this.#stream.session?.socket as Partial<TLSSocket> | undefined;
    const certificate = socket?.getPeerX509Certificate?.();
    if (!socket || !certificate) return undefined;
    const error = socket.authorizationError;
    return { certificate, authorized: socket.authorized === true, ...(error !== undefined ? { authorizationError: String(error) } : {}) };
  }

  /** Bytes of a half-received message this call holds. */
  get bufferedBytes(): number {
    return this.#pendingBytes;
  }

  /**
   * Writes one message, whole or in pieces (a body shared by many streams, then this stream's own
   * bytes): the pieces are handed on as they are, never joined. `written` is called once the
   * transport has taken them (or the call is gone).
   */
  write(message: Buffer | readonly Buffer[], written: () => void): void {
    if (this.closed || !this.#stream.writable) {
      written();
      return;
    }
    this.#budget.sentSincePing = true;
    const pieces = Buffer.isBuffer(message) ? [message] : message;
    let length = 0;
    for (const piece of pieces) length += piece.length;
    const prefix = Buffer.allocUnsafe(5);
    prefix[0] = 0; // not compressed
    prefix.writeUInt32BE(length, 1);
    // Writes in one cork go out as one writev: the shared buffers themselves are handed on.
    this.#stream.cork();
    this.#stream.write(prefix);
    pieces.forEach((piece, i) => {
      if (i < pieces.length - 1) this.#stream.write(piece);
      else
        this.#stream.write(piece, () => {
          written();
        });
    });
    this.#stream.uncork();
  }

  /** Ends the call with a status (nothing more is read); OK is how a server going away tells clients to reconnect elsewhere. */
  end(status: number = GrpcStatus.OK, message = ''): void {
    this.#discarding = true;
    this.#release();
    if (this.#stream.destroyed || this.#stream.writableEnded) return;
    this.#status = status;
    this.#statusMessage = message;
    this.#stream.end();
  }

  /** Drops the stream at once with RST_STREAM CANCEL, unwritten data included: for a peer that stopped reading. */
  reset(): void {
    this.#discarding = true;
    this.#release();
    if (!this.#stream.destroyed && !this.#stream.closed) this.#stream.close(http2.constants.NGHTTP2_CANCEL);
  }

  #close(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#release();
    clearTimeout(this.#deadline);
    this.onClose?.(reason);
  }

  /** Gives back what the half-received message held to the connection's and the transport's counts. */
  #release(): void {
    this.#budget.bytes -= this.#pendingBytes;
    this.#counters.bufferedBytes -= this.#pendingBytes;
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#need = -1;
    clearTimeout(this.#messageTimer);
    this.#messageTimer = undefined;
  }

  #receive(chunk: Buffer): void {
    if (this.#stopped()) {
      this.#counters.discardedBytes += chunk.length;
      return;
    }
    if (this.#budget.bytes + chunk.length > this.#budget.limit) {
      this.#counters.discardedBytes += chunk.length;
      this.#fail(GrpcStatus.RESOURCE_EXHAUSTED, `this connection holds ${this.#budget.limit} bytes of unfinished messages, its limit`);
      return;
    }
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.length;
    this.#budget.bytes += chunk.length;
    this.#counters.bufferedBytes += chunk.length;
    while (!this.#stopped()) {
      if (this.#need < 0) {
        if (this.#pendingBytes < 5) break;
        const head = (this.#pending[0] as Buffer).length >= 5 ? (this.#pending[0] as Buffer) : Buffer.concat(this.#pending, this.#pendingBytes);
        if (!this.#acceptCompression(head[0] as number)) return;
        const length = head.readUInt32BE(1);
        if (length > this.#limits.maxMessageBytes) {
          this.#fail(GrpcStatus.RESOURCE_EXHAUSTED, `message of ${length} bytes is larger than the limit of ${this.#limits.maxMessageBytes}`);
          return;
        }
        this.#compressed = head[0] === 1;
        this.#need = 5 + length;
      }
      if (this.#pendingBytes < this.#need) break;
      const need = this.#need;
      const { message, rest } = takeMessage(this.#pending, need, this.#scratch);
      this.#pending = rest;
      this.#pendingBytes -= need;
      this.#budget.bytes -= need;
      this.#counters.bufferedBytes -= need;
      this.#need = -1;
      clearTimeout(this.#messageTimer);
      this.#messageTimer = undefined;
      const plain = this.#compressed ? this.#decompress(message) : message;
      if (!plain) return;
      this.onMessage?.(plain);
    }
    if (this.#pendingBytes > 0 && !this.#messageTimer && !this.#stopped()) {
      this.#messageTimer = setTimeout(() => {
        this.#fail(GrpcStatus.RESOURCE_EXHAUSTED, `a message was not completed within ${this.#limits.messageTimeoutMs} ms`);
      }, this.#limits.messageTimeoutMs);
    }
  }

  /** A call that has ended reads nothing more (a method, so a handler ending it mid-loop is seen). */
  #stopped(): boolean {
    return this.#discarding || this.#closed;
  }

  /** grpc/doc/compression.md: a compressed message needs a grpc-encoding the server reads. */
  #acceptCompression(flag: number): boolean {
    if (flag === 0) return true;
    if (flag !== 1) {
      this.#fail(GrpcStatus.INTERNAL, `message flag ${flag} is not a gRPC compressed flag (0 or 1)`);
      return false;
    }
    if (this.#encoding === 'identity') {
      this.#fail(GrpcStatus.INTERNAL, 'a message is marked compressed but the call has no grpc-encoding');
      return false;
    }
    if (this.#encoding !== 'gzip' && this.#encoding !== 'deflate') {
      this.#fail(GrpcStatus.UNIMPLEMENTED, `grpc-encoding ${this.#encoding.slice(0, 40)} is not supported; use one of ${ACCEPT_ENCODING}`);
      return false;
    }
    return true;
  }

  /** The message uncompressed, bounded like any other; undefined when the call ended instead. */
  #decompress(message: Buffer): Buffer | undefined {
    const options = { maxOutputLength: this.#limits.maxMessageBytes };
    this.#counters.compressedMessages++;
    try {
      return this.#encoding === 'gzip' ? zlib.gunzipSync(message, options) : zlib.inflateSync(message, options);
    } catch (error) {
      if (error instanceof RangeError) {
        this.#fail(GrpcStatus.RESOURCE_EXHAUSTED, `a decompressed message is larger than the limit of ${this.#limits.maxMessageBytes} bytes`);
      } else {
        this.#fail(GrpcStatus.INTERNAL, `a message could not be decompressed with ${this.#encoding}`);
      }
      return undefined;
    }
  }

  /** Ends the call with an error status and reads nothing more from it. */
  #fail(status: number, message: string, counted = true): void {
    if (counted) this.#counters.refusedMessages.set(status, (this.#counters.refusedMessages.get(status) ?? 0) + 1);
    this.end(status, message);
    this.#close(message);
  }
}

/** The first `need` bytes of `chunks` (a 5-byte prefix and the message) and what follows them. */
function takeMessage(chunks: readonly Buffer[], need: number, scratch: Scratch): { message: Buffer; rest: Buffer[] } {
  const first = chunks[0] as Buffer;
  if (first.length >= need) {
    return { message: first.subarray(5, need), rest: first.length > need ? [first.subarray(need), ...chunks.slice(1)] : chunks.slice(1) };
  }
  // Joined in scratch space, not a new buffer: an EDS ACK repeats tens of kilobytes of names, and
  // thousands of them would otherwise be garbage. The handler reads it synchronously (copying what
  // it keeps) before the next message overwrites it.
  const out = scratch.get(need);
  let offset = 0;
  const rest: Buffer[] = [];
  for (const chunk of chunks) {
    if (offset === need) {
      rest.push(chunk);
      continue;
    }
    const take = Math.min(chunk.length, need - offset);
    chunk.copy(out, offset, 0, take);
    offset += take;
    if (take < chunk.length) rest.push(chunk.subarray(take));
  }
  return { message: out.subarray(5, need), rest };
}
