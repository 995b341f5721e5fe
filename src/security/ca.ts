// The certificate authority: signs short-lived leaf certificates for SPIFFE identities (and
// meshpilot's own serving certificate), from a plugged-in intermediate or a self-signed root.
// It keeps a bounded record of what it issued for operators.
import { X509Certificate, generateKeyPairSync, type KeyObject, type webcrypto } from 'node:crypto';
import type { CaMaterial } from './ca-material.ts';
import { randomSerial } from './ca-material.ts';
import { checkCsr } from './csr.ts';
import { subtle, x509 } from './x509.ts';

export interface CaOptions {
  /** SPIFFE trust domain: identities are `spiffe://<trustDomain>/ns/<ns>/sa/<sa>`. */
  readonly trustDomain: string;
  /** Lifetime when a request asks for none (Istio: 24 h). */
  readonly defaultTtlMs: number;
  /** Longest lifetime a request may ask for (Istio: 90 days). */
  readonly maxTtlMs: number;
  /** notBefore is set this far in the past, so a peer whose clock is behind still accepts the certificate. */
  readonly clockSkewMs: number;
  /** Issued certificates remembered for /debug/certs (oldest forgotten first). */
  readonly recordLimit: number;
}

export const DEFAULT_CA_OPTIONS: CaOptions = {
  trustDomain: 'cluster.local',
  defaultTtlMs: 24 * 3_600_000,
  maxTtlMs: 90 * 24 * 3_600_000,
  clockSkewMs: 2 * 60_000,
  recordLimit: 10_000,
};

/** One certificate the CA signed. */
export interface IssuedRecord {
  readonly serial: string;
  /** The SPIFFE ID, or the DNS names of a serving certificate. */
  readonly identity: string;
  readonly keyType: string;
  readonly notBefore: string;
  readonly notAfter: string;
}

/** A request refused before signing: an invalid TTL. CSR problems are CsrRefused. */
export class TtlRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TtlRefused';
  }
}

type SigningAlgorithm = (webcrypto.EcdsaParams & webcrypto.EcKeyImportParams) | webcrypto.RsaHashedImportParams;

