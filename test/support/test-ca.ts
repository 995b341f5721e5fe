// A throwaway mesh root and workload certificates for tests (the real CA is meshpilot's own):
// ECDSA P-256, the workload's SPIFFE ID as its one URI SAN, as Istio's CA issues them.
import { ECDSA_P256, subtle, x509 } from '../../src/security/x509.ts';

export interface WorkloadCertificate {
  readonly certPem: string;
  readonly keyPem: string;
  readonly rootPem: string;
}

export interface TestRoot {
  readonly rootPem: string;
  /** A certificate for `spiffeId` signed by this root. */
  issue(spiffeId: string): Promise<WorkloadCertificate>;
}

function pem(label: string, der: ArrayBuffer): string {
  const body = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
}

const HOUR = 3_600_000;

export async function createTestRoot(name = 'meshpilot test root'): Promise<TestRoot> {
  const rootKeys = await subtle.generateKey(ECDSA_P256, true, ['sign', 'verify']);
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    name: `CN=${name}, O=cluster.local`,
    keys: rootKeys,
    notBefore: new Date(Date.now() - HOUR),
    notAfter: new Date(Date.now() + 24 * HOUR),
    signingAlgorithm: ECDSA_P256,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    ],
  });
  const rootPem = root.toString('pem');
  return {
    rootPem,
    async issue(spiffeId) {
      const keys = await subtle.generateKey(ECDSA_P256, true, ['sign', 'verify']);
      const leaf = await x509.X509CertificateGenerator.create({
        subject: '',
        issuer: root.subject,
        publicKey: keys.publicKey,
        signingKey: rootKeys.privateKey,
        notBefore: new Date(Date.now() - HOUR),
        notAfter: new Date(Date.now() + 12 * HOUR),
        signingAlgorithm: ECDSA_P256,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
          new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeId }], true),
        ],
      });
      return { certPem: leaf.toString('pem'), keyPem: pem('PRIVATE KEY', await subtle.exportKey('pkcs8', keys.privateKey)), rootPem };
    },
  };
}
