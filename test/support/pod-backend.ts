// An application inside a pod (run with `ip netns exec`): HTTP servers that answer with what
// they saw as JSON and misbehave on request, plus an optional TCP echo. Every request it sees is
// a JSON line on stdout; JSON lines on stdin change its standing behaviour.
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';

/** What a backend does with every request until told otherwise (stdin `{"mode": {...}}`). */
export interface BackendMode {
  /** Answer every request with this status. */
  readonly status?: number;
  /** Wait this long before answering. */
  readonly delayMs?: number;
}

/** The answer body: what the application saw. */
export interface SeenRequest {
  readonly pod: string;
  readonly namespace: string;
  readonly port: number;
  readonly path: string;
  readonly method: string;
  readonly host: string;
  readonly headers: Record<string, string>;
  /** Which attempt of the request keyed by `x-attempt-key` (or `x-fail-first`) this is, from 1. */
  readonly attempt: number;
}

/**
 * Per-request misbehaviour, by request header:
 * `x-fail-first: KEY` fails the first attempt of KEY with 503; `x-fail-times: N` with
 * `x-attempt-key: KEY` fails N attempts, with 503 or `x-fail-status`; `x-fail-with: reset` fails by
 * closing the connection instead; `x-status: N` answers N; `x-delay-ms: N` answers after N ms, `x-delay-first-ms: N`
 * only the first attempt of its key; `x-close: 1` closes the connection without an answer.
 * Answers carry `x-served-by: POD` and `x-internal: 1` (a header a rule may remove).
 */
const { values } = parseArgs({
  options: { pod: { type: 'string' }, namespace: { type: 'string', default: 'default' }, http: { type: 'string', default: '' }, tcp: { type: 'string', default: '' } },
});
const pod = values.pod ?? 'unknown';
const namespace = values.namespace;
let mode: BackendMode = {};
const attempts = new Map<string, number>();

function emit(line: unknown): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

function header(request: IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function answer(port: number) {
  return (request: IncomingMessage, response: ServerResponse): void => {
    request.resume();
    request.once('end', () => {
      const key = header(request, 'x-attempt-key') ?? header(request, 'x-fail-first');
      // A response closed early (per-try timeout) must not end the process.
      response.on('error', () => undefined);
      const attempt = key === undefined ? 1 : (attempts.get(key) ?? 0) + 1;
      if (key !== undefined) attempts.set(key, attempt);
      const headers = Object.fromEntries(Object.entries(request.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(',') : (v ?? '')]));
      const seen: SeenRequest = { pod, namespace, port, path: request.url ?? '', method: request.method ?? '', host: header(request, 'host') ?? '', headers, attempt };
      emit({ seen });
      const failTimes = header(request, 'x-fail-first') !== undefined ? 1 : Number(header(request, 'x-fail-times') ?? 0);
      const failing = attempt <= failTimes;
      if (header(request, 'x-close') === '1' || (failing && header(request, 'x-fail-with') === 'reset')) {
        request.socket.destroy();
        return;
      }
      const status = failing ? Number(header(request, 'x-fail-status') ?? 503) : Number(header(request, 'x-status') ?? mode.status ?? 200);
      const delayFirst = attempt === 1 ? Number(header(request, 'x-delay-first-ms') ?? 0) : 0;
      const delayMs = Math.max(delayFirst, Number(header(request, 'x-delay-ms') ?? mode.delayMs ?? 0));
      const send = (): void => {
        response.writeHead(status, { 'content-type': 'application/json', 'x-served-by': pod, 'x-internal': '1' });
        response.end(JSON.stringify(seen));
      };
      if (delayMs > 0) setTimeout(send, delayMs);
      else send();
    });
  };
}

const listening: Promise<void>[] = [];
for (const port of values.http.split(',').filter(Boolean).map(Number)) {
  const server = createHttpServer({ keepAliveTimeout: 60_000 }, answer(port));
  listening.push(new Promise((resolve) => server.listen(port, '0.0.0.0', resolve)));
}
for (const port of values.tcp.split(',').filter(Boolean).map(Number)) {
  // Each chunk comes back prefixed with the pod's name, so the caller knows who answered.
  const server = createTcpServer((socket) => socket.on('data', (data) => socket.write(`${pod} ${data.toString('utf8')}`)));
  listening.push(new Promise((resolve) => server.listen(port, '0.0.0.0', resolve)));
}
await Promise.all(listening);

createInterface({ input: process.stdin }).on('line', (line) => {
  const message = JSON.parse(line) as { id: number; mode?: BackendMode };
  if (message.mode) mode = message.mode;
  emit({ ack: message.id });
});
process.stdin.once('end', () => process.exit(0));
emit({ ready: true });
