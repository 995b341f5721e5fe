// Kubernetes Secrets as TLS credentials (Istio's credentials/kube ExtractCertInfo and ExtractRoot):
// `kubernetes.io/tls` (tls.crt, tls.key, optional ca.crt) and generic Secrets (cert, key, cacert).
// Every PEM block is parsed and the key must match the certificate; a problem names the field and
// never echoes the material. Secrets that hold no TLS keys (tokens, registry logins) are not read.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import type { TlsCredential } from '../model/credentials.ts';
import type { ValidationIssue } from '../model/rules.ts';
import type { Fields, ObjectMeta } from './object-fields.ts';
import { isFields, stringField } from './object-fields.ts';
import type { ParsedObject, SourcedObject } from './parsed-object.ts';
import { objectKey, ObjectProblems, rejectedObject, requireName } from './parsed-object.ts';

const TLS_CERT = 'tls.crt';
const TLS_KEY = 'tls.key';
const TLS_CA = 'ca.crt';
const GENERIC_CERT = 'cert';
const GENERIC_KEY = 'key';
const GENERIC_CA = 'cacert';
const CREDENTIAL_KEYS = [TLS_CERT, TLS_KEY, TLS_CA, GENERIC_CERT, GENERIC_KEY, GENERIC_CA];

/** Secret types that are never TLS credentials, though some carry a ca.crt. */
const OTHER_TYPES = new Set([
  'kubernetes.io/service-account-token',
  'kubernetes.io/dockercfg',
  'kubernetes.io/dockerconfigjson',
  'kubernetes.io/basic-auth',
  'kubernetes.io/ssh-auth',
  'bootstrap.kubernetes.io/token',
  'helm.sh/release.v1',
]);

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Each key's text: `data` decoded from base64, `stringData` as written (it wins, as Kubernetes merges it). */
function readData(object: Fields, problems: ObjectProblems): Map<string, string> {
  const values = new Map<string, string>();
  const data = object['data'];
  if (data !== undefined && data !== null) {
    if (!isFields(data)) problems.error('data', 'must be a map of base64 strings', 'MP_SECRET_INVALID');
    else {
      for (const [key, value] of Object.entries(data)) {
        if (!CREDENTIAL_KEYS.includes(key)) continue;
        const text = typeof value === 'string' ? value.replace(/\s+/g, '') : undefined;
        if (text === undefined || text.length % 4 !== 0 || !BASE64.test(text)) {
          problems.error(`data.${key}`, 'is not base64: data values are base64-encoded (or write the PEM under stringData)', 'MP_SECRET_INVALID');
          continue;
        }
        values.set(key, Buffer.from(text, 'base64').toString('utf8'));
      }
    }
  }
  const stringData = object['stringData'];
  if (isFields(stringData)) {
    for (const [key, value] of Object.entries(stringData)) if (CREDENTIAL_KEYS.includes(key) && typeof value === 'string') values.set(key, value);
  }
  return values;
}

function fieldPath(object: Fields, key: string): string {
  return isFields(object['stringData']) && typeof object['stringData'][key] === 'string' ? `stringData.${key}` : `data.${key}`;
}

/** The certificates of a PEM bundle, or why it is not one. */
function parseCertificates(pem: string): { certificates: X509Certificate[] } | { problem: string } {
  const blocks = pem.match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) return { problem: 'is not PEM: it has no "-----BEGIN CERTIFICATE-----" block' };
  const certificates: X509Certificate[] = [];
  for (const [index, block] of blocks.entries()) {
    try {
      certificates.push(new X509Certificate(block));
    } catch {
      return { problem: `certificate ${String(index + 1)} of ${String(blocks.length)} is not a valid X.509 certificate` };
    }
  }
  return { certificates };
}

/** Istio's choice of keys: `cert`/`key` when both have values, else `tls.crt`/`tls.key`. */
function pairKeys(values: ReadonlyMap<string, string>): { cert: string; key: string } | undefined {
  const has = (key: string): boolean => (values.get(key) ?? '') !== '';
  if (has(GENERIC_CERT) && has(GENERIC_KEY)) return { cert: GENERIC_CERT, key: GENERIC_KEY };
  if (has(TLS_CERT) && has(TLS_KEY)) return { cert: TLS_CERT, key: TLS_KEY };
  return undefined;
}

