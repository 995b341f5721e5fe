// The workload's key and CSR, made in this process: the private key is written only to the
// agent's own files and SDS stream, never sent to the CA and never logged.
import { ECDSA_P256, RSA_2048, subtle, x509 } from '../security/x509.ts';

export type KeyType = 'ecdsa-p256' | 'rsa-2048';
export const KEY_TYPES: readonly KeyType[] = ['ecdsa-p256', 'rsa-2048'];

export interface KeyAndCsr {
  /** PKCS#8 PEM. */
  readonly privateKeyPem: string;
  readonly csrPem: string;
}

/** A fresh key pair and a CSR for `spiffeUri` (its only SAN, a URI), signed with that key. */
export async function generateKeyAndCsr(spiffeUri: string, keyType: KeyType = 'ecdsa-p256'): Promise<KeyAndCsr> {
  const algorithm = keyType === 'rsa-2048' ? RSA_2048 : ECDSA_P256;
  const keys = await subtle.generateKey(algorithm, true, ['sign', 'verify']);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    keys,
    signingAlgorithm: algorithm,
    // Istio's CSRs carry no subject name; the identity is the URI SAN alone.
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeUri }], true)],
  });
  const pkcs8 = await subtle.exportKey('pkcs8', keys.privateKey);
  return { privateKeyPem: x509.PemConverter.encode(pkcs8, 'PRIVATE KEY'), csrPem: csr.toString('pem') };
}

/** The parts of a certificate the agent reports and schedules by. */
export interface CertificateFacts {
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly uris: readonly string[];
}

export function certificateFacts(pem: string): CertificateFacts {
  const cert = new x509.X509Certificate(pem);
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  const uris = san ? san.names.items.filter((name) => name.type === 'url').map((name) => name.value) : [];
  return { serial: cert.serialNumber, notBefore: cert.notBefore, notAfter: cert.notAfter, uris };
}

/** Every PEM certificate block in `text`, in order. */
export function splitPemCertificates(text: string): string[] {
  return [...text.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)].map((m) => `${m[0]}\n`);
}
