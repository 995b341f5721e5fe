// A proxy's security as operators ask about it: the identity its workload runs as, the newest
// certificate meshpilot's CA issued to that identity, and what each inbound port accepts.
import type { EffectiveMtlsMode } from '../model/peer-authentication.ts';
import { portMode } from '../model/peer-authentication.ts';
import type { Proxy } from '../model/proxy.ts';
import type { PushContext } from '../model/push-context.ts';
import type { CertificateAuthority, IssuedRecord } from '../security/ca.ts';
import { grpcServerMode } from '../xds/generate/grpc-server-listener.ts';
import { workloadPorts } from '../xds/generate/inbound.ts';
import { issuedCertificate } from './schemas.ts';
import type { InboundTlsPlan } from '../xds/generate/listener.ts';
import { tlsPlan } from '../xds/generate/listener.ts';
import type { ProxyIdentity } from '../xds/generate/mtls.ts';
import { proxyHasIdentity, workloadIdentity, workloadMtls } from '../xds/generate/mtls.ts';

export interface PortMtls {
  readonly port: number;
  /** The service whose endpoint the port is (`reviews.default.svc.cluster.local:9080`). */
  readonly service: string;
  /** What PeerAuthentication says for the port. */
  readonly mode: EffectiveMtlsMode;
  /** What the proxy was given: TLS only, both, or plaintext (PERMISSIVE without a certificate, or a gRPC server, is narrower). */
  readonly accepts: InboundTlsPlan;
}

export interface ProxySecurity {
  readonly identity: ProxyIdentity | null;
  /** The newest certificate the CA issued to the identity; null when it issued none (or runs no CA). */
  readonly certificate: (IssuedRecord & { readonly expired: boolean }) | null;
  /** How many certificates the CA remembers issuing to the identity (other pods of the service account, earlier rotations). */
  readonly issuedToIdentity: number;
  /** Why no certificate is known, in a sentence; null when one is. */
  readonly unknownBecause: string | null;
  readonly mtls: { readonly mode: EffectiveMtlsMode; readonly policies: readonly string[]; readonly ports: readonly PortMtls[] };
}

/** What the CA issued, by identity, oldest first; undefined when no CA runs. Built once per request. */
export type IssuedByIdentity = ReadonlyMap<string, readonly IssuedRecord[]>;

export function issuedByIdentity(ca: CertificateAuthority | undefined): IssuedByIdentity | undefined {
  if (!ca) return undefined;
  const index = new Map<string, IssuedRecord[]>();
  for (const record of ca.issued()) {
    const list = index.get(record.identity);
    if (list) list.push(record);
    else index.set(record.identity, [record]);
  }
  return index;
}

function whyUnknown(proxy: Proxy, identity: ProxyIdentity | undefined, issued: IssuedByIdentity | undefined): string {
  if (!issued) return 'this meshpilot runs no CA (the secure port is off), so it knows no certificate';
  if (!identity) {
    return `meshpilot does not know the identity of ${proxy.id}: no SERVICE_ACCOUNT in its node metadata and no pod with a service account at ${proxy.ipAddresses.join(', ') || 'its address'}${proxy.podName ? ` or named ${proxy.namespace ?? ''}/${proxy.podName}` : ''}`;
  }
  return `this meshpilot's CA has issued no certificate to ${identity.spiffeId} since it started (each replica records only what it signed, the newest 10,000): is \`meshpilot agent\` (or istio-agent) running beside the proxy with CA_ADDR pointing at the secure port? \`proxy-config secret --agent URL\` asks the agent itself`;
}

export function proxySecurity(push: PushContext, proxy: Proxy, issuedIndex: IssuedByIdentity | undefined, now = Date.now()): ProxySecurity {
  const identity = workloadIdentity(push, proxy);
  const issued = (identity && issuedIndex?.get(identity.spiffeId)) || [];
  const newest = issued.at(-1);
  const mtls = workloadMtls(push, proxy);
  const hasIdentity = proxyHasIdentity(push, proxy);
  const ports = workloadPorts(push, proxy).map((inbound): PortMtls => {
    const service = `${inbound.service.hostname}:${String(inbound.servicePort.port)}`;
    if (proxy.generator === 'grpc') {
      const grpc = grpcServerMode(push, proxy, inbound.port);
      return { port: inbound.port, service, mode: grpc.requested, accepts: grpc.served === 'STRICT' ? 'STRICT' : 'plaintext' };
    }
    const mode = portMode(mtls, inbound.port);
    return { port: inbound.port, service, mode, accepts: tlsPlan(mode, hasIdentity) };
  });
  return {
    identity: identity ?? null,
    certificate: newest ? { ...newest, expired: Date.parse(newest.notAfter) <= now } : null,
    issuedToIdentity: issued.length,
    unknownBecause: newest ? null : whyUnknown(proxy, identity, issuedIndex),
    mtls: { mode: mtls.mode, policies: mtls.policies.map((p) => `${p.meta.namespace}/${p.meta.name}`), ports },
  };
}

/** The JSON schema of ProxySecurity, for the routes that serve it. */
export const proxySecuritySchema = {
  type: 'object',
  properties: {
    identity: {
      type: ['object', 'null'],
      properties: {
        spiffeId: { type: 'string' },
        namespace: { type: 'string' },
        serviceAccount: { type: 'string' },
        source: { type: 'string', enum: ['node metadata', 'workload'], description: "the node's SERVICE_ACCOUNT, or the pod at the proxy's address or of its name" },
      },
    },
    certificate: {
      type: ['object', 'null'],
      description: 'the newest certificate the CA issued to the identity (null: unknown)',
      properties: { ...issuedCertificate.properties, expired: { type: 'boolean' } },
    },
    issuedToIdentity: { type: 'integer', description: 'certificates the CA remembers issuing to the identity (every pod of the service account, every rotation)' },
    unknownBecause: { type: ['string', 'null'], description: 'why no certificate is known' },
    mtls: {
      type: 'object',
      properties: {
        mode: { type: 'string', enum: ['STRICT', 'PERMISSIVE', 'DISABLE'], description: 'the mode of ports without a port-level setting' },
        policies: { type: 'array', items: { type: 'string' }, description: 'the PeerAuthentications that decided (namespace/name), mesh-wide first' },
        ports: {
          type: 'array',
          items: {
            type: 'object',
            properties: {
              port: { type: 'integer' },
              service: { type: 'string' },
              mode: { type: 'string', enum: ['STRICT', 'PERMISSIVE', 'DISABLE'] },
              accepts: { type: 'string', enum: ['STRICT', 'PERMISSIVE', 'plaintext'], description: 'what the proxy was given: mTLS only, mTLS and plaintext, or plaintext' },
            },
          },
        },
      },
    },
  },
} as const;
