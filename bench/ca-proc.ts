// meshpilot's CA under benchmark, in its own process (one libuv thread, so "per core" is
// honest): the real serve() with the secure port, a self-signed root in a temporary directory.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { serve } from '../src/main.ts';

export type CaServerMessage =
  /** Signs these CSRs one after another, each for its identity, and reports the rate. */
  | { type: 'sign'; requests: { csr: string; identity: string }[] }
  /** Signs a client certificate for each caller (their bootstrap), returning the chains. */
  | { type: 'bootstrap'; requests: { csr: string; identity: string }[] }
  | { type: 'memory' }
  | { type: 'stop' };

export type CaServerReport =
  | { type: 'ready'; port: number; rootPem: string }
  | { type: 'signed'; count: number; wallMs: number; cpuMs: number }
  | { type: 'bootstrapped'; chains: string[][] }
  | { type: 'memory'; rss: number; heapUsed: number; issued: number };

const report = (r: CaServerReport): void => {
  process.send?.(r);
};

const rootDir = await mkdtemp(join(tmpdir(), 'meshpilot-bench-ca-'));
const running = await serve({
  configDir: new URL('../fixtures/bookinfo', import.meta.url).pathname,
  xdsHost: '127.0.0.1',
  xdsPort: 0,
  adminHost: '127.0.0.1',
  adminPort: 0,
  logLevel: 'silent',
  debounceQuietMs: 100,
  debounceMaxMs: 1000,
  log: pino({ level: 'silent' }),
  secure: { port: 0, caRootDir: join(rootDir, 'ca'), ca: { recordLimit: 100_000 } },
});
const security = running.security;
if (!security) throw new Error('the secure port did not start');
report({ type: 'ready', port: security.port, rootPem: security.ca.rootPem });

process.on('message', (message: CaServerMessage) => {
  void (async () => {
    if (message.type === 'sign') {
      const cpu = process.cpuUsage();
      const started = performance.now();
      for (const request of message.requests) await security.ca.sign(request.csr, request.identity, 3600);
      const used = process.cpuUsage(cpu);
      report({ type: 'signed', count: message.requests.length, wallMs: performance.now() - started, cpuMs: (used.user + used.system) / 1000 });
    } else if (message.type === 'bootstrap') {
      const chains: string[][] = [];
      for (const request of message.requests) chains.push(await security.ca.sign(request.csr, request.identity, 3600));
      report({ type: 'bootstrapped', chains });
    } else if (message.type === 'memory') {
      (globalThis as { gc?: () => void }).gc?.();
      const memory = process.memoryUsage();
      report({ type: 'memory', rss: memory.rss, heapUsed: memory.heapUsed, issued: security.ca.issued().length });
    } else {
      await running.close();
      await rm(rootDir, { recursive: true, force: true });
      process.exit(0);
    }
  })();
});
