// The CA's key material: a plugged-in intermediate (Istio's `cacerts`: ca-cert.pem, ca-key.pem,
// root-cert.pem, cert-chain.pem) checked file by file, or a self-signed root made once. Each
// refusal is one line naming the file and why, so an operator knows what to fix.
import { X509Certificate, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { MeshpilotError } from '../errors.ts';
import { ECDSA_P256, subtle, x509 } from './x509.ts';

/** Istio's plug-in CA file names (the keys of the Secret `cacerts`, the files of --ca-dir). */
export const CA_CERT_FILE = 'ca-cert.pem';
export const CA_KEY_FILE = 'ca-key.pem';
export const CA_ROOT_FILE = 'root-cert.pem';
export const CA_CHAIN_FILE = 'cert-chain.pem';

/** The certificate that signs, its key, the intermediates above it, and the root everyone trusts. */
export interface CaMaterial {
  readonly signingCert: X509Certificate;
  readonly signingKey: KeyObject;
  /** Certificates between the signing certificate and the root (PEM), nearest first. */
  readonly intermediates: readonly string[];
  readonly root: X509Certificate;
  /** plugged-in (a company's intermediate) or self-signed (meshpilot's own root). */
  readonly kind: 'plugged-in' | 'self-signed';
  /** Where it came from, for logs: a directory or a Secret. */
  readonly origin: string;
}

/** One file's text and the name it is reported by (a path, or `Secret ns/cacerts key ca-cert.pem`). */
export interface NamedPem {
  readonly name: string;
  readonly text: string;
}

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function refuse(name: string, why: string): never {
  throw new MeshpilotError('MP_CA_PLUGIN_INVALID', `${name}: ${why}`);
}

/** Every certificate in a PEM file, in order; refuses a file with none or a broken one. */
export function certificatesOf(file: NamedPem): X509Certificate[] {
  const blocks = file.text.match(PEM_BLOCK) ?? [];
  if (blocks.length === 0) refuse(file.name, 'holds no PEM certificate');
  return blocks.map((block, index) => {
    try {
      return new X509Certificate(block);
    } catch (error) {
      return refuse(file.name, `certificate ${index + 1} is not valid X.509 (${error instanceof Error ? error.message : String(error)})`);
    }
  });
}

function checkValidNow(file: NamedPem, cert: X509Certificate, now: Date): void {
  if (new Date(cert.validTo) <= now) refuse(file.name, `the certificate expired on ${new Date(cert.validTo).toISOString()}`);
  if (new Date(cert.validFrom) > now) refuse(file.name, `the certificate is not valid before ${new Date(cert.validFrom).toISOString()}`);
}

function privateKeyOf(file: NamedPem): KeyObject {
  try {
    return createPrivateKey(file.text);
  } catch (error) {
    return refuse(file.name, `is not a PEM private key (${error instanceof Error ? error.message : String(error)})`);
  }
}

const spki = (key: KeyObject): Buffer => key.export({ type: 'spki', format: 'der' });

/** True when `key` is the private half of `cert`'s public key. */
export function keyMatches(cert: X509Certificate, key: KeyObject): boolean {
  return spki(createPublicKey(key)).equals(spki(cert.publicKey));
}

/** Checks the four plug-in files as Istio's CA does, refusing with the first problem found. */
export function pluggedInMaterial(files: { caCert: NamedPem; caKey: NamedPem; rootCert: NamedPem; certChain: NamedPem }, origin: string, now = new Date()): CaMaterial {
  const [signingCert] = certificatesOf(files.caCert);
  if (!signingCert) return refuse(files.caCert.name, 'holds no certificate');
  checkValidNow(files.caCert, signingCert, now);
  if (!signingCert.ca) refuse(files.caCert.name, 'the certificate is not a CA (basicConstraints CA:TRUE is missing)');
  const signingKey = privateKeyOf(files.caKey);
  if (!keyMatches(signingCert, signingKey)) refuse(files.caKey.name, `the key does not match the certificate in ${files.caCert.name}`);
  const [root] = certificatesOf(files.rootCert);
  if (!root) return refuse(files.rootCert.name, 'holds no certificate');
  checkValidNow(files.rootCert, root, now);
  const chain = certificatesOf(files.certChain);
  for (const cert of chain) checkValidNow(files.certChain, cert, now);
  // cert-chain.pem may or may not repeat the signing certificate and the root; keep what lies between.
  const between = chain.filter((cert) => cert.fingerprint256 !== signingCert.fingerprint256 && cert.fingerprint256 !== root.fingerprint256);
  const path = [signingCert, ...between, root];
  for (let i = 0; i + 1 < path.length; i++) {
    const child = path[i] as X509Certificate;
    const parent = path[i + 1] as X509Certificate;
    if (!child.checkIssued(parent) || !child.verify(parent.publicKey)) {
      const childName = i === 0 ? files.caCert.name : files.certChain.name;
      refuse(childName, `${child.subject.replace(/\n/g, ', ') || 'a certificate'} is not signed by ${parent.subject.replace(/\n/g, ', ') || 'the next certificate'} (${i + 1 === path.length - 1 ? files.rootCert.name : files.certChain.name})`);
    }
  }
  return { signingCert, signingKey, intermediates: between.map((cert) => cert.toString()), root, kind: 'plugged-in', origin };
}

/** A stored self-signed root (its certificate and key PEMs), checked like a plug-in. */
export function selfSignedMaterial(cert: NamedPem, key: NamedPem, origin: string, now = new Date()): CaMaterial {
  const refuseRoot = (name: string, why: string): never => {
    throw new MeshpilotError('MP_CA_ROOT_UNAVAILABLE', `${name}: ${why}`);
  };
  let root: X509Certificate;
  let signingKey: KeyObject;
  try {
    [root] = certificatesOf(cert) as [X509Certificate];
    signingKey = privateKeyOf(key);
  } catch (error) {
    return refuseRoot(cert.name, error instanceof Error ? error.message.replace(/^MP_CA_PLUGIN_INVALID: /, '') : String(error));
  }
  if (new Date(root.validTo) <= now) refuseRoot(cert.name, `the stored root expired on ${new Date(root.validTo).toISOString()}; remove it to have a new one made`);
  if (!keyMatches(root, signingKey)) refuseRoot(key.name, `the key does not match the certificate in ${cert.name}`);
  return { signingCert: root, signingKey, intermediates: [], root, kind: 'self-signed', origin };
}

/** How long a self-signed root lives (Istio: 10 years). */
export const ROOT_TTL_MS = 10 * 365 * 24 * 3_600_000;

/** A new self-signed ECDSA P-256 root for `trustDomain`, as PEM certificate and PKCS#8 key. */
export async function createSelfSignedRoot(trustDomain: string, now = new Date()): Promise<{ certPem: string; keyPem: string }> {
  const keys = await subtle.generateKey(ECDSA_P256, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `O=${trustDomain}`,
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + ROOT_TTL_MS),
    keys,
    signingAlgorithm: ECDSA_P256,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const pkcs8 = await subtle.exportKey('pkcs8', keys.privateKey);
  const keyPem = x509.PemConverter.encode(pkcs8, 'PRIVATE KEY');
  return { certPem: `${cert.toString('pem')}\n`, keyPem: `${keyPem}\n` };
}

/** A positive 128-bit serial number in hex (RFC 5280: at most 20 octets, positive). */
export function randomSerial(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x01;
  return Buffer.from(bytes).toString('hex');
}
