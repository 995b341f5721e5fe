// A raw HTTP/2 client over a TCP socket, for transport probes that node:http2 refuses to make
// (more streams than the peer allows, PINGs without data, frames after a GOAWAY). It writes
// frames as told and records every frame the server sends; header blocks are not decoded.
import http2 from 'node:http2';
import net from 'node:net';

export const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8 } as const;
export const FLAG = { END_STREAM: 1, ACK: 1, END_HEADERS: 4 } as const;
export const H2_ERROR = { NO_ERROR: 0, PROTOCOL_ERROR: 1, REFUSED_STREAM: 7, CANCEL: 8, ENHANCE_YOUR_CALM: 11 } as const;

export interface Frame {
  readonly type: number;
  readonly flags: number;
  readonly streamId: number;
  readonly payload: Buffer;
}

/** HPACK integer with an N-bit prefix (RFC 7541 §5.1). */
function hpackInteger(value: number, prefixBits: number, firstByte: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([firstByte | value]);
  const out = [firstByte | max];
  let rest = value - max;
  while (rest >= 128) {
    out.push((rest % 128) | 128);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return Buffer.from(out);
}

/** A header block of literal fields without indexing (no Huffman, no table): any server reads it. */
export function headerBlock(headers: Readonly<Record<string, string>>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of Object.entries(headers)) {
    const n = Buffer.from(name);
    const v = Buffer.from(value);
    parts.push(Buffer.from([0]), hpackInteger(n.length, 7, 0), n, hpackInteger(v.length, 7, 0), v);
  }
  return Buffer.concat(parts);
}

export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId, 5);
  return Buffer.concat([head, payload]);
}

/** A gRPC message: the 5-byte prefix (compressed flag, length) and the bytes. */
export function grpcMessage(message: Buffer, compressed = false, declaredLength = message.length): Buffer {
  const prefix = Buffer.alloc(5);
  prefix[0] = compressed ? 1 : 0;
  prefix.writeUInt32BE(declaredLength, 1);
  return Buffer.concat([prefix, message]);
}

