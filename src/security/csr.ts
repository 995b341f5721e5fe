// What a certificate signing request may be: a public key meshpilot accepts, a valid signature,
// exactly one URI SAN (the caller's SPIFFE ID), no CA request, a bounded size. Only the public
// key is used; everything else in the certificate comes from the CA.
import { createPublicKey } from 'node:crypto';
import { x509 } from './x509.ts';

/** Istio bounds nothing explicitly; 64 KiB is far above any real CSR (an RSA 4096 one is ~2 KiB). */
export const MAX_CSR_BYTES = 64 * 1024;

/** Why a CSR was refused: `identity` is a SAN that is not the caller's (PERMISSION_DENIED), the rest are INVALID_ARGUMENT. */
export type CsrProblem = 'malformed' | 'too-large' | 'signature' | 'key' | 'san' | 'ca' | 'identity';

export class CsrRefused extends Error {
  readonly problem: CsrProblem;
  constructor(problem: CsrProblem, message: string) {
    super(message);
    this.name = 'CsrRefused';
    this.problem = problem;
  }
}

export interface CheckedCsr {
  readonly publicKey: x509.PublicKey;
  /** `ECDSA P-256` or `RSA 2048`, for the record and logs. */
  readonly keyType: string;
}

const EXTENSION_REQUEST = '1.2.840.113549.1.9.14';

function keyTypeOf(spki: ArrayBuffer): string {
  const key = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'ec') {
    if (details.namedCurve === 'prime256v1') return 'ECDSA P-256';
    throw new CsrRefused('key', `the key is ECDSA on ${details.namedCurve ?? 'an unknown curve'}; use ECDSA P-256 or RSA 2048`);
  }
  if (key.asymmetricKeyType === 'rsa') {
    const bits = details.modulusLength ?? 0;
    if (bits >= 2048 && bits <= 4096) return `RSA ${bits}`;
    throw new CsrRefused('key', `the key is RSA ${bits}; RSA keys must have 2048 to 4096 bits (ECDSA P-256 is the default)`);
  }
  throw new CsrRefused('key', `the key type ${key.asymmetricKeyType ?? 'unknown'} is not accepted; use ECDSA P-256 or RSA 2048`);
}

/** Checks `pem` as a request for exactly `identity`; throws CsrRefused saying why not. */
export async function checkCsr(pem: string, identity: string): Promise<CheckedCsr> {
  if (Buffer.byteLength(pem) > MAX_CSR_BYTES) throw new CsrRefused('too-large', `the CSR is ${Buffer.byteLength(pem)} bytes; at most ${MAX_CSR_BYTES} are accepted`);
  if (!/^\s*-----BEGIN (NEW )?CERTIFICATE REQUEST-----/.test(pem)) throw new CsrRefused('malformed', 'the csr field is not a PEM certificate request (-----BEGIN CERTIFICATE REQUEST-----)');
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(pem);
  } catch (error) {
    throw new CsrRefused('malformed', `the CSR cannot be parsed (${error instanceof Error ? error.message : String(error)})`);
  }
  const keyType = keyTypeOf(csr.publicKey.rawData);
  const signed = await csr.verify().catch(() => false);
  if (!signed) throw new CsrRefused('signature', "the CSR's signature does not verify with its own public key");
  const constraints = csr.extensions.find((e): e is x509.BasicConstraintsExtension => e instanceof x509.BasicConstraintsExtension);
  if (constraints?.ca) throw new CsrRefused('ca', 'the CSR asks for a CA certificate (basicConstraints CA:TRUE); workloads get leaf certificates only');
  const requests = csr.attributes.filter((a) => a.type === EXTENSION_REQUEST).length;
  if (requests > 1) throw new CsrRefused('malformed', 'the CSR has more than one extensionRequest attribute');
  const sans = csr.extensions.filter((e): e is x509.SubjectAlternativeNameExtension => e instanceof x509.SubjectAlternativeNameExtension);
  const names = sans.flatMap((san) => san.names.items);
  if (names.length !== 1 || names[0]?.type !== 'url') {
    const described = names.map((n) => `${n.type}:${n.value}`).join(', ') || 'none';
    throw new CsrRefused('san', `the CSR must carry exactly one URI SAN (the SPIFFE ID ${identity}); it has ${described.slice(0, 300)}`);
  }
  if (names[0].value !== identity) {
    throw new CsrRefused('identity', `the CSR asks for ${names[0].value.slice(0, 200)}, but the caller is ${identity}`);
  }
  return { publicKey: csr.publicKey, keyType };
}
