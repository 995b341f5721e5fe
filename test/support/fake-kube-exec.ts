// pods/exec as a kubelet serves it behind the API server: an HTTP/1.1 `Upgrade: SPDY/3.1`
// request, the remotecommand stream protocol negotiated by X-Stream-Protocol-Version, then SPDY/3.1
// frames (the client opens error, stdout and stderr streams; the command's output comes back on
// them and its outcome as a metav1.Status on the error stream). Speaks to client-go's executor,
// which rides on moby/spdystream.
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { constants, createDeflate, createInflate, type Deflate, type Inflate } from 'node:zlib';

export interface ExecRequest {
  readonly namespace: string;
  readonly pod: string;
  readonly container: string;
  readonly command: readonly string[];
}

/** What the command did; a handler that throws could not start it (its message is the runtime's). */
export interface ExecResult {
  readonly stdout: Buffer | string;
  readonly stderr: Buffer | string;
  readonly exitCode: number;
}

export type ExecHandler = (request: ExecRequest) => Promise<ExecResult>;

/** The query of an exec request as the API server checks it; a refusal carries the Status it answers. */
export type ExecOptions =
  | { readonly ok: true; readonly request: ExecRequest; readonly stdin: boolean; readonly stdout: boolean; readonly stderr: boolean; readonly tty: boolean }
  | { readonly ok: false; readonly code: number; readonly reason: string; readonly message: string };
export type AcceptedExec = Extract<ExecOptions, { ok: true }>;

/** The kubelet's protocols for SPDY, best first (v5 is served over WebSockets only). */
const SERVER_PROTOCOLS = ['v4.channel.k8s.io', 'v3.channel.k8s.io', 'v2.channel.k8s.io'] as const;

/**
 * The SPDY/3 header compression dictionary, from the SPDY Protocol Draft 3 (section 2.6.10.1,
 * "Compression"): length-prefixed header names and values, then a run of common value text.
 */
const SPDY_DICTIONARY: Buffer = (() => {
  const words = [
    'options', 'head', 'post', 'put', 'delete', 'trace', 'accept', 'accept-charset', 'accept-encoding', 'accept-language', 'accept-ranges', 'age', 'allow',
    'authorization', 'cache-control', 'connection', 'content-base', 'content-encoding', 'content-language', 'content-length', 'content-location', 'content-md5',
    'content-range', 'content-type', 'date', 'etag', 'expect', 'expires', 'from', 'host', 'if-match', 'if-modified-since', 'if-none-match', 'if-range',
    'if-unmodified-since', 'last-modified', 'location', 'max-forwards', 'pragma', 'proxy-authenticate', 'proxy-authorization', 'range', 'referer', 'retry-after',
    'server', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'user-agent', 'vary', 'via', 'warning', 'www-authenticate', 'method', 'get', 'status', '200 OK',
    'version', 'HTTP/1.1', 'url', 'public', 'set-cookie', 'keep-alive', 'origin',
  ];
  const tail =
    '100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505' +
    '203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized403 Forbidden404 Not Found' +
    '500 Internal Server Error501 Not Implemented503 Service Unavailable' +
    'Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT' +
    'chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,text/javascript,public' +
    'privatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.';
  return Buffer.concat([...words.map((word) => lengthPrefixed(Buffer.from(word, 'latin1'))), Buffer.from(tail, 'latin1')]);
})();

const SPDY_VERSION = 3;
/** SPDY/3 control frame types. */
export const FRAME = { synStream: 1, synReply: 2, rstStream: 3, settings: 4, ping: 6, goAway: 7, headers: 8, windowUpdate: 9 } as const;
const FLAG_FIN = 0x01;
const SETTINGS_INITIAL_WINDOW_SIZE = 7;
const RST_PROTOCOL_ERROR = 1;
/** SPDY/3.1's initial stream and session windows. */
const INITIAL_WINDOW = 64 * 1024;
/** The largest DATA frame sent (spdystream writes each Write as one frame; a bound keeps frames fair). */
const MAX_DATA_FRAME = 16 * 1024;
/** remotecommand's DefaultStreamCreationTimeout. */
const STREAM_CREATION_TIMEOUT_MS = 30_000;
/** After the last FIN, how long the client may take to close before the server does. */
const CLOSE_GRACE_MS = 10_000;