function expiryWarning(certificate: X509Certificate, path: string, now: number): ValidationIssue | undefined {
  const [from, to] = [Date.parse(certificate.validFrom), Date.parse(certificate.validTo)];
  if (now <= to && now >= from) return undefined;
  const what = now > to ? `expired at ${new Date(to).toISOString()}` : `is not valid before ${new Date(from).toISOString()}`;
  return { code: 'MP_SECRET_INVALID', severity: 'warning', path, message: `its certificate ${what}: it is served as Istio serves it, and clients will refuse it; renew the Secret` };
}

export function parseSecret(input: SourcedObject, object: Fields, kind: string, meta: ObjectMeta): ParsedObject {
  const type = stringField(object, 'type') ?? 'Opaque';
  const dataKeys = [...Object.keys(isFields(object['data']) ? object['data'] : {}), ...Object.keys(isFields(object['stringData']) ? object['stringData'] : {})];
  if (OTHER_TYPES.has(type) || (type !== 'kubernetes.io/tls' && !dataKeys.some((key) => CREDENTIAL_KEYS.includes(key)))) {
    return { type: 'ignored', source: input.source, reason: 'v1 Secret (not a TLS credential)' };
  }
  const problems = new ObjectProblems();
  requireName(meta, problems, 'Secret');
  const values = readData(object, problems);
  const pair = pairKeys(values);
  const caKey = (values.get(GENERIC_CA) ?? '') !== '' ? GENERIC_CA : (values.get(TLS_CA) ?? '') !== '' ? TLS_CA : undefined;
  if (!problems.hasErrors() && !pair && !caKey) {
    const present = CREDENTIAL_KEYS.filter((key) => values.has(key));
    const found = present.length > 0 ? `found only ${present.join(', ')}${present.some((key) => values.get(key) === '') ? ' (some empty)' : ''}` : 'found none';
    problems.error(type === 'kubernetes.io/tls' ? 'data.tls.crt' : 'data', `a TLS Secret needs tls.crt and tls.key (or cert and key), or a CA in ca.crt (or cacert); ${found}`, 'MP_SECRET_INVALID');
  }
  const credential: { certificateChain?: string; privateKey?: string; caCertificates?: string; fingerprint?: string } = {};
  const now = Date.now();
  if (pair && !problems.hasErrors()) {
    const chainPem = values.get(pair.cert) ?? '';
    const keyPem = values.get(pair.key) ?? '';
    const [certPath, keyPath] = [fieldPath(object, pair.cert), fieldPath(object, pair.key)];
    const chain = parseCertificates(chainPem);
    if ('problem' in chain) problems.error(certPath, chain.problem, 'MP_SECRET_INVALID');
    let key: ReturnType<typeof createPrivateKey> | undefined;
    try {
      key = createPrivateKey(keyPem);
    } catch {
      problems.error(keyPath, 'is not a PEM private key (PKCS#8, PKCS#1 or SEC1)', 'MP_SECRET_INVALID');
    }
    const leaf = 'certificates' in chain ? chain.certificates[0] : undefined;
    if (leaf && key) {
      if (!leaf.checkPrivateKey(key)) problems.error(keyPath, `does not match the certificate in ${certPath} (its public key is another key's)`, 'MP_SECRET_INVALID');
      const expiry = expiryWarning(leaf, certPath, now);
      if (expiry) problems.issues.push(expiry);
      credential.certificateChain = chainPem;
      credential.privateKey = keyPem;
      credential.fingerprint = leaf.fingerprint256;
    }
  }
  if (caKey && !problems.hasErrors()) {
    const caPem = values.get(caKey) ?? '';
    const bundle = parseCertificates(caPem);
    if ('problem' in bundle) problems.error(fieldPath(object, caKey), bundle.problem, 'MP_SECRET_INVALID');
    else credential.caCertificates = caPem;
  }
  if (problems.hasErrors() || meta.name === undefined) return rejectedObject(input, kind, meta, problems.issues);
  const parsed: TlsCredential = { namespace: meta.namespace, name: meta.name, source: input.source, ...credential };
  const warnings = problems.warnings();
  return { type: 'credential', key: objectKey(kind, meta.namespace, meta.name), source: input.source, credential: parsed, ...(warnings.length > 0 ? { warnings } : {}) };
}
