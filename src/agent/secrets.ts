// The SDS secrets as Istio names them: `default` (the workload's certificate chain and key) and
// `ROOTCA` (the trust bundle), as inline bytes, versioned by content like every resource.
import { ROOT_SECRET, WORKLOAD_SECRET } from '../security/names.ts';
import type { EnvoyResource } from '../xds/resource.ts';
import { typedResource } from '../xds/resource.ts';
import { SECRET_TYPE } from '../xds/type-urls.ts';

export type SecretResource = EnvoyResource<typeof SECRET_TYPE>;

const inline = (pem: string): { inline_bytes: string } => ({ inline_bytes: Buffer.from(pem, 'utf8').toString('base64') });

/** The two secrets for one certificate; the key is only ever put on the SDS stream. */
export function buildSecrets(certChainPem: string, privateKeyPem: string, trustBundlePem: string): ReadonlyMap<string, SecretResource> {
  return new Map([
    [WORKLOAD_SECRET, typedResource(SECRET_TYPE, WORKLOAD_SECRET, { name: WORKLOAD_SECRET, tls_certificate: { certificate_chain: inline(certChainPem), private_key: inline(privateKeyPem) } })],
    [ROOT_SECRET, typedResource(SECRET_TYPE, ROOT_SECRET, { name: ROOT_SECRET, validation_context: { trusted_ca: inline(trustBundlePem) } })],
  ]);
}