function lengthPrefixed(bytes: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

/** Reads an exec request's query (`command` repeats) against its Pod as the API server validates PodExecOptions. */
export function execOptions(namespace: string, pod: string, containers: readonly string[], query: URLSearchParams): ExecOptions {
  const bool = (name: string): boolean => query.get(name) === 'true' || query.get(name) === '1';
  const command = query.getAll('command');
  const [stdin, stdout, stderr, tty] = [bool('stdin'), bool('stdout'), bool('stderr'), bool('tty')];
  const refuse = (message: string): ExecOptions => ({ ok: false, code: 400, reason: 'BadRequest', message });
  if (command.length === 0) return refuse('you must specify at least 1 command');
  if (!stdin && !stdout && !stderr) return refuse('you must specify at least one of stdin, stdout, stderr');
  let container = query.get('container') ?? '';
  if (container === '') {
    if (containers.length !== 1) return refuse(`a container name must be specified for pod ${pod}, choose one of: [${containers.join(' ')}]`);
    container = containers[0] ?? '';
  } else if (containers.length > 0 && !containers.includes(container)) {
    return refuse(`container ${container} is not valid for pod ${pod}`);
  }
  return { ok: true, request: { namespace, pod, container, command }, stdin, stdout, stderr, tty };
}

/** Answers an upgrade request with an HTTP error instead (the socket then closes). */
export function refuseUpgrade(socket: Duplex, code: number, body: string, contentType = 'application/json', headers: readonly string[] = []): void {
  socket.end(`HTTP/1.1 ${code} ${STATUS_CODES[code] ?? ''}\r\nContent-Type: ${contentType}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${headers.map((h) => `${h}\r\n`).join('')}Connection: close\r\n\r\n${body}`);
}

/** metav1.Status as the kubelet marshals it onto the v4 error stream (no kind/apiVersion, empty metadata). */
function v4Status(result: ExecResult | Error, command: readonly string[]): Record<string, unknown> {
  if (result instanceof Error) {
    const cause = `error executing command in container: ${result.message}`;
    return { metadata: {}, status: 'Failure', message: `Internal error occurred: ${cause}`, reason: 'InternalError', details: { causes: [{ message: cause }] }, code: 500 };
  }
  if (result.exitCode === 0) return { metadata: {}, status: 'Success' };
  return {
    metadata: {},
    status: 'Failure',
    message: `command terminated with non-zero exit code: error executing command [${command.join(' ')}], exit code ${String(result.exitCode)}`,
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: String(result.exitCode) }] },
  };
}

/** One zlib context for a direction of the session: each header block is a sync-flushed piece of it. */
function zlibBlocks(stream: Inflate | Deflate): (block: Buffer) => Promise<Buffer> {
  let failure: Error | undefined;
  stream.on('error', (error: Error) => {
    failure = error;
  });
  return (block) =>
    new Promise((resolve, reject) => {
      if (failure) {
        reject(failure);
        return;
      }
      const chunks: Buffer[] = [];
      const onData = (chunk: Buffer): void => {
        chunks.push(chunk);
      };
      stream.on('data', onData);
      stream.write(block);
      stream.flush(constants.Z_SYNC_FLUSH, () => {
        stream.off('data', onData);
        if (failure) reject(failure);
        else resolve(Buffer.concat(chunks));
      });
    });
}

export function controlFrame(type: number, flags: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt16BE(0x8000 | SPDY_VERSION, 0);
  header.writeUInt16BE(type, 2);
  header.writeUInt32BE(((flags & 0xff) << 24) | payload.length, 4);
  return Buffer.concat([header, payload]);
}

function dataFrame(streamId: number, flags: number, data: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt32BE(streamId & 0x7fffffff, 0);
  header.writeUInt32BE(((flags & 0xff) << 24) | data.length, 4);
  return Buffer.concat([header, data]);
}

export function uint32s(...values: number[]): Buffer {
  const buffer = Buffer.alloc(values.length * 4);
  values.forEach((value, index) => buffer.writeUInt32BE(value >>> 0, index * 4));
  return buffer;
}

