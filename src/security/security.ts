// Starts meshpilot's Citadel half: finds the CA's root (plugged in, or the shared self-signed
// one), the authenticator, the secure port 15012, and with Kubernetes the root's ConfigMaps.
import { existsSync, readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { MeshpilotError } from '../errors.ts';
import type { KubeConnection } from '../sources/kube/kube-api.ts';
import type { AdsServer } from '../xds/server/ads-server.ts';
import type { TransportLimits } from '../xds/server/grpc-transport.ts';
import { CallerAuthenticator, type TokenReviewer } from './authn.ts';
import { CertificateAuthority, type CaOptions } from './ca.ts';
import type { CaMaterial } from './ca-material.ts';
import { CaMetrics } from './ca-metrics.ts';
import { loadOrCreateRootDir, readPluggedInDir } from './ca-store.ts';
import { SecurePort, servingDnsNames } from './secure-port.ts';

export const DEFAULT_SYSTEM_NAMESPACE = 'meshpilot-system';
const POD_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

/** meshpilot's own namespace: the flag, else the pod's service-account namespace, else meshpilot-system. */
export function systemNamespace(given: string | undefined, file = POD_NAMESPACE_FILE): string {
  if (given) return given;
  if (existsSync(file)) {
    const namespace = readFileSync(file, 'utf8').trim();
    if (namespace) return namespace;
  }
  return DEFAULT_SYSTEM_NAMESPACE;
}

export interface SecurityOptions {
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  readonly namespace: string;
  readonly trustDomain: string;
  /** A plugged-in CA directory (Istio's four files); wins over everything else. */
  readonly caDir?: string;
  /** Where the self-signed root lives without Kubernetes. */
  readonly caRootDir?: string;
  readonly ca?: Partial<Omit<CaOptions, 'trustDomain'>>;
  /** Extra DNS names of the serving certificate. */
  readonly dnsNames?: readonly string[];
  readonly servingTtlMs?: number;
  readonly limits?: Partial<TransportLimits>;
}

/** What `serve` takes for the secure port (the host is --xds-host, the trust domain MeshConfig's). */
export type SecureServeOptions = Omit<SecurityOptions, 'host' | 'trustDomain' | 'namespace'> & { readonly namespace?: string };

export interface SecurityContext {
  readonly ads: AdsServer;
  readonly registry: Registry;
  readonly log: Logger;
  /** The Kubernetes API meshpilot watches, if any: Secrets, TokenReview, ConfigMaps. */
  readonly kube?: { readonly connection: KubeConnection; readonly namespaces: () => readonly string[] };
}

export interface RunningSecurity {
  readonly ca: CertificateAuthority;
  readonly securePort: SecurePort;
  readonly port: number;
  /** Writes the root's ConfigMap where it is missing (called after each push); resolves when done. */
  publishRoot(): Promise<void>;
  close(): Promise<void>;
}

async function findMaterial(options: SecurityOptions, context: SecurityContext): Promise<CaMaterial> {
  if (options.caDir !== undefined) return readPluggedInDir(options.caDir);
  if (context.kube) {
    const { loadKubeCaMaterial } = await import('./ca-kube.ts');
    return loadKubeCaMaterial(context.kube.connection, options.namespace, options.trustDomain, context.log);
  }
  if (options.caRootDir !== undefined) return (await loadOrCreateRootDir(options.caRootDir, options.trustDomain)).material;
  throw new MeshpilotError('MP_CA_ROOT_UNAVAILABLE', 'the secure port needs a CA root that outlives this process: without Kubernetes give --ca-root-dir DIR (a self-signed root kept there) or --ca-dir DIR (your own CA), or turn it off with --secure-port off');
}

export async function startSecurity(options: SecurityOptions, context: SecurityContext): Promise<RunningSecurity> {
  const log = context.log.child({ component: 'ca' });
  const material = await findMaterial(options, context);
  const ca = await CertificateAuthority.create(material, { ...options.ca, trustDomain: options.trustDomain });
  const metrics = new CaMetrics(context.registry, () => ca.rootNotAfter);
  let reviewer: TokenReviewer | undefined;
  let publisher: { sync(): Promise<void>; stop(): void } | undefined;
  if (context.kube) {
    const { KubeTokenReviewer, RootCertPublisher } = await import('./ca-kube.ts');
    reviewer = new KubeTokenReviewer(context.kube.connection);
    publisher = new RootCertPublisher({ connection: context.kube.connection, rootPem: ca.rootPem, namespaces: context.kube.namespaces, log });
  } else {
    log.info('no Kubernetes API: callers on the secure port authenticate with client certificates issued by this CA only (tokens cannot be reviewed)');
  }
  const securePort = await SecurePort.create({
    ca,
    authenticator: new CallerAuthenticator(ca, reviewer),
    ads: context.ads,
    metrics,
    log,
    dnsNames: servingDnsNames(options.namespace, options.dnsNames),
    ...(options.servingTtlMs !== undefined ? { servingTtlMs: options.servingTtlMs } : {}),
    ...(options.limits ? { limits: options.limits } : {}),
  });
  const port = await securePort.listen(options.host, options.port);
  log.info({ kind: material.kind, origin: material.origin, trustDomain: options.trustDomain, rootNotAfter: ca.rootNotAfter.toISOString() }, `the CA signs with a ${material.kind} ${material.kind === 'self-signed' ? 'root' : 'intermediate'} from ${material.origin}`);
  return {
    ca,
    securePort,
    port,
    publishRoot: () => publisher?.sync() ?? Promise.resolve(),
    async close() {
      publisher?.stop();
      await securePort.close();
    },
  };
}
