// `meshpilot agent` put together: the workload certificate, SDS for Envoy on a Unix socket, the
// files and gRPC bootstrap for proxyless gRPC, and the status endpoint. Shares no server state.
import { mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { Logger } from 'pino';
import { MeshpilotError } from '../errors.ts';
import type { CaClientOptions } from './ca-client.ts';
import { writeCertificateFiles, writeFileAtomically } from './files.ts';
import { buildGrpcBootstrap } from './grpc-bootstrap.ts';
import type { KeyType } from './identity.ts';
import { SdsServer } from './sds-server.ts';
import { startStatusServer, type AgentStatus, type StatusServer } from './status-server.ts';
import { WorkloadCertificate } from './workload-certificate.ts';

export interface AgentOptions {
  readonly trustDomain: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly podName: string;
  readonly podIp: string;
  readonly keyType: KeyType;
  readonly validitySeconds: number;
  readonly ca: CaClientOptions;
  /** The SDS socket; undefined: no SDS (a proxyless gRPC pod). */
  readonly sdsSocket?: string;
  /** Where cert-chain.pem, key.pem and root-cert.pem are written; undefined: no files. */
  readonly outputDir?: string;
  /** Where the gRPC xDS bootstrap is written (needs outputDir). */
  readonly grpcBootstrap?: string;
  /** meshpilot's xDS address for the gRPC bootstrap. */
  readonly xdsAddress: string;
  readonly grpcRefreshSeconds: number;
  /** undefined: no status endpoint. */
  readonly status?: { readonly host: string; readonly port: number };
  readonly log: Logger;
  readonly retryInitialMs?: number;
  readonly retryMaxMs?: number;
  /** Fraction of a certificate's lifetime after which it is renewed (default 0.8). */
  readonly renewAt?: number;
}

export interface RunningAgent {
  readonly certificate: WorkloadCertificate;
  readonly sds: SdsServer | undefined;
  readonly statusPort: number | undefined;
  status(): AgentStatus;
  close(): Promise<void>;
}

export async function startAgent(options: AgentOptions): Promise<RunningAgent> {
  const { log } = options;
  const certificate = new WorkloadCertificate({
    trustDomain: options.trustDomain,
    namespace: options.namespace,
    serviceAccount: options.serviceAccount,
    keyType: options.keyType,
    validitySeconds: options.validitySeconds,
    ca: options.ca,
    log,
    ...(options.retryInitialMs !== undefined ? { retryInitialMs: options.retryInitialMs } : {}),
    ...(options.retryMaxMs !== undefined ? { retryMaxMs: options.retryMaxMs } : {}),
    ...(options.renewAt !== undefined ? { renewAt: options.renewAt } : {}),
  });
  const files: { lastWrite?: Date; lastError?: string } = {};
  const outputDir = options.outputDir === undefined ? undefined : resolve(options.outputDir);
  if (outputDir) {
    certificate.onChange(async (held) => {
      try {
        await writeCertificateFiles(outputDir, { certChainPem: held.certChainPem, privateKeyPem: held.privateKeyPem, rootCertPem: held.trustBundlePem });
        files.lastWrite = new Date();
        delete files.lastError;
      } catch (error) {
        files.lastError = error instanceof Error ? error.message : String(error);
        log.error({ code: 'MP_AGENT_CERTIFICATE', dir: outputDir }, `MP_AGENT_CERTIFICATE: the certificate files in ${outputDir} could not be written: ${files.lastError}`);
      }
    });
    if (options.grpcBootstrap) {
      const bootstrap = buildGrpcBootstrap({ xdsAddress: options.xdsAddress, podName: options.podName, namespace: options.namespace, podIp: options.podIp, certificateDir: outputDir, refreshIntervalSeconds: options.grpcRefreshSeconds });
      await mkdir(dirname(resolve(options.grpcBootstrap)), { recursive: true });
      await writeFileAtomically(resolve(options.grpcBootstrap), `${JSON.stringify(bootstrap, null, 2)}\n`, 0o644);
    }
  } else if (options.grpcBootstrap) {
    throw new MeshpilotError('MP_CONFIG', '--grpc-bootstrap needs --output-dir: the bootstrap points gRPC at the certificate files written there');
  }
  let sds: SdsServer | undefined;
  if (options.sdsSocket) {
    sds = new SdsServer(certificate, log.child({ component: 'sds' }));
    await sds.listen(options.sdsSocket);
  }
  const status = (): AgentStatus => ({
    ...certificate.status(),
    ...(sds && options.sdsSocket ? { sds: { socket: options.sdsSocket, streams: sds.stats.streams, responses: sds.stats.responses, acks: sds.stats.acks, nacks: sds.stats.nacks } } : {}),
    ...(outputDir ? { files: { dir: outputDir, ...(files.lastWrite ? { lastWrite: files.lastWrite.toISOString() } : {}), ...(files.lastError ? { lastError: files.lastError } : {}) } } : {}),
  });
  let statusServer: StatusServer | undefined;
  if (options.status) statusServer = await startStatusServer(options.status.host, options.status.port, status);
  // Serving starts now; the certificate arrives when the CA answers (SDS streams wait for it).
  void certificate.start();
  return {
    certificate,
    sds,
    statusPort: statusServer?.port,
    status,
    close: async () => {
      await Promise.all([certificate.close(), sds?.close(), statusServer?.close()]);
    },
  };
}