/** A SPDY/3 name/value block before compression: a count, then each name and value length-prefixed. */
export function encodeHeaderBlock(headers: Readonly<Record<string, string>>): Buffer {
  const entries = Object.entries(headers);
  return Buffer.concat([uint32s(entries.length), ...entries.flatMap(([name, value]) => [lengthPrefixed(Buffer.from(name.toLowerCase(), 'latin1')), lengthPrefixed(Buffer.from(value, 'latin1'))])]);
}

/** A session's header compressor (one zlib context with the SPDY dictionary, for one direction). */
export function headerCompressor(): (block: Buffer) => Promise<Buffer> {
  return zlibBlocks(createDeflate({ dictionary: SPDY_DICTIONARY }));
}

/** A decompressed SPDY/3 name/value block; names are lowercase, several values join with NUL. */
function parseHeaderBlock(block: Buffer): Map<string, string> {
  const headers = new Map<string, string>();
  let offset = 0;
  const take = (): string => {
    const length = block.readUInt32BE(offset);
    const text = block.subarray(offset + 4, offset + 4 + length).toString('latin1');
    offset += 4 + length;
    return text;
  };
  const count = block.readUInt32BE(0);
  offset = 4;
  for (let i = 0; i < count; i++) {
    const name = take();
    headers.set(name, take());
  }
  return headers;
}

interface SpdyStream {
  readonly id: number;
  readonly type: string;
  /** What the client may still receive before a WINDOW_UPDATE (only enforced for a client that does flow control). */
  window: number;
  reset: boolean;
}

/**
 * Serves one exec on a socket whose request asked for `Upgrade: SPDY/3.1`: negotiates the stream
 * protocol (403 with the accepted versions when none fits), switches protocols, waits for the
 * client's streams, runs the command and streams back what it did.
 */