export class RawH2Client {
  readonly frames: Frame[] = [];
  readonly #socket: net.Socket;
  #buffer = Buffer.alloc(0);
  #waiters: (() => void)[] = [];
  closed = false;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      while (this.#buffer.length >= 9) {
        const length = this.#buffer.readUIntBE(0, 3);
        if (this.#buffer.length < 9 + length) break;
        const f: Frame = { type: this.#buffer[3] as number, flags: this.#buffer[4] as number, streamId: this.#buffer.readUInt32BE(5) & 0x7fffffff, payload: this.#buffer.subarray(9, 9 + length) };
        this.#buffer = this.#buffer.subarray(9 + length);
        // The server's SETTINGS are acknowledged, as every client must.
        if (f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) === 0) this.write(frame(FRAME.SETTINGS, FLAG.ACK, 0));
        this.frames.push(f);
      }
      this.#wake();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      this.#wake();
    });
  }

  /** Connects, sends the preface and empty SETTINGS, and opens the connection window wide. */
  static connect(port: number, host = '127.0.0.1'): Promise<RawH2Client> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host }, () => {
        const client = new RawH2Client(socket);
        const window = Buffer.alloc(4);
        window.writeUInt32BE(1 << 30);
        client.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame(FRAME.SETTINGS, 0, 0), frame(FRAME.WINDOW_UPDATE, 0, 0, window)]));
        resolve(client);
      });
      socket.once('error', reject);
    });
  }

  write(bytes: Buffer): boolean {
    if (this.closed || this.#socket.destroyed) return false;
    return this.#socket.write(bytes);
  }

  /** Opens a gRPC call on `streamId` (odd, increasing). */
  openCall(streamId: number, path: string, extra: Readonly<Record<string, string>> = {}): void {
    const headers = { ':method': 'POST', ':scheme': 'http', ':path': path, ':authority': 'meshpilot', 'content-type': 'application/grpc', te: 'trailers', ...extra };
    this.write(frame(FRAME.HEADERS, FLAG.END_HEADERS, streamId, headerBlock(headers)));
  }

  data(streamId: number, bytes: Buffer, endStream = false): boolean {
    // Frames of at most 16 KiB, the default SETTINGS_MAX_FRAME_SIZE.
    let ok = true;
    for (let offset = 0; offset < bytes.length || (offset === 0 && bytes.length === 0); offset += 16_384) {
      const piece = bytes.subarray(offset, offset + 16_384);
      const last = offset + 16_384 >= bytes.length;
      ok = this.write(frame(FRAME.DATA, endStream && last ? FLAG.END_STREAM : 0, streamId, piece));
      if (bytes.length === 0) break;
    }
    return ok;
  }

  ping(payload = Buffer.alloc(8)): void {
    this.write(frame(FRAME.PING, 0, 0, payload));
  }

  /** Resolves with the first frame (from index `from`) that matches, or rejects after `timeoutMs`. */
  async waitFor(predicate: (f: Frame) => boolean, timeoutMs = 10_000, from = 0): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.frames.slice(from).find(predicate);
      if (found) return found;
      if (this.closed) throw new Error(`connection closed; frames: ${this.describe()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching frame within ${timeoutMs} ms; frames: ${this.describe()}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The server's value for a SETTINGS parameter (RFC 9113 §6.5.2), if it sent one. */
  setting(id: number): number | undefined {
    for (const f of this.frames) {
      if (f.type !== FRAME.SETTINGS || (f.flags & FLAG.ACK) !== 0) continue;
      for (let i = 0; i + 6 <= f.payload.length; i += 6) if (f.payload.readUInt16BE(i) === id) return f.payload.readUInt32BE(i + 2);
    }
    return undefined;
  }

  describe(): string {
    return this.frames.map((f) => `${f.type}/${f.flags}@${f.streamId}${f.type === FRAME.RST_STREAM || f.type === FRAME.GOAWAY ? `:${f.payload.readUInt32BE(f.type === FRAME.GOAWAY ? 4 : 0)}` : ''}`).join(' ');
  }

  close(): void {
    this.#socket.destroy();
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }
}

/** RST_STREAM's error code, GOAWAY's error code. */
export const errorCodeOf = (f: Frame): number => f.payload.readUInt32BE(f.type === FRAME.GOAWAY ? 4 : 0);

/** One gRPC call made with node:http2 (which keeps to flow control), watched frame by frame. */
export class H2Call {
  readonly session: http2.ClientHttp2Session;
  readonly stream: http2.ClientHttp2Stream;
  readonly headers: Promise<http2.IncomingHttpHeaders>;
  /** The status, from the trailers or a trailers-only response. */
  readonly status: Promise<{ code: number; message: string }>;
  /** Resolves with the RST_STREAM code (0 when the server ended it cleanly) once the stream is gone. */
  readonly closed: Promise<number>;
  readonly received: Buffer[] = [];

  constructor(port: number, path: string, extra: http2.OutgoingHttpHeaders = {}, session?: http2.ClientHttp2Session) {
    this.session = session ?? http2.connect(`http://127.0.0.1:${port}`);
    this.session.on('error', () => undefined);
    this.stream = this.session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...extra });
    this.stream.on('error', () => undefined);
    this.stream.on('data', (chunk: Buffer) => this.received.push(chunk));
    this.headers = new Promise((resolve) => this.stream.once('response', resolve));
    const statusOf = (h: http2.IncomingHttpHeaders): { code: number; message: string } => ({ code: Number(h['grpc-status']), message: decodeURIComponent(String(h['grpc-message'] ?? '')) });
    this.status = new Promise((resolve) => {
      this.stream.once('trailers', (t: http2.IncomingHttpHeaders) => {
        resolve(statusOf(t));
      });
      this.stream.once('response', (h) => {
        if (h['grpc-status'] !== undefined) resolve(statusOf(h));
      });
    });
    this.closed = new Promise((resolve) => this.stream.once('close', () => {
      resolve(this.stream.rstCode);
    }));
  }

  /** Writes and resolves once node:http2 has taken the bytes (false when the stream is gone). */
  write(bytes: Buffer): Promise<boolean> {
    if (this.stream.destroyed || this.stream.closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      this.stream.write(bytes, (error) => {
        resolve(!error);
      });
    });
  }

  /** Keeps sending `chunk` until `total` bytes are out or the server has reset the stream; resolves with bytes written. */
  async flood(chunk: Buffer, total: number): Promise<number> {
    let sent = 0;
    while (sent < total && !this.stream.closed && !this.stream.destroyed) {
      if (!(await this.write(chunk))) break;
      sent += chunk.length;
    }
    return sent;
  }

  close(): void {
    this.stream.destroy();
    this.session.destroy();
  }
}
