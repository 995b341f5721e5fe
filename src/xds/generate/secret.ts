// SDS over ADS (Istio's SecretGen): the Kubernetes Secrets a gateway's TLS names
// (`kubernetes://name`, `kubernetes://ns/name`, `kubernetes-gateway://ns/name`, `...-cacert`),
// each sent only to a proxy whose verified identity is of the Secret's namespace, or, for a
// Gateway API name, of a namespace a ReferenceGrant lets refer to it. Never a wildcard: only the
// names asked for.
import type { CredentialIndex, CredentialRef } from '../../model/credentials.ts';
import { crossNamespaceDenial, parseCredentialName } from '../../model/credentials.ts';
import type { Proxy } from '../../model/proxy.ts';
import type { PushContext } from '../../model/push-context.ts';
import type { DataSource, Secret } from '../envoy-types.generated.ts';
import type { EnvoyResource } from '../resource.ts';
import { internResource } from '../resource.ts';
import { SECRET_TYPE } from '../type-urls.ts';

const inline = (pem: string): DataSource => ({ inline_bytes: Buffer.from(pem, 'utf8').toString('base64') });

/** A certificate chain and its key, as Envoy's SDS Secret. */
export function tlsCertificateSecret(name: string, certificateChain: string, privateKey: string): Secret {
  return { name, tls_certificate: { certificate_chain: inline(certificateChain), private_key: inline(privateKey) } };
}

/** A CA bundle, as Envoy's SDS Secret. */
export function validationContextSecret(name: string, caCertificates: string): Secret {
  return { name, validation_context: { trusted_ca: inline(caCertificates) } };
}

export interface SecretDenial {
  readonly name: string;
  readonly reason: string;
}

/** Which of `names` this proxy may read (Istio's filterAuthorizedResources), and why not the others. */
export function secretAccess(proxy: Proxy, names: readonly string[], credentials: CredentialIndex): { readonly allowed: readonly CredentialRef[]; readonly denied: readonly SecretDenial[] } {
  const identity = proxy.verifiedIdentity;
  if (!identity) {
    const reason = 'its stream is not authenticated: Secrets are served on the secure port (15012) to a workload certificate or token of their namespace';
    return { allowed: [], denied: names.map((name): SecretDenial => ({ name, reason })) };
  }
  const allowed: CredentialRef[] = [];
  const denied: SecretDenial[] = [];
  for (const name of names) {
    const ref = parseCredentialName(name, identity.namespace);
    if (!ref) denied.push({ name, reason: 'meshpilot serves only kubernetes://[namespace/]name and kubernetes-gateway://namespace/name over ADS (the workload certificate comes from meshpilot agent)' });
    else {
      const reason = crossNamespaceDenial(ref, identity.namespace, credentials);
      if (reason === undefined) allowed.push(ref);
      else denied.push({ name, reason });
    }
  }
  return { allowed, denied };
}

/** The Secrets of `names` this proxy may read and that exist; the material goes only into these resources. */
export function buildSecrets(push: PushContext, proxy: Proxy, names: readonly string[] | undefined): readonly EnvoyResource[] {
  if (!names || names.length === 0) return [];
  return secretAccess(proxy, names, push.credentials).allowed.flatMap((ref) =>
    push.memo(`secret:${ref.namespace}:${ref.resourceName}`, (): EnvoyResource[] => {
      const found = push.credentials.lookup(ref);
      if (!found.found) return [];
      const secret = found.caCertificates !== undefined ? validationContextSecret(ref.resourceName, found.caCertificates) : tlsCertificateSecret(ref.resourceName, found.certificateChain ?? '', found.privateKey ?? '');
      return [internResource(push.sequence, SECRET_TYPE, ref.resourceName, secret)];
    }),
  );
}
