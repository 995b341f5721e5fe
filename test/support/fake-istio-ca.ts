// A stand-in for meshpilot's CA on 15012, for testing the agent alone: @grpc/grpc-js serving
// IstioCertificateService/CreateCertificate over TLS with a test root. It signs whatever identity
// the CSR asks for, for as long as asked, and records each call (token, identity, client cert).
import type { webcrypto } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { CREATE_CERTIFICATE_PATH, caServiceTypes } from '../../src/security/ca-service.ts';
import { ECDSA_P256, subtle, x509 } from '../../src/security/x509.ts';

export const CA_SERVER_NAME = 'meshpilot.meshpilot-system.svc';

export interface TestKeyPair {
  readonly certPem: string;
  readonly keyPem: string;
}

export interface TestRoot extends TestKeyPair {
  readonly cert: x509.X509Certificate;
  readonly keys: webcrypto.CryptoKeyPair;
}

async function pkcs8Pem(key: webcrypto.CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

export async function createTestRoot(name = 'meshpilot test root'): Promise<TestRoot> {
  const keys = await subtle.generateKey(ECDSA_P256, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: `CN=${name}, O=cluster.local`,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
    keys,
    signingAlgorithm: ECDSA_P256,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true)],
  });
  return { cert, keys, certPem: cert.toString('pem'), keyPem: await pkcs8Pem(keys.privateKey) };
}

/** A leaf signed by `root` for `publicKey`, with these SANs, valid for `seconds`. */
export async function signLeaf(root: TestRoot, publicKey: webcrypto.CryptoKey | x509.PublicKey, sans: x509.JsonGeneralName[], seconds: number): Promise<string> {
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString('hex').replace(/^[89a-f]/, '1'),
    subject: 'O=cluster.local',
    issuer: root.cert.subject,
    notBefore: new Date(now - 1000),
    notAfter: new Date(now + seconds * 1000),
    signingKey: root.keys.privateKey,
    publicKey,
    signingAlgorithm: ECDSA_P256,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension(sans, true),
    ],
  });
  return cert.toString('pem');
}

/** A key and a certificate signed by `root` for these SANs (a server's, or a test client's). */
export async function issueTestPair(root: TestRoot, sans: x509.JsonGeneralName[], seconds = 3600): Promise<TestKeyPair> {
  const keys = await subtle.generateKey(ECDSA_P256, true, ['sign', 'verify']);
  return { certPem: await signLeaf(root, keys.publicKey, sans, seconds), keyPem: await pkcs8Pem(keys.privateKey) };
}

export interface CaCall {
  readonly token: string | undefined;
  readonly identities: readonly string[];
  readonly validitySeconds: number;
  /** The SPIFFE ID in the TLS client certificate the caller presented, if any. */
  readonly clientIdentity: string | undefined;
  readonly csrPem: string;
}

export interface FakeCa {
  readonly port: number;
  readonly address: string;
  readonly root: TestRoot;
  /** The root as a file, as the istio-ca-root-cert ConfigMap is mounted. */
  readonly rootFile: string;
  readonly calls: CaCall[];
  /** Makes the next calls fail with this status, or never answer ('stall'); undefined: answer again. */
  failWith(status: { code: grpc.status; message: string } | 'stall' | undefined): void;
  /** Shortens every certificate to at most this many seconds (the agent asks for 24 h). */
  capValidity(seconds: number | undefined): void;
  close(): Promise<void>;
}

function uriSans(names: x509.GeneralNames | undefined): string[] {
  return names ? names.items.filter((name) => name.type === 'url').map((name) => name.value) : [];
}

export async function startFakeCa(): Promise<FakeCa> {
  const root = await createTestRoot();
  const serving = await issueTestPair(root, [{ type: 'dns', value: CA_SERVER_NAME }]);
  const dir = await mkdtemp(join(tmpdir(), 'meshpilot-fake-ca-'));
  const rootFile = join(dir, 'root-cert.pem');
  await writeFile(rootFile, root.certPem);
  const { request: requestType, response: responseType } = caServiceTypes();
  const calls: CaCall[] = [];
  let failure: { code: grpc.status; message: string } | 'stall' | undefined;
  let cap: number | undefined;
  const server = new grpc.Server();
  server.addService({
    CreateCertificate: {
      path: CREATE_CERTIFICATE_PATH,
      requestStream: false,
      responseStream: false,
      requestSerialize: (value: unknown) => Buffer.from(requestType.encode(requestType.fromObject(value as object)).finish()),
      requestDeserialize: (bytes: Buffer) => requestType.toObject(requestType.decode(bytes), { longs: Number }),
      responseSerialize: (value: unknown) => Buffer.from(responseType.encode(responseType.fromObject(value as object)).finish()),
      responseDeserialize: (bytes: Buffer) => responseType.toObject(responseType.decode(bytes)),
    },
  }, {
    CreateCertificate: (call: grpc.ServerUnaryCall<{ csr: string; validity_duration: number }, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      void (async () => {
        const auth = call.metadata.get('authorization')[0];
        const token = typeof auth === 'string' && auth.startsWith('Bearer ') ? auth.slice(7) : undefined;
        const peer = call.getAuthContext().sslPeerCertificate;
        const clientIdentity = peer?.subjectaltname?.split(', ').find((san) => san.startsWith('URI:'))?.slice(4);
        const csr = new x509.Pkcs10CertificateRequest(call.request.csr);
        const san = csr.extensions.find((ext): ext is x509.SubjectAlternativeNameExtension => ext instanceof x509.SubjectAlternativeNameExtension);
        const identities = uriSans(san?.names);
        calls.push({ token, identities, validitySeconds: call.request.validity_duration, clientIdentity, csrPem: call.request.csr });
        if (failure === 'stall') return;
        if (failure) {
          callback({ code: failure.code, details: failure.message });
          return;
        }
        if (!(await csr.verify())) {
          callback({ code: grpc.status.INVALID_ARGUMENT, details: 'the CSR signature does not verify' });
          return;
        }
        const seconds = Math.min(call.request.validity_duration, cap ?? Infinity);
        const leaf = await signLeaf(root, csr.publicKey, identities.map((value) => ({ type: 'url' as const, value })), seconds);
        callback(null, { cert_chain: [leaf, root.certPem] });
      })().catch((error: unknown) => {
        callback({ code: grpc.status.INTERNAL, details: String(error) });
      });
    },
  });
  // Asks for a client certificate without requiring one (as the CA does: a renewal may present one).
  await writeFile(join(dir, 'serving-cert.pem'), serving.certPem);
  await writeFile(join(dir, 'serving-key.pem'), serving.keyPem);
  const files = new grpc.experimental.FileWatcherCertificateProvider({ certificateFile: join(dir, 'serving-cert.pem'), privateKeyFile: join(dir, 'serving-key.pem'), caCertificateFile: rootFile, refreshIntervalMs: 60_000 });
  const credentials = grpc.experimental.createCertificateProviderServerCredentials(files, files, false);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', credentials, (error, bound) => {
      if (error) reject(error);
      else resolve(bound);
    });
  });
  return {
    port,
    address: `127.0.0.1:${port}`,
    root,
    rootFile,
    calls,
    failWith: (status) => {
      failure = status;
    },
    capValidity: (seconds) => {
      cap = seconds;
    },
    close: async () => {
      await new Promise<void>((resolve) => {
        server.tryShutdown(() => {
          resolve();
        });
      });
      server.forceShutdown();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
