// Which inbound filter chains a workload port gets for its mTLS mode, as Istio's
// filterchain_options.go: STRICT takes only TLS, PERMISSIVE tells mesh mTLS (by ALPN) from
// plaintext (and, for TCP, from other TLS) after tls_inspector, DISABLE takes plaintext.
import type { EffectiveMtlsMode } from '../../model/peer-authentication.ts';
import type { FilterChain, FilterChainMatch, TransportSocket } from '../envoy-types.generated.ts';
import { istioMtlsAlpns, sidecarDownstreamContext, tlsTransportSocket } from './mtls.ts';

export interface InboundChainOption {
  /** Set: the chain terminates mesh mTLS with this transport socket. */
  readonly transportSocket?: TransportSocket;
  readonly filterChainMatch: FilterChainMatch;
}

/** Envoy's transport protocol names, as tls_inspector sets them. */
const TLS = 'tls';
const RAW_BUFFER = 'raw_buffer';

/** The chains of one port (0: the passthrough catch-all) for a mode and protocol. */
export function inboundChainOptions(mode: EffectiveMtlsMode, protocol: 'http' | 'tcp', port: number): InboundChainOption[] {
  const base: FilterChainMatch = port > 0 ? { destination_port: port } : {};
  const mtls = tlsTransportSocket('downstream', sidecarDownstreamContext(protocol));
  if (mode === 'STRICT') return [{ filterChainMatch: { ...base, transport_protocol: TLS }, transportSocket: mtls }];
  if (mode === 'DISABLE') return [{ filterChainMatch: { ...base, transport_protocol: RAW_BUFFER } }];
  const options: InboundChainOption[] = [{ filterChainMatch: { ...base, transport_protocol: TLS, application_protocols: istioMtlsAlpns() }, transportSocket: mtls }];
  // TLS a client started itself (HTTPS to a TCP port) is passed through untouched.
  if (protocol === 'tcp') options.push({ filterChainMatch: { ...base, transport_protocol: TLS } });
  options.push({ filterChainMatch: { ...base, transport_protocol: RAW_BUFFER } });
  return options;
}

/** Whether any chain matches on the transport protocol, which only tls_inspector sets to `tls`. */
export function needsTlsInspector(chains: readonly FilterChain[]): boolean {
  return chains.some((chain) => chain['filter_chain_match']?.['transport_protocol'] === TLS);
}
