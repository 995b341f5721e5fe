// A workload's side of Istio's CA API, with @grpc/grpc-js over TLS: make a key and a CSR, call
// CreateCertificate with a token or a client certificate, read the chain back.
import { X509Certificate, type webcrypto } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { CREATE_CERTIFICATE_PATH, caServiceTypes } from '../../src/security/ca-service.ts';
import { ECDSA_P256, RSA_2048, subtle, x509 } from '../../src/security/x509.ts';
import { messageType } from '../../src/xds/protos.ts';
import { encodeDiscoveryRequestJson } from '../../src/xds/server/messages.ts';
import { CLUSTER_TYPE } from '../../src/xds/type-urls.ts';
import { ADS_SOTW_PATH } from './ads-client.ts';
import { rawMethod } from './backends.ts';

export type KeyKind = 'ecdsa-p256' | 'ecdsa-p384' | 'rsa-1024' | 'rsa-2048';

const ALGORITHMS: Record<KeyKind, webcrypto.EcKeyGenParams & { hash: string } | webcrypto.RsaHashedKeyGenParams> = {
  'ecdsa-p256': ECDSA_P256,
  'ecdsa-p384': { name: 'ECDSA', namedCurve: 'P-384', hash: 'SHA-384' },
  'rsa-1024': { ...RSA_2048, modulusLength: 1024 },
  'rsa-2048': RSA_2048,
};

export interface CsrSpec {
  /** SANs as `uri:...` or `dns:...`; none for a CSR without SANs. */
  readonly sans: readonly string[];
  readonly key?: KeyKind;
  /** Ask for a CA certificate (basicConstraints CA:TRUE). */
  readonly ca?: boolean;
}

export interface WorkloadKey {
  readonly csr: string;
  readonly keyPem: string;
}

export async function makeCsr(spec: CsrSpec): Promise<WorkloadKey> {
  const algorithm = ALGORITHMS[spec.key ?? 'ecdsa-p256'];
  const keys = await subtle.generateKey(algorithm, true, ['sign', 'verify']);
  const names = spec.sans.map((san) => {
    const [type = '', ...rest] = san.split(':');
    return { type: type === 'uri' ? ('url' as const) : ('dns' as const), value: rest.join(':') };
  });
  const extensions: x509.Extension[] = [];
  if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names));
  if (spec.ca) extensions.push(new x509.BasicConstraintsExtension(true, undefined, true));
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ keys, signingAlgorithm: algorithm, extensions });
  const pkcs8 = await subtle.exportKey('pkcs8', keys.privateKey);
  return { csr: csr.toString('pem'), keyPem: `${x509.PemConverter.encode(pkcs8, 'PRIVATE KEY')}\n` };
}

export interface CaCallResult {
  readonly code: grpc.status;
  readonly details: string;
  readonly chain: string[];
}

export interface CaCredentials {
  /** The root the client trusts meshpilot's serving certificate by. */
  readonly rootPem: string;
  readonly token?: string;
  /** A client certificate (chain PEM, leaf first) and its key. */
  readonly clientCert?: { readonly chainPem: string; readonly keyPem: string };
}

/** A channel to the secure port as a workload opens it (the serving certificate is checked for `localhost`). */
export function secureClient(port: number, credentials: CaCredentials): grpc.Client {
  const channel = grpc.credentials.createSsl(
    Buffer.from(credentials.rootPem),
    credentials.clientCert ? Buffer.from(credentials.clientCert.keyPem) : null,
    credentials.clientCert ? Buffer.from(credentials.clientCert.chainPem) : null,
  );
  const callCredentials = credentials.token === undefined
    ? undefined
    : grpc.credentials.createFromMetadataGenerator((_params, callback) => {
        const metadata = new grpc.Metadata();
        metadata.set('authorization', `Bearer ${credentials.token ?? ''}`);
        callback(null, metadata);
      });
  return new grpc.Client(`127.0.0.1:${port}`, callCredentials ? grpc.credentials.combineChannelCredentials(channel, callCredentials) : channel, {
    'grpc.ssl_target_name_override': 'localhost',
    'grpc.default_authority': 'localhost',
  });
}

/** One CreateCertificate call; resolves with its status (never rejects on a gRPC error). */
export function createCertificate(client: grpc.Client, request: { csr: string; validityDuration?: number }): Promise<CaCallResult> {
  const { request: requestType, response: responseType } = caServiceTypes();
  const method = rawMethod(CREATE_CERTIFICATE_PATH);
  const bytes = Buffer.from(requestType.encode(requestType.fromObject({ csr: request.csr, validity_duration: request.validityDuration ?? 0 })).finish());
  return new Promise((resolve) => {
    client.makeUnaryRequest(CREATE_CERTIFICATE_PATH, method.requestSerialize, method.responseDeserialize, bytes, { deadline: Date.now() + 10_000 }, (error, response) => {
      if (error) {
        resolve({ code: error.code, details: error.details, chain: [] });
        return;
      }
      const decoded = responseType.toObject(responseType.decode(response ?? Buffer.alloc(0))) as { cert_chain?: string[] };
      resolve({ code: grpc.status.OK, details: '', chain: decoded.cert_chain ?? [] });
    });
  });
}

/** True when every certificate of `chain` (leaf first) is signed by the next, and the last by `rootPem`. */
export function chainVerifies(chain: readonly string[], rootPem: string): boolean {
  const certs = chain.map((pem) => new X509Certificate(pem));
  const root = new X509Certificate(rootPem);
  const last = certs.at(-1);
  if (!last || last.fingerprint256 !== root.fingerprint256) return false;
  return certs.every((cert, index) => {
    const issuer = certs[index + 1] ?? root;
    return cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
  });
}

/** The first answer to a CDS request on ADS over `client`: the response's type and size, or the status that ended the stream. */
export function firstAdsAnswer(client: grpc.Client, nodeId: string): Promise<{ code: grpc.status; details: string; typeUrl?: string; resources?: number }> {
  const method = rawMethod(ADS_SOTW_PATH, true);
  const stream = client.makeBidiStreamRequest(ADS_SOTW_PATH, method.requestSerialize, method.responseDeserialize, { deadline: Date.now() + 10_000 });
  const type = messageType('envoy.service.discovery.v3.DiscoveryResponse');
  return new Promise((resolve) => {
    stream.on('data', (bytes: Buffer) => {
      const response = type.toObject(type.decode(bytes)) as { type_url?: string; resources?: unknown[] };
      resolve({ code: grpc.status.OK, details: '', typeUrl: response.type_url ?? '', resources: response.resources?.length ?? 0 });
      stream.cancel();
    });
    stream.on('error', (error: grpc.ServiceError) => {
      resolve({ code: error.code, details: error.details });
    });
    stream.write(encodeDiscoveryRequestJson({ node: { id: nodeId, user_agent_name: 'meshpilot-test-client' }, type_url: CLUSTER_TYPE, resource_names: [] }));
  });
}
