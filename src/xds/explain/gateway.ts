// Explain for gateway proxies (`router~`): the listener a request's port reaches (a Gateway
// server's port, or the pod port its Service port targets), the filter chain Envoy picks by SNI,
// and the Gateway server behind each step.
import type { BoundServer, MergedGateway } from '../../model/gateways.ts';
import { sniHosts } from '../../model/gateways.ts';
import { isHttpProtocol } from '../../model/service.ts';
import type { RuleRef } from '../attribution.ts';
import { asObject, asObjects, strings } from '../attribution.ts';
import type { JsonObject } from '../proto-json.ts';

/** The Gateway server that made a gateway's listener or filter chain. */
export interface ExplainedGatewayServer {
  readonly rule: RuleRef;
  /** Its index in the Gateway's `spec.servers`. */
  readonly server: number;
  readonly port: number;
  readonly protocol: string;
  readonly hosts: readonly string[];
  readonly tlsMode: string | null;
  readonly credentialName: string | null;
  readonly httpsRedirect: boolean;
}

export interface SelectedChain {
  readonly chain: JsonObject;
  readonly index: number;
  /** The SNI names the chain matches; empty for a chain that takes any connection. */
  readonly serverNames: readonly string[];
  /** It terminates TLS (a downstream transport socket). */
  readonly terminatesTls: boolean;
}

/** The request's port: written in the authority, else the scheme's. */
export function requestPort(authority: string, scheme: string): number {
  const match = /:(\d+)$/.exec(authority);
  return match?.[1] ? Number(match[1]) : scheme === 'https' ? 443 : 80;
}

export function hostOf(authority: string): string {
  return authority.replace(/:\d+$/, '').toLowerCase();
}

/** The listener a gateway binds for a port a client dials: a server on that port, by its bind and target port. */
export function gatewayListenerName(merged: MergedGateway | undefined, port: number): string {
  const plan = merged?.listeners.find((l) => l.servers.some((s) => s.server.port.number === port));
  return plan ? `${plan.bind}_${String(plan.port)}` : `0.0.0.0_${String(port)}`;
}

/** `pattern` (an SNI name or a server host, `*` or `*.suffix` allowed) covers `host`. */
function covers(pattern: string, host: string): boolean {
  const p = pattern.toLowerCase();
  return p === host || p === '*' || (p.startsWith('*.') && host.endsWith(p.slice(1)));
}

/**
 * Envoy's filter chain match on server_names: an exact name, then the longest wildcard suffix,
 * then a chain without server_names. A plaintext request carries no SNI.
 */
export function selectFilterChain(listener: JsonObject, sni: string | undefined): SelectedChain | undefined {
  let best: { selected: SelectedChain; rank: number } | undefined;
  asObjects(listener['filter_chains']).forEach((chain, index) => {
    const names = strings(asObject(chain['filter_chain_match'])?.['server_names']);
    const selected: SelectedChain = { chain, index, serverNames: names, terminatesTls: chain['transport_socket'] !== undefined };
    let rank: number | undefined;
    if (names.length === 0) rank = 1_000_000;
    else if (sni !== undefined) {
      for (const name of names) {
        const lower = name.toLowerCase();
        if (lower === sni) rank = 0;
        else if (lower.startsWith('*.') && sni.endsWith(lower.slice(1))) rank = Math.min(rank ?? Infinity, 1000 - lower.length);
      }
    }
    if (rank !== undefined && (!best || rank < best.rank)) best = { selected, rank };
  });
  return best?.selected;
}

function explainServer(bound: BoundServer): ExplainedGatewayServer {
  const tls = bound.server.tls;
  return {
    rule: { kind: 'Gateway', namespace: bound.gateway.meta.namespace, name: bound.gateway.meta.name },
    server: bound.index,
    port: bound.server.port.number,
    protocol: bound.protocol,
    hosts: bound.server.hosts,
    // Istio's proto default mode is PASSTHROUGH; on a plaintext HTTP server tls only redirects.
    tlsMode: tls && !isHttpProtocol(bound.protocol) ? (tls.mode ?? 'PASSTHROUGH') : null,
    credentialName: tls?.credentialName ?? null,
    httpsRedirect: tls?.httpsRedirect === true,
  };
}

/**
 * The Gateway server behind what a request reached on `listenerName`: of the servers of that
 * listener (only those of the route configuration, when the chain has one), the first whose hosts
 * cover the request's host, else the first.
 */
export function gatewayServerFor(merged: MergedGateway | undefined, listenerName: string, routeName: string | undefined, host: string): ExplainedGatewayServer | null {
  const plan = merged?.listeners.find((l) => `${l.bind}_${String(l.port)}` === listenerName);
  if (!merged || !plan) return null;
  const candidates = routeName !== undefined ? (merged.serversByRouteName.get(routeName) ?? plan.servers) : plan.servers;
  const bound = candidates.find((s) => sniHosts(s.server).some((h) => covers(h, host))) ?? candidates[0];
  return bound ? explainServer(bound) : null;
}

export function gatewayLabel(server: ExplainedGatewayServer | null): string {
  return server ? `Gateway ${server.rule.namespace}/${server.rule.name} servers[${String(server.server)}]` : 'no Gateway server';
}
