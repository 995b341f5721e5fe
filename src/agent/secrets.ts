// The SDS secrets as Istio names them: `default` (the workload's certificate chain and key) and
// `ROOTCA` (the trust bundle), as inline bytes, versioned by content like every resource.
import { ROOT_SECRET, WORKLOAD_SECRET } from '../security/names.ts';
import type { EnvoyResource } from '../xds/resource.ts';
import { typedResource } from '../xds/resource.ts';
import { SECRET_TYPE } from '../xds/type-urls.ts';
import { tlsCertificateSecret, validationContextSecret } from '../xds/generate/secret.ts';

export type SecretResource = EnvoyResource<typeof SECRET_TYPE>;

/** The two secrets for one certificate; the key is only ever put on the SDS stream. */
export function buildSecrets(certChainPem: string, privateKeyPem: string, trustBundlePem: string): ReadonlyMap<string, SecretResource> {
  return new Map([
    [WORKLOAD_SECRET, typedResource(SECRET_TYPE, WORKLOAD_SECRET, tlsCertificateSecret(WORKLOAD_SECRET, certChainPem, privateKeyPem))],
    [ROOT_SECRET, typedResource(SECRET_TYPE, ROOT_SECRET, validationContextSecret(ROOT_SECRET, trustBundlePem))],
  ]);
}
