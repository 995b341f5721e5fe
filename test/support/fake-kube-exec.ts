// pods/exec as a kubelet serves it behind the API server: an HTTP/1.1 `Upgrade: SPDY/3.1`
// request, the remotecommand stream protocol negotiated by X-Stream-Protocol-Version, then SPDY/3.1
// frames (the client opens error, stdout and stderr streams; the command's output comes back on
// them and its outcome as a metav1.Status on the error stream). Speaks to client-go's executor,
// which rides on moby/spdystream.
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { FLAG_FIN, FRAME, SETTINGS_INITIAL_WINDOW_SIZE, controlFrame, dataFrame, encodeHeaderBlock, headerCompressor, headerDecompressor, parseHeaderBlock, uint32s } from './spdy-frames.ts';

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

const RST_PROTOCOL_ERROR = 1;
/** SPDY/3.1's initial stream and session windows. */
const INITIAL_WINDOW = 64 * 1024;
/** The largest DATA frame sent (spdystream writes each Write as one frame; a bound keeps frames fair). */
const MAX_DATA_FRAME = 16 * 1024;
/** remotecommand's DefaultStreamCreationTimeout. */
const STREAM_CREATION_TIMEOUT_MS = 30_000;
/** After the last FIN, how long the client may take to close before the server does. */
const CLOSE_GRACE_MS = 10_000;

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
  readonly #inflate = headerDecompressor();
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
