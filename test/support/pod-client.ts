// The application side of a pod that calls others (run with `ip netns exec`): it sends the
// batches of HTTP requests, or TCP exchanges, that stdin asks for and answers each batch with
// what every request got, as one JSON line on stdout.
import { Agent, request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { createInterface } from 'node:readline';

export interface HttpBatch {
  /** Where the application connects: a service VIP, an external address. */
  readonly address: string;
  readonly port: number;
  /** The Host header (`reviews:9080`), as a caller using the service's name sends it. */
  readonly host: string;
  readonly path?: string;
  readonly method?: string;
  readonly headers?: Record<string, string>;
  readonly count?: number;
  /** Requests in flight at once, each on its own connection. */
  readonly concurrency?: number;
  readonly timeoutMs?: number;
}

export interface TcpExchange {
  readonly address: string;
  readonly port: number;
  readonly message: string;
  readonly timeoutMs?: number;
}

export interface HttpResult {
  readonly status?: number;
  readonly headers?: Record<string, string>;
  readonly body?: unknown;
  /** A connection-level failure: ECONNRESET, timeout, ... */
  readonly error?: string;
  readonly ms: number;
}

export type ClientCommand = { id: number; http: HttpBatch } | { id: number; tcp: TcpExchange };

function once(batch: HttpBatch, agent: Agent): Promise<HttpResult> {
  const started = performance.now();
  const ms = (): number => Math.round(performance.now() - started);
  return new Promise((resolve) => {
    const req = httpRequest(
      { host: batch.address, port: batch.port, path: batch.path ?? '/', method: batch.method ?? 'GET', headers: { ...batch.headers, host: batch.host }, agent, timeout: batch.timeoutMs ?? 10_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (e) => { resolve({ error: e.message, ms: ms() }); });
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown = text;
          try {
            body = JSON.parse(text);
          } catch {
            // not JSON: Envoy's own answers (fault abort, no route) are plain text
          }
          const headers = Object.fromEntries(Object.entries(res.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(',') : (v ?? '')]));
          resolve({ status: res.statusCode ?? 0, headers, body, ms: ms() });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e: NodeJS.ErrnoException) => { resolve({ error: e.code ?? e.message, ms: ms() }); });
    req.end();
  });
}

async function httpBatch(batch: HttpBatch): Promise<HttpResult[]> {
  const count = batch.count ?? 1;
  const concurrency = Math.min(batch.concurrency ?? 1, count);
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const results = new Array<HttpResult>(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const i = next++;
        results[i] = await once(batch, agent);
      }
    }),
  );
  agent.destroy();
  return results;
}

function tcpExchange(exchange: TcpExchange): Promise<{ reply?: string; error?: string }> {
  return new Promise((resolve) => {
    const socket = connect(exchange.port, exchange.address);
    let reply = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(reply ? { reply } : { error: 'timeout' });
    }, exchange.timeoutMs ?? 5000);
    socket.on('connect', () => socket.write(exchange.message));
    socket.on('data', (d: Buffer) => {
      reply += d.toString('utf8');
      if (reply.endsWith(exchange.message)) {
        clearTimeout(timer);
        socket.end();
        resolve({ reply });
      }
    });
    socket.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve({ error: e.code ?? e.message });
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(reply ? { reply } : { error: 'closed' });
    });
  });
}

createInterface({ input: process.stdin }).on('line', (line) => {
  const command = JSON.parse(line) as ClientCommand;
  const work = 'http' in command ? httpBatch(command.http).then((results) => ({ results })) : tcpExchange(command.tcp);
  void work.then((answer) => process.stdout.write(`${JSON.stringify({ id: command.id, ...answer })}\n`));
});
process.stdin.once('end', () => process.exit(0));
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
