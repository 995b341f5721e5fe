// TLS credentials from Kubernetes Secrets (Istio's credentials controller): what a gateway's
// `credentialName` names, resolved as Istio resolves SDS resource names. Plain data, no I/O.
import type { SourceRef } from './service.ts';

/** A Secret that holds a certificate and key, a CA bundle, or both; the PEM is checked by the source. */
export interface TlsCredential {
  readonly namespace: string;
  readonly name: string;
  readonly source: SourceRef;
  /** `tls.crt` or `cert`, with `privateKey` (`tls.key` or `key`). */
  readonly certificateChain?: string;
  readonly privateKey?: string;
  /** `ca.crt` or `cacert`: the CA that client certificates must chain to (MUTUAL). */
  readonly caCertificates?: string;
  /** The SHA-256 fingerprint of the leaf certificate, what logs and views show instead of the material. */
  readonly fingerprint?: string;
  /**
   * Namespaces whose Gateway API Gateways a ReferenceGrant in this Secret's namespace lets refer
   * to it: their gateways may read it as `kubernetes-gateway://<namespace>/<name>`.
   */
  readonly gatewayReaders?: readonly string[];
}

/** Istio's SDS prefix for a Kubernetes Secret; a name after it may be `name` or `namespace/name`. */
export const KUBERNETES_SECRET_PREFIX = 'kubernetes://';
/** Istio's prefix for a Gateway API listener's certificateRef: always `namespace/name`. */
export const GATEWAY_API_SECRET_PREFIX = 'kubernetes-gateway://';
/** The SDS name of a credential's CA bundle (the Secret's ca.crt, or a `<name>-cacert` Secret). */
export const CA_SECRET_SUFFIX = '-cacert';

/**
 * Istio's credentials.ToResourceName: the SDS name of a `credentialName` (a bare name is a Secret
 * in the gateway's namespace); `builtin://` is the workload certificate, `undefined` here.
 */
export function credentialResourceName(credentialName: string): string | undefined {
  if (credentialName.startsWith('builtin://')) return undefined;
  return /^(kubernetes|kubernetes-gateway|configmap|invalid):\/\//.test(credentialName) ? credentialName : `${KUBERNETES_SECRET_PREFIX}${credentialName}`;
}

/** Every SDS name under which a proxy may ask for Secret `namespace/name` (its certificate, its CA). */
export function credentialResourceNames(namespace: string, name: string): string[] {
  const names = [name, `${namespace}/${name}`, `${name}${CA_SECRET_SUFFIX}`, `${namespace}/${name}${CA_SECRET_SUFFIX}`].map((n) => `${KUBERNETES_SECRET_PREFIX}${n}`);
  return [...names, `${GATEWAY_API_SECRET_PREFIX}${namespace}/${name}`];
}

/** One SDS resource name read as Istio's credentials.ParseResourceName does. */
export interface CredentialRef {
  readonly resourceName: string;
  readonly namespace: string;
  /** The Secret's name as written, `-cacert` included. */
  readonly name: string;
  /** A `-cacert` name: only the CA bundle is served. */
  readonly caOnly: boolean;
}

/** `kubernetes://name` (in `defaultNamespace`), `kubernetes://ns/name` or `kubernetes-gateway://ns/name`; undefined for other schemes. */
export function parseCredentialName(resourceName: string, defaultNamespace: string): CredentialRef | undefined {
  const gatewayApi = resourceName.startsWith(GATEWAY_API_SECRET_PREFIX);
  if (!gatewayApi && !resourceName.startsWith(KUBERNETES_SECRET_PREFIX)) return undefined;
  const rest = resourceName.slice((gatewayApi ? GATEWAY_API_SECRET_PREFIX : KUBERNETES_SECRET_PREFIX).length);
  const parts = rest.split('/');
  if (gatewayApi && parts.length < 2) return undefined;
  const [namespace, name] = parts.length > 1 ? [parts[0] ?? '', parts[1] ?? ''] : [defaultNamespace, parts[0] ?? ''];
  if (namespace === '' || name === '') return undefined;
  return { resourceName, namespace, name, caOnly: name.endsWith(CA_SECRET_SUFFIX) };
}

export type CredentialLookup =
  | { readonly found: true; readonly credential: TlsCredential; readonly certificateChain?: string; readonly privateKey?: string; readonly caCertificates?: string }
  | { readonly found: false; readonly reason: string };

export interface CredentialIndex {
  readonly size: number;
  get(namespace: string, name: string): TlsCredential | undefined;
  /**
   * What `ref` serves: the certificate and key of the Secret, or for a `-cacert` name the CA bundle
   * of that Secret if it exists, else of the Secret without the suffix (Istio's GetCaCert).
   */
  lookup(ref: Pick<CredentialRef, 'namespace' | 'name' | 'caOnly'>): CredentialLookup;
}

export function indexCredentials(credentials: readonly TlsCredential[]): CredentialIndex {
  const byKey = new Map(credentials.map((c) => [`${c.namespace}/${c.name}`, c]));
  const get = (namespace: string, name: string): TlsCredential | undefined => byKey.get(`${namespace}/${name}`);
  return {
    size: byKey.size,
    get,
    lookup(ref) {
      if (ref.caOnly) {
        const stripped = ref.name.slice(0, -CA_SECRET_SUFFIX.length);
        const holder = get(ref.namespace, ref.name) ?? get(ref.namespace, stripped);
        if (!holder) return { found: false, reason: `no Secret ${ref.namespace}/${ref.name} or ${ref.namespace}/${stripped} holds a CA (ca.crt or cacert)` };
        if (holder.caCertificates === undefined) return { found: false, reason: `Secret ${ref.namespace}/${holder.name} has no ca.crt or cacert` };
        return { found: true, credential: holder, caCertificates: holder.caCertificates };
      }
      const credential = get(ref.namespace, ref.name);
      if (!credential) return { found: false, reason: `Secret ${ref.namespace}/${ref.name} does not exist (or is not a valid TLS Secret)` };
      if (credential.certificateChain === undefined || credential.privateKey === undefined) return { found: false, reason: `Secret ${ref.namespace}/${ref.name} holds no certificate and key (tls.crt and tls.key, or cert and key)` };
      return { found: true, credential, certificateChain: credential.certificateChain, privateKey: credential.privateKey };
    },
  };
}

/**
 * Why a gateway whose identity is of `namespace` may not read the Secret `ref` names when it is
 * another namespace's, or undefined when it may: a Gateway API name (`kubernetes-gateway://`) of a
 * Secret a ReferenceGrant lets that namespace's Gateways refer to, as Istio's SDS allows.
 */
export function crossNamespaceDenial(ref: CredentialRef, namespace: string, credentials: CredentialIndex): string | undefined {
  if (ref.namespace === namespace) return undefined;
  const other = `Secret ${ref.namespace}/${ref.name} is in another namespace than the gateway's (${namespace})`;
  if (!ref.resourceName.startsWith(GATEWAY_API_SECRET_PREFIX)) return `${other}: a credentialName names only the gateway's own namespace's Secrets (a Gateway API certificateRef with a ReferenceGrant may cross)`;
  const found = credentials.lookup(ref);
  if (!found.found) return `${other}, and ${found.reason}`;
  if (!(found.credential.gatewayReaders ?? []).includes(namespace)) return `${other}, and no ReferenceGrant in ${ref.namespace} lets Gateways of ${namespace} refer to Secret ${found.credential.name}`;
  return undefined;
}

export const NO_CREDENTIALS: CredentialIndex = indexCredentials([]);
