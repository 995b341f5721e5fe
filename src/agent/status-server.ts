// The agent's status on loopback: `/healthz` (and Istio's `/healthz/ready`) answer 200 while a
// valid certificate is held, 503 before and after expiry; `/status` says which identity, serial,
// expiry and errors.
import http from 'node:http';
import type { CertificateStatus } from './workload-certificate.ts';

export interface AgentStatus extends CertificateStatus {
  readonly sds?: { readonly socket: string; readonly streams: number; readonly responses: number; readonly acks: number; readonly nacks: number };
  readonly files?: { readonly dir: string; readonly lastWrite?: string; readonly lastError?: string };
}

export interface StatusServer {
  readonly port: number;
  close(): Promise<void>;
}

export function startStatusServer(host: string, port: number, status: () => AgentStatus): Promise<StatusServer> {
  const server = http.createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    if (request.method !== 'GET') {
      response.writeHead(405, { allow: 'GET' }).end();
      return;
    }
    const current = status();
    if (path === '/healthz' || path === '/healthz/ready') {
      const why = current.notAfter ? `the certificate expired at ${current.notAfter}` : 'no certificate yet';
      response.writeHead(current.ready ? 200 : 503, { 'content-type': 'text/plain' }).end(current.ready ? 'ready\n' : `${why}${current.lastError ? `: ${current.lastError}` : ''}\n`);
    } else if (path === '/status') {
      response.writeHead(200, { 'content-type': 'application/json' }).end(`${JSON.stringify(current, null, 2)}\n`);
    } else {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('the agent answers /healthz, /healthz/ready and /status\n');
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const address = server.address();
      resolve({
        port: typeof address === 'object' && address ? address.port : port,
        close: () => new Promise<void>((done) => {
          server.close(() => {
            done();
          });
          server.closeAllConnections();
        }),
      });
    });
  });
}