function signingAlgorithmOf(key: KeyObject): SigningAlgorithm {
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'rsa') return { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
  if (key.asymmetricKeyType === 'ec' && details.namedCurve === 'prime256v1') return { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  if (key.asymmetricKeyType === 'ec' && details.namedCurve === 'secp384r1') return { name: 'ECDSA', namedCurve: 'P-384', hash: 'SHA-384' };
  throw new Error(`a CA key of type ${key.asymmetricKeyType ?? '?'} ${details.namedCurve ?? ''} cannot sign; use ECDSA P-256/P-384 or RSA`);
}

/** A PEM block ending in a newline, so blocks concatenate into a valid bundle. */
const pemLine = (pem: string): string => (pem.endsWith('\n') ? pem : `${pem}\n`);

export class CertificateAuthority {
  readonly options: CaOptions;
  readonly material: CaMaterial;
  readonly #signingKey: webcrypto.CryptoKey;
  readonly #algorithm: SigningAlgorithm;
  readonly #issuer: x509.X509Certificate;
  readonly #authorityKeyId: x509.AuthorityKeyIdentifierExtension;
  readonly #records = new Map<string, IssuedRecord>();
  #signed = 0;

  private constructor(material: CaMaterial, options: CaOptions, signingKey: webcrypto.CryptoKey, algorithm: SigningAlgorithm, authorityKeyId: x509.AuthorityKeyIdentifierExtension) {
    this.material = material;
    this.options = options;
    this.#signingKey = signingKey;
    this.#algorithm = algorithm;
    this.#issuer = new x509.X509Certificate(material.signingCert.raw);
    this.#authorityKeyId = authorityKeyId;
  }

  static async create(material: CaMaterial, options: Partial<CaOptions> = {}): Promise<CertificateAuthority> {
    const algorithm = signingAlgorithmOf(material.signingKey);
    const pkcs8 = material.signingKey.export({ type: 'pkcs8', format: 'der' });
    const signingKey = await subtle.importKey('pkcs8', pkcs8, algorithm, false, ['sign']);
    const authorityKeyId = await x509.AuthorityKeyIdentifierExtension.create(new x509.X509Certificate(material.signingCert.raw));
    return new CertificateAuthority(material, { ...DEFAULT_CA_OPTIONS, ...options }, signingKey, algorithm, authorityKeyId);
  }

  get trustDomain(): string {
    return this.options.trustDomain;
  }

  /** The root every workload trusts (PEM). */
  get rootPem(): string {
    return pemLine(this.material.root.toString());
  }

  /** When the root expires. */
  get rootNotAfter(): Date {
    return new Date(this.material.root.validTo);
  }

  /** Certificates signed since start. */
  get signedCount(): number {
    return this.#signed;
  }

  /** The lifetime a request gets: 0 or absent is the default; negative or above the maximum is refused. */
  ttlFor(requestedSeconds: number | undefined): number {
    if (requestedSeconds === undefined || requestedSeconds === 0) return this.options.defaultTtlMs;
    if (!Number.isFinite(requestedSeconds) || requestedSeconds < 0) throw new TtlRefused(`validity_duration ${requestedSeconds} s is negative; ask for a positive number of seconds, or 0 for the default`);
    if (requestedSeconds * 1000 > this.options.maxTtlMs) {
      throw new TtlRefused(`validity_duration ${requestedSeconds} s is longer than this CA's maximum of ${this.options.maxTtlMs / 1000} s (--ca-max-ttl)`);
    }
    return requestedSeconds * 1000;
  }

  /**
   * Signs the CSR for `identity` (the authenticated caller's SPIFFE ID) and returns the chain,
   * leaf first, root last. Throws CsrRefused or TtlRefused; nothing is signed then.
   */
  async sign(csrPem: string, identity: string, requestedTtlSeconds?: number): Promise<string[]> {
    const ttlMs = this.ttlFor(requestedTtlSeconds);
    const csr = await checkCsr(csrPem, identity);
    const leaf = await this.#issue(csr.publicKey, [{ type: 'url', value: identity }], ttlMs);
    this.#remember(leaf, identity, csr.keyType);
    return this.chainFor(leaf.toString('pem'));
  }

  /** A certificate for meshpilot itself (serving 15012): a new ECDSA P-256 key, the DNS names as SANs. */
  async issueServing(dnsNames: readonly string[], ttlMs: number): Promise<{ chain: string[]; keyPem: string; notAfter: Date }> {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const spki = publicKey.export({ type: 'spki', format: 'der' });
    const leaf = await this.#issue(new x509.PublicKey(spki), dnsNames.map((value) => ({ type: 'dns' as const, value })), ttlMs);
    this.#remember(leaf, dnsNames.join(','), 'ECDSA P-256');
    return { chain: this.chainFor(leaf.toString('pem')), keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, notAfter: leaf.notAfter };
  }

  /** `leaf`, the signing certificate and intermediates (a plugged-in CA), then the root. */
  chainFor(leafPem: string): string[] {
    const upward = this.material.kind === 'self-signed' ? [] : [this.material.signingCert.toString(), ...this.material.intermediates];
    return [leafPem, ...upward, this.rootPem].map(pemLine);
  }

  /** The SPIFFE ID of a client certificate this CA issued and the TLS layer verified; undefined otherwise. */
  identityOf(certificate: X509Certificate): string | undefined {
    const uris = (certificate.subjectAltName ?? '').split(', ').filter((name) => name.startsWith('URI:'));
    const uri = uris.length === 1 ? uris[0]?.slice('URI:'.length) : undefined;
    return uri?.startsWith(`spiffe://${this.options.trustDomain}/`) ? uri : undefined;
  }

  /** What was issued, newest last (bounded by recordLimit). */
  issued(): IssuedRecord[] {
    return [...this.#records.values()];
  }

  async #issue(publicKey: x509.PublicKey, names: x509.JsonGeneralName[], ttlMs: number): Promise<x509.X509Certificate> {
    const now = Date.now();
    const notAfter = Math.min(now + ttlMs, this.#issuer.notAfter.getTime());
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: randomSerial(),
      // Istio's workload certificates have an empty subject: the identity is the SAN, marked critical.
      subject: '',
      issuer: this.#issuer.subjectName.toString(),
      notBefore: new Date(now - this.options.clockSkewMs),
      notAfter: new Date(notAfter),
      publicKey,
      signingKey: this.#signingKey,
      signingAlgorithm: this.#algorithm,
      extensions: [
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
        new x509.BasicConstraintsExtension(false, undefined, true),
        this.#authorityKeyId,
        new x509.SubjectAlternativeNameExtension(names, true),
      ],
    });
    this.#signed++;
    return cert;
  }

  #remember(cert: x509.X509Certificate, identity: string, keyType: string): void {
    this.#records.set(cert.serialNumber, { serial: cert.serialNumber, identity, keyType, notBefore: cert.notBefore.toISOString(), notAfter: cert.notAfter.toISOString() });
    for (const serial of this.#records.keys()) {
      if (this.#records.size <= this.options.recordLimit) break;
      this.#records.delete(serial);
    }
  }
}
