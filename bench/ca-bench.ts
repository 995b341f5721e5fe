// The CA's figures: certificates signed per second on one core (ECDSA P-256), CreateCertificate
// latency with 200 concurrent callers over TLS (each authenticated by its own client
// certificate), and the memory 2,000 issued identities add.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { spiffeId } from '../src/security/names.ts';
import { createCertificate, makeCsr, secureClient } from '../test/support/ca-client.ts';
import type { CaServerMessage, CaServerReport } from './ca-proc.ts';
import { expect, percentiles, type Convergence } from './harness.ts';

const benchIdentity = (index: number): string => spiffeId('cluster.local', 'bench', `caller-${index}`);

export interface CaBenchResult {
  readonly signsPerSecond: number;
  readonly signsPerCpuSecond: number;
  readonly callers: number;
  readonly calls: number;
  readonly latencyMs: Convergence;
  readonly failedCalls: number;
  readonly rssPer2000IdentitiesMB: number;
  /** The JS heap they add (RSS moves with the allocator and GC; the heap is what the record costs). */
  readonly heapPer2000IdentitiesMB: number;
}

export async function runCaBench(options: { quick: boolean }): Promise<CaBenchResult> {
  const child = fork(fileURLToPath(new URL('ca-proc.ts', import.meta.url)), [], {
    execArgv: ['--import', 'tsx', '--expose-gc'],
    env: { ...process.env, UV_THREADPOOL_SIZE: '1' },
  });
  const send = (message: CaServerMessage): void => {
    child.send(message);
  };
  try {
    const { port, rootPem } = await expect<CaServerReport, 'ready'>(child, 'ready');
    const identities = options.quick ? 500 : 2000;
    const keys = await Promise.all(Array.from({ length: identities }, (_, i) => makeCsr({ sans: [`uri:${benchIdentity(i)}`] })));
    const requests = keys.map((key, i) => ({ csr: key.csr, identity: benchIdentity(i) }));

    send({ type: 'memory' });
    const before = await expect<CaServerReport, 'memory'>(child, 'memory');
    send({ type: 'sign', requests });
    const signed = await expect<CaServerReport, 'signed'>(child, 'signed');
    send({ type: 'memory' });
    const after = await expect<CaServerReport, 'memory'>(child, 'memory');

    const callers = 200;
    const callsEach = options.quick ? 3 : 10;
    send({ type: 'bootstrap', requests: requests.slice(0, callers) });
    const { chains } = await expect<CaServerReport, 'bootstrapped'>(child, 'bootstrapped');
    const latencies: number[] = [];
    let failed = 0;
    await Promise.all(
      chains.map(async (chain, i) => {
        const key = keys[i];
        if (!key) return;
        const client = secureClient(port, { rootPem, clientCert: { chainPem: chain.join(''), keyPem: key.keyPem } });
        // The first call opens the TLS connection; renewals reuse it, as an agent's do.
        for (let call = 0; call < callsEach; call++) {
          const started = performance.now();
          const result = await createCertificate(client, { csr: key.csr, validityDuration: 3600 });
          latencies.push(performance.now() - started);
          if (result.code !== grpc.status.OK) failed++;
        }
        client.close();
      }),
    );
    const per2000MB = (bytes: number): number => Math.round(((bytes / identities) * 2000 / 2 ** 20) * 10) / 10;
    return {
      signsPerSecond: Math.round((signed.count / signed.wallMs) * 1000),
      signsPerCpuSecond: Math.round((signed.count / signed.cpuMs) * 1000),
      callers,
      calls: latencies.length,
      latencyMs: percentiles(latencies, failed),
      failedCalls: failed,
      rssPer2000IdentitiesMB: per2000MB(after.rss - before.rss),
      heapPer2000IdentitiesMB: per2000MB(after.heapUsed - before.heapUsed),
    };
  } finally {
    send({ type: 'stop' });
  }
}

export const CA_TABLE_HEADER = ['| CA | signed/s (one core) | signed per CPU-second | CreateCertificate p50/p99/max ms (callers x calls) | failed | RSS / heap per 2,000 identities MB |', '|---|---|---|---|---|---|'];

export function caRow(r: CaBenchResult): string {
  return `| ECDSA P-256 | ${r.signsPerSecond} | ${r.signsPerCpuSecond} | ${r.latencyMs.p50}/${r.latencyMs.p99}/${r.latencyMs.max} (${r.callers} x ${r.calls / r.callers}) | ${r.failedCalls} | ${r.rssPer2000IdentitiesMB} / ${r.heapPer2000IdentitiesMB} |`;
}