export function serveExecUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer, options: AcceptedExec, run: ExecHandler): void {
  const connection = (request.headers.connection ?? '').toLowerCase();
  const upgrade = (request.headers.upgrade ?? '').toLowerCase();
  if (!connection.includes('upgrade') || !upgrade.includes('spdy/3.1')) {
    refuseUpgrade(socket, 400, `unable to upgrade: missing upgrade headers in request: ${JSON.stringify(request.headers)}\n`, 'text/plain; charset=utf-8');
    return;
  }
  const offered = (request.headersDistinct['x-stream-protocol-version'] ?? []).flatMap((value) => value.split(',')).map((p) => p.trim()).filter((p) => p !== '');
  if (offered.length === 0) {
    refuseUpgrade(socket, 400, 'unable to upgrade: header X-Stream-Protocol-Version does not exist in request\n', 'text/plain; charset=utf-8');
    return;
  }
  const protocol = offered.find((p): p is (typeof SERVER_PROTOCOLS)[number] => (SERVER_PROTOCOLS as readonly string[]).includes(p));
  if (protocol === undefined) {
    refuseUpgrade(socket, 403, `unable to upgrade: unable to negotiate protocol: client supports [${offered.join(' ')}], server accepts [${SERVER_PROTOCOLS.join(' ')}]\n`, 'text/plain; charset=utf-8', SERVER_PROTOCOLS.map((p) => `X-Accepted-Stream-Protocol-Versions: ${p}`));
    return;
  }
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: ${protocol}\r\nDate: ${new Date().toUTCString()}\r\n\r\n`);
  new ExecSession(socket, protocol, options, run).start(head);
}

class ExecSession {
  readonly #socket: Duplex;
  readonly #protocol: string;
  readonly #options: AcceptedExec;
  readonly #run: ExecHandler;
  readonly #inflate = zlibBlocks(createInflate({ dictionary: SPDY_DICTIONARY }));
  readonly #deflate = headerCompressor();
  readonly #streams = new Map<string, SpdyStream>();
  #pending: Buffer = Buffer.alloc(0);
  /** Inbound frames are handled one after another (header blocks share one inflate context). */
  #inbound: Promise<void> = Promise.resolve();
  /** Outbound frames are written in order (SYN_REPLY blocks share one deflate context). */
  #outbound: Promise<void> = Promise.resolve();
  #lastStreamId = 0;
  #sessionWindow = INITIAL_WINDOW;
  #initialWindow = INITIAL_WINDOW;
  /** Set once the client shows it does SPDY/3.1 flow control (spdystream, client-go's library, never does). */
  #flowControl = false;
  readonly #windowWaiters = new Set<() => void>();
  #started = false;
  #closed = false;
  #creationTimer: NodeJS.Timeout | undefined;
  #closeTimer: NodeJS.Timeout | undefined;

  constructor(socket: Duplex, protocol: string, options: AcceptedExec, run: ExecHandler) {
    this.#socket = socket;
    this.#protocol = protocol;
    this.#options = options;
    this.#run = run;
  }

  start(head: Buffer): void {
    this.#socket.on('data', (chunk: Buffer) => {
      this.#receive(chunk);
    });
    this.#socket.on('close', () => {
      this.#close();
    });
    this.#socket.on('error', () => {
      this.#close();
    });
    // The kubelet gives the client this long to open every stream it asked for.
    this.#creationTimer = setTimeout(() => {
      this.#goAway();
    }, STREAM_CREATION_TIMEOUT_MS);
    if (head.length > 0) this.#receive(head);
  }

  #expected(): string[] {
    const { stdin, stdout, stderr, tty } = this.#options;
    return ['error', ...(stdin ? ['stdin'] : []), ...(stdout ? ['stdout'] : []), ...(stderr && !tty ? ['stderr'] : []), ...(tty && this.#protocol !== SERVER_PROTOCOLS[2] ? ['resize'] : [])];
  }

  #receive(chunk: Buffer): void {
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    while (this.#pending.length >= 8) {
      const length = this.#pending.readUInt32BE(4) & 0xffffff;
      if (this.#pending.length < 8 + length) break;
      const frame = this.#pending.subarray(0, 8 + length);
      this.#pending = this.#pending.subarray(8 + length);
      this.#inbound = this.#inbound.then(() => this.#handle(frame)).catch(() => {
        this.#goAway();
      });
    }
  }

  async #handle(frame: Buffer): Promise<void> {
    if (this.#closed) return;
    const payload = frame.subarray(8);
    if ((frame.readUInt8(0) & 0x80) === 0) {
      // Data from the client: stdin (read by no command here) or a FIN half-closing a stream.
      return;
    }
    const type = frame.readUInt16BE(2);
    if (type === FRAME.synStream) {
      const id = payload.readUInt32BE(0) & 0x7fffffff;
      const headers = parseHeaderBlock(await this.#inflate(payload.subarray(10)));
      const streamType = headers.get('streamtype') ?? '';
      if (id % 2 === 0 || id <= this.#lastStreamId) {
        void this.#write(controlFrame(FRAME.rstStream, 0, uint32s(id, RST_PROTOCOL_ERROR)));
        return;
      }
      this.#lastStreamId = id;
      this.#streams.set(streamType, { id, type: streamType, window: this.#initialWindow, reset: false });
      const reply = await this.#deflate(encodeHeaderBlock({}));
      void this.#write(controlFrame(FRAME.synReply, 0, Buffer.concat([uint32s(id), reply])));
      if (!this.#started && this.#expected().every((t) => this.#streams.has(t))) {
        this.#started = true;
        clearTimeout(this.#creationTimer);
        void this.#exec();
      }
    } else if (type === FRAME.headers) {
      // Keeps the inflate context in step; the headers themselves change nothing here.
      await this.#inflate(payload.subarray(4));
    } else if (type === FRAME.ping) {
      // Client pings have odd ids; the server answers with the same frame.
      if ((payload.readUInt32BE(0) & 1) === 1) void this.#write(frame);
    } else if (type === FRAME.settings) {
      const count = payload.readUInt32BE(0);
      for (let i = 0; i < count; i++) {
        const id = payload.readUInt32BE(4 + i * 8) & 0xffffff;
        const value = payload.readUInt32BE(8 + i * 8);
        if (id !== SETTINGS_INITIAL_WINDOW_SIZE) continue;
        this.#flowControl = true;
        for (const stream of this.#streams.values()) stream.window += value - this.#initialWindow;
        this.#initialWindow = value;
      }
      this.#wake();
    } else if (type === FRAME.windowUpdate) {
      const id = payload.readUInt32BE(0) & 0x7fffffff;
      const delta = payload.readUInt32BE(4) & 0x7fffffff;
      this.#flowControl = true;
      if (id === 0) this.#sessionWindow += delta;
      for (const stream of this.#streams.values()) if (stream.id === id) stream.window += delta;
      this.#wake();
    } else if (type === FRAME.rstStream) {
      const id = payload.readUInt32BE(0) & 0x7fffffff;
      for (const stream of this.#streams.values()) if (stream.id === id) stream.reset = true;
      this.#wake();
    } else if (type === FRAME.goAway) {
      // The client is done (client-go resets its streams, then goes away, once it has read the status).
      this.#close();
    }
  }

  async #exec(): Promise<void> {
    let outcome: ExecResult | Error;
    try {
      outcome = await this.#run(this.#options.request);
    } catch (error) {
      outcome = error instanceof Error ? error : new Error(String(error));
    }
    if (!(outcome instanceof Error)) {
      const tty = this.#options.tty;
      await this.#send('stdout', tty ? Buffer.concat([Buffer.from(outcome.stdout), Buffer.from(outcome.stderr)]) : Buffer.from(outcome.stdout));
      if (!tty) await this.#send('stderr', Buffer.from(outcome.stderr));
    } else {
      await this.#send('stdout', Buffer.alloc(0));
      await this.#send('stderr', Buffer.alloc(0));
    }
    await this.#send('error', this.#statusBytes(outcome));
    if (this.#streams.has('stdin')) await this.#send('stdin', Buffer.alloc(0));
    if (this.#streams.has('resize')) await this.#send('resize', Buffer.alloc(0));
    // The client closes once it has read everything; a GOAWAY before then would drop frames it still queues.
    if (!this.#closed) {
      this.#closeTimer = setTimeout(() => {
        this.#goAway();
      }, CLOSE_GRACE_MS);
    }
  }

  /** The error stream's content: v4's JSON Status; v2 and v3 carry only a failure's message. */
  #statusBytes(outcome: ExecResult | Error): Buffer {
    const status = v4Status(outcome, this.#options.request.command);
    if (this.#protocol === SERVER_PROTOCOLS[0]) return Buffer.from(JSON.stringify(status));
    return Buffer.from(status['status'] === 'Success' ? '' : String(status['message']));
  }

  /** Writes `data` on the stream of `type` as DATA frames within the client's windows, the last one FIN. */
  async #send(type: string, data: Buffer): Promise<void> {
    const stream = this.#streams.get(type);
    if (!stream) return;
    let offset = 0;
    do {
      if (offset < data.length) await this.#windowOpen(stream);
      if (stream.reset || this.#closed) return;
      const room = this.#flowControl ? Math.min(stream.window, this.#sessionWindow) : MAX_DATA_FRAME;
      const piece = data.subarray(offset, offset + Math.min(room, MAX_DATA_FRAME));
      offset += piece.length;
      if (this.#flowControl) {
        stream.window -= piece.length;
        this.#sessionWindow -= piece.length;
      }
      await this.#write(dataFrame(stream.id, offset >= data.length ? FLAG_FIN : 0, piece));
    } while (offset < data.length);
  }

  async #windowOpen(stream: SpdyStream): Promise<void> {
    while (this.#flowControl && !stream.reset && !this.#closed && (stream.window <= 0 || this.#sessionWindow <= 0)) {
      await new Promise<void>((resolve) => this.#windowWaiters.add(resolve));
    }
  }

  #wake(): void {
    for (const waiter of this.#windowWaiters) waiter();
    this.#windowWaiters.clear();
  }

  /** Queues a frame after those before it; resolves once the socket takes more (TCP backpressure). */
  #write(frame: Buffer): Promise<void> {
    this.#outbound = this.#outbound.then(
      () =>
        new Promise<void>((resolve) => {
          if (this.#closed || this.#socket.destroyed) {
            resolve();
            return;
          }
          if (this.#socket.write(frame)) {
            resolve();
            return;
          }
          const done = (): void => {
            this.#socket.off('drain', done);
            this.#socket.off('close', done);
            resolve();
          };
          this.#socket.on('drain', done);
          this.#socket.on('close', done);
        }),
    );
    return this.#outbound;
  }

  #goAway(): void {
    if (this.#closed) return;
    void this.#write(controlFrame(FRAME.goAway, 0, uint32s(this.#lastStreamId, 0))).then(() => {
      this.#socket.end();
      this.#close();
    });
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#creationTimer);
    clearTimeout(this.#closeTimer);
    this.#wake();
    if (!this.#socket.destroyed) this.#socket.end();
  }
}
