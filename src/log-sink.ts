// Where log lines go: a bounded queue written to a file descriptor without ever blocking the
// event loop. A full disk, a closed pipe or a reader that stops costs log lines (counted and
// reported once writing works again), never serving.
import { write, writeSync } from 'node:fs';

/** Lines queued beyond this many bytes are dropped, not buffered. */
export const DEFAULT_LOG_BUFFER_BYTES = 4 * 1024 * 1024;
/** Bytes handed to one write call. */
const CHUNK_BYTES = 64 * 1024;
/** How long to wait after a failed write before trying again. */
const RETRY_MS = 1000;

export interface LogSinkOptions {
  readonly fd?: number;
  readonly maxBufferedBytes?: number;
}

export class LogSink {
  readonly #fd: number;
  readonly #max: number;
  #queue: string[] = [];
  #queuedBytes = 0;
  #writing = false;
  #retryTimer: NodeJS.Timeout | undefined;
  /** Lines lost since the last report of losses. */
  #unreported = 0;
  #dropped = 0;
  #lastError: string | undefined;

  constructor(options: LogSinkOptions = {}) {
    this.#fd = options.fd ?? 1;
    this.#max = options.maxBufferedBytes ?? DEFAULT_LOG_BUFFER_BYTES;
  }

  /** Lines that could not be written (queue full or write failed), since start. */
  get droppedLines(): number {
    return this.#dropped;
  }

  /** pino's destination interface: one call per serialized line. */
  write(line: string): void {
    if (this.#queuedBytes + line.length > this.#max) {
      this.#drop(1);
      return;
    }
    this.#queue.push(line);
    this.#queuedBytes += line.length;
    this.#pump();
  }

  /** Best effort before the process exits: write what is queued now, without retrying. */
  flushSync(): void {
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    const text = this.#queue.join('');
    this.#queue = [];
    this.#queuedBytes = 0;
    try {
      if (text) writeSync(this.#fd, text);
    } catch {
      // Nowhere left to say it; the process is exiting.
    }
  }

  #drop(lines: number): void {
    this.#dropped += lines;
    this.#unreported += lines;
  }

  #pump(): void {
    if (this.#writing || this.#retryTimer || this.#queue.length === 0) return;
    let bytes = 0;
    let count = 0;
    while (count < this.#queue.length && (count === 0 || bytes + (this.#queue[count]?.length ?? 0) <= CHUNK_BYTES)) {
      bytes += this.#queue[count]?.length ?? 0;
      count++;
    }
    const lines = this.#queue.splice(0, count);
    this.#queuedBytes -= bytes;
    const chunk = Buffer.from(lines.join(''), 'utf8');
    this.#writing = true;
    this.#writeAll(chunk, 0, (error) => {
      this.#writing = false;
      if (error) {
        // A full disk or a gone reader does not heal at once: drop this chunk, retry later.
        this.#drop(lines.length);
        this.#lastError = error.code ?? error.message;
        this.#retryTimer = setTimeout(() => {
          this.#retryTimer = undefined;
          this.#pump();
        }, RETRY_MS);
        this.#retryTimer.unref();
        return;
      }
      if (this.#unreported > 0) this.#reportLosses();
      this.#pump();
    });
  }

  #writeAll(chunk: Buffer, offset: number, done: (error: NodeJS.ErrnoException | null) => void): void {
    write(this.#fd, chunk, offset, chunk.length - offset, null, (error, written) => {
      if (error) {
        // A non-blocking pipe that is full: wait for the reader, the chunk is still ours.
        if (error.code === 'EAGAIN') {
          setTimeout(() => {
            this.#writeAll(chunk, offset, done);
          }, 20).unref();
          return;
        }
        done(error);
        return;
      }
      if (offset + written < chunk.length) this.#writeAll(chunk, offset + written, done);
      else done(null);
    });
  }

  #reportLosses(): void {
    const line = `${JSON.stringify({ level: 40, time: new Date().toISOString(), app: 'meshpilot', droppedLines: this.#unreported, lastError: this.#lastError, msg: `${this.#unreported} log lines were dropped while the log could not be written (${this.#lastError ?? 'buffer full'})` })}\n`;
    this.#unreported = 0;
    this.#lastError = undefined;
    this.#queue.unshift(line);
    this.#queuedBytes += line.length;
  }
}
