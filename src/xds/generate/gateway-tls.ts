// The TLS a gateway server terminates (Istio's BuildListenerTLSContext): its certificate from a
// Kubernetes Secret over SDS (`kubernetes://<credentialName>`, on the ADS stream), from files, or
// the gateway's own workload certificate (ISTIO_MUTUAL); client certificates for MUTUAL modes.
import { CA_SECRET_SUFFIX, credentialResourceName } from '../../model/credentials.ts';
import { isValidCipherSuite } from '../../model/gateways.ts';
import type { ServerTlsSettings } from '../../model/rules.ts';
import { ROOT_SECRET, WORKLOAD_SECRET } from '../../security/names.ts';
import type { CertificateValidationContext, CommonTlsContext, DownstreamTlsContext, SdsSecretConfig, TlsCertificate, TlsParameters, TlsParameters_TlsProtocol } from '../envoy-types.generated.ts';
import { ADS_CONFIG_SOURCE } from './common.ts';
import { SDS_CONFIG, subjectAltNameMatchers } from './mtls.ts';

const HTTP_ALPN: readonly string[] = ['h2', 'http/1.1'];

/** The SDS name of a credential; `builtin://` is the workload certificate. */
function sdsName(credentialName: string): string {
  return credentialResourceName(credentialName) ?? WORKLOAD_SECRET;
}

const VERSIONS: Readonly<Record<string, TlsParameters_TlsProtocol>> = { TLSV1_0: 'TLSv1_0', TLSV1_1: 'TLSv1_1', TLSV1_2: 'TLSv1_2', TLSV1_3: 'TLSv1_3' };

/** minProtocolVersion, maxProtocolVersion, cipherSuites and ecdhCurves as Envoy's TlsParameters (SIMPLE and MUTUAL modes). */
function tlsParams(tls: ServerTlsSettings): TlsParameters | undefined {
  const params: TlsParameters = {};
  const min = tls.minProtocolVersion === undefined ? undefined : VERSIONS[tls.minProtocolVersion];
  const max = tls.maxProtocolVersion === undefined ? undefined : VERSIONS[tls.maxProtocolVersion];
  if (min !== undefined) params.tls_minimum_protocol_version = min;
  if (max !== undefined) params.tls_maximum_protocol_version = max;
  // Istio drops the names Envoy does not know rather than have the listener refused.
  const ciphers = [...new Set(tls.cipherSuites ?? [])].filter(isValidCipherSuite);
  if (ciphers.length > 0) params.cipher_suites = ciphers;
  if (tls.ecdhCurves?.length) params.ecdh_curves = tls.ecdhCurves;
  return Object.keys(params).length > 0 ? params : undefined;
}

function sds(name: string, source = ADS_CONFIG_SOURCE): SdsSecretConfig {
  return { name, sds_config: source };
}

/** What a client certificate is checked for besides its CA: SANs, SPKI pins, certificate hashes. */
function clientChecks(tls: ServerTlsSettings): CertificateValidationContext {
  const checks: CertificateValidationContext = {};
  if (tls.subjectAltNames?.length) checks.match_typed_subject_alt_names = subjectAltNameMatchers(tls.subjectAltNames);
  if (tls.verifyCertificateSpki?.length) checks.verify_certificate_spki = tls.verifyCertificateSpki;
  if (tls.verifyCertificateHash?.length) checks.verify_certificate_hash = tls.verifyCertificateHash;
  return checks;
}

function fileCertificates(tls: ServerTlsSettings): TlsCertificate[] {
  const pairs = tls.tlsCertificates?.length ? tls.tlsCertificates : [{ serverCertificate: tls.serverCertificate, privateKey: tls.privateKey }];
  return pairs.flatMap((pair): TlsCertificate[] =>
    pair.serverCertificate && pair.privateKey ? [{ certificate_chain: { filename: pair.serverCertificate }, private_key: { filename: pair.privateKey } }] : [],
  );
}

/** The DownstreamTlsContext of a server that terminates TLS (SIMPLE, MUTUAL, OPTIONAL_MUTUAL, ISTIO_MUTUAL). */
export function gatewayDownstreamTls(tls: ServerTlsSettings): DownstreamTlsContext {
  const mode = tls.mode;
  const requireClient = mode === 'MUTUAL' || mode === 'ISTIO_MUTUAL';
  const validateClient = requireClient || mode === 'OPTIONAL_MUTUAL';
  const common: CommonTlsContext = { alpn_protocols: HTTP_ALPN };
  const credentials = tls.credentialNames?.length ? tls.credentialNames : tls.credentialName ? [tls.credentialName] : [];
  let context: CommonTlsContext;
  if (mode === 'ISTIO_MUTUAL') {
    // The gateway's own workload certificate and the mesh root, from the agent beside it.
    context = {
      ...common,
      tls_certificate_sds_secret_configs: [sds(WORKLOAD_SECRET, SDS_CONFIG)],
      combined_validation_context: { default_validation_context: clientChecks(tls), validation_context_sds_secret_config: sds(ROOT_SECRET, SDS_CONFIG) },
    };
  } else if (credentials.length > 0) {
    const names = credentials.map(sdsName);
    context = {
      ...common,
      tls_certificate_sds_secret_configs: names.map((name) => sds(name)),
      ...(validateClient
        ? ({ combined_validation_context: { default_validation_context: clientChecks(tls), validation_context_sds_secret_config: sds(`${names[0] ?? ''}${CA_SECRET_SUFFIX}`) } } satisfies CommonTlsContext)
        : {}),
    };
  } else {
    context = {
      ...common,
      tls_certificates: fileCertificates(tls),
      ...(validateClient && tls.caCertificates ? ({ validation_context: { ...clientChecks(tls), trusted_ca: { filename: tls.caCertificates } } } satisfies CommonTlsContext) : {}),
    };
  }
  const params = mode === 'ISTIO_MUTUAL' ? undefined : tlsParams(tls);
  return { common_tls_context: params ? { ...context, tls_params: params } : context, require_client_certificate: requireClient };
}
