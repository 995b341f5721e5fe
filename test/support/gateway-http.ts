// Loopback HTTP for gateway tests: backends that say who answered, a free port for a listener,
// and a GET to the gateway with a chosen Host (over TLS with SNI when given a CA to trust).
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';

export interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** A backend on loopback that answers with its name and the path and host it saw. */
export async function backend(name: string): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ backend: name, path: req.url, host: req.headers.host }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

/** A port free on 127.0.0.1 right now, for the gateway's servers to name. */
export async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => {
    probe.close(() => {
      resolve();
    });
  });
  return port;
}

/** A GET to the gateway on loopback with this Host; over TLS (SNI = host) when given the CA to trust. */
export function get(port: number, host: string, path: string, ca?: Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const onResponse = (res: IncomingMessage): void => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
      });
    };
    const options = { host: '127.0.0.1', port, path, headers: { host }, agent: false as const };
    const req = ca ? httpsRequest({ ...options, servername: host.split(':')[0], ca }, onResponse) : httpRequest(options, onResponse);
    req.on('error', reject);
    req.end();
  });
}

