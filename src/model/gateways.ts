// Istio Gateways as a gateway proxy gets them (Istio's mergeGateways): which Gateways select it,
// the port each server listens on, the route configuration names, and the servers that lose a
// conflict over a port or a TLS host (the older Gateway keeps it).
import type { Proxy } from './proxy.ts';
import type { Gateway, GatewayServer } from './rules.ts';
import type { Endpoint, Protocol, Service } from './service.ts';
import { isHttpProtocol, labelsMatch, parseProtocolName } from './service.ts';
import type { WorkloadIndex } from './workload-labels.ts';

/** A server's TLS is passed through (not terminated): Istio's proto default mode is PASSTHROUGH. */
export function isPassthroughMode(mode: string | undefined): boolean {
  return mode === undefined || mode === 'PASSTHROUGH' || mode === 'AUTO_PASSTHROUGH';
}

/** The cipher suites Envoy's BoringSSL takes (Istio's security.IsValidCipherSuite list). */
const VALID_CIPHERS = new Set([
  'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305', 'ECDHE-RSA-CHACHA20-POLY1305', 'ECDHE-PSK-CHACHA20-POLY1305', 'ECDHE-ECDSA-AES128-SHA', 'ECDHE-RSA-AES128-SHA',
  'ECDHE-PSK-AES128-CBC-SHA', 'AES128-GCM-SHA256', 'AES128-SHA', 'ECDHE-ECDSA-AES256-SHA', 'ECDHE-RSA-AES256-SHA', 'ECDHE-PSK-AES256-CBC-SHA',
  'AES256-GCM-SHA384', 'AES256-SHA', 'PSK-AES128-CBC-SHA', 'PSK-AES256-CBC-SHA', 'DES-CBC3-SHA',
]);
/** Istio's security.IsValidCipherSuite: a name Envoy's BoringSSL knows (others are dropped with a warning). */
export function isValidCipherSuite(name: string): boolean {
  return VALID_CIPHERS.has(name);
}

/** `namespace/name`, the form VirtualServices bind with. */
export function gatewayName(gateway: Pick<Gateway, 'meta'>): string {
  return `${gateway.meta.namespace}/${gateway.meta.name}`;
}

/**
 * Istio's resolveGatewayName: `name` is a Gateway of `namespace`, `./name` too, `name.ns(.svc...)`
 * the legacy FQDN form of `ns/name`; `mesh` stays `mesh`.
 */
export function resolveGatewayName(name: string, namespace: string): string {
  if (name === MESH_GATEWAY) return name;
  const slash = name.indexOf('/');
  if (slash >= 0) return name.slice(0, slash) === '.' ? `${namespace}/${name.slice(slash + 1)}` : name;
  const dot = name.indexOf('.');
  if (dot < 0) return `${namespace}/${name}`;
  const rest = name.slice(dot + 1);
  const nextDot = rest.indexOf('.');
  return `${nextDot < 0 ? rest : rest.slice(0, nextDot)}/${name.slice(0, dot)}`;
}

/** The reserved gateway name that means "the sidecars of the mesh". */
export const MESH_GATEWAY = 'mesh';

/** One Gateway server as a proxy serves it. */
export interface BoundServer {
  readonly gateway: Gateway;
  /** `namespace/name` of the Gateway, as VirtualServices bind to it. */
  readonly gatewayName: string;
  /** The server with hosts as Istio sanitises them: `./h` in the Gateway's namespace, `*` namespaces dropped. */
  readonly server: GatewayServer;
  /** Its index in `spec.servers`. */
  readonly index: number;
  readonly protocol: Protocol;
  /** The RDS name of a server an HTTP connection manager serves: `http.<port>`, or `https.<port>.<portName>.<gateway>.<namespace>`. */
  readonly routeName?: string;
}

/** One listener of a gateway proxy: plaintext HTTP servers merged, or one filter chain per server. */
export interface GatewayListenerPlan {
  readonly bind: string;
  /** The port bound: the server's, or the target port of the gateway Service port it names. */
  readonly port: number;
  /** The protocol of its first server (plaintext listeners hold one protocol family). */
  readonly protocol: Protocol;
  /** Plaintext: no server of it terminates or passes TLS. */
  readonly plaintext: boolean;
  readonly servers: readonly BoundServer[];
}

/** A server left out of a proxy's config, and why (a conflict with an older Gateway's server, or a mode not served). */
export interface SkippedServer {
  readonly gatewayName: string;
  readonly index: number;
  /** `conflict`: an older Gateway's server holds the port or host; `unserved`: a mode meshpilot does not build (warned on the Gateway). */
  readonly why: 'conflict' | 'unserved';
  readonly reason: string;
}

export interface MergedGateway {
  /** Names the merge: the Gateways and the port translation it was built from. */
  readonly key: string;
  /** `namespace/name` of every Gateway that selects the proxy, oldest first. */
  readonly gatewayNames: readonly string[];
  readonly listeners: readonly GatewayListenerPlan[];
  /** The servers behind each RDS name. */
  readonly serversByRouteName: ReadonlyMap<string, readonly BoundServer[]>;
  readonly skipped: readonly SkippedServer[];
}

/** What a merge depends on: its Gateways (in order) and the Service port translation. */
export function mergedGatewayKey(gateways: readonly Gateway[], targetPorts: ReadonlyMap<number, number>): string {
  return `${gateways.map(gatewayName).join(',')}:${[...targetPorts].map(([from, to]) => `${String(from)}>${String(to)}`).join(',')}`;
}

/** Istio's GetSNIHostsForServer: the hosts without namespaces, unique and sorted. */
export function sniHosts(server: GatewayServer): string[] {
  return [...new Set(server.hosts.map((host) => host.slice(host.indexOf('/') + 1)))].sort();
}

/** Istio's sanitizeServerHostNamespace. */
export function sanitizeHosts(hosts: readonly string[], namespace: string): string[] {
  if (hosts.includes('*/*')) return ['*'];
  return hosts.map((host) => {
    const slash = host.indexOf('/');
    if (slash < 0) return host;
    const [ns, name] = [host.slice(0, slash), host.slice(slash + 1)];
    return ns === '.' ? `${namespace}/${name}` : ns === '*' ? name : host;
  });
}

/** Served through an HTTP connection manager: plaintext HTTP, or HTTPS terminated here. */
export function isHttpServer(protocol: Protocol, server: GatewayServer): boolean {
  return isHttpProtocol(protocol) || (protocol === 'HTTPS' && !isPassthroughMode(server.tls?.mode));
}

/** Istio's gatewayRDSRouteName. */
function routeNameOf(server: GatewayServer, protocol: Protocol, port: number, gateway: Gateway): string | undefined {
  const bind = server.bind ? `.${server.bind}` : '';
  if (isHttpProtocol(protocol)) return `http.${String(port)}${bind}`;
  if (protocol === 'HTTPS' && !isPassthroughMode(server.tls?.mode)) return `https.${String(server.port.number)}.${server.port.name}.${gateway.meta.name}.${gateway.meta.namespace}${bind}`;
  return undefined;
}

/** What this slice does not build a listener for (each is an MP_UNSUPPORTED warning on the Gateway). */
function unservedReason(server: GatewayServer, protocol: Protocol): string | undefined {
  if (server.bind?.startsWith('unix://')) return 'binds a Unix domain socket, which meshpilot does not serve';
  if (protocol === 'UDP') return 'UDP servers are not served';
  if ((protocol === 'HTTPS' || protocol === 'TLS') && server.tls?.mode === 'AUTO_PASSTHROUGH') return 'AUTO_PASSTHROUGH servers are not served';
  return undefined;
}

/** Istio's canMergeProtocols: plaintext servers share a port only as HTTP. */
function canMerge(current: Protocol, next: Protocol): boolean {
  return (isHttpProtocol(current) || current === next) && isHttpProtocol(next);
}

interface PlanBuilder {
  readonly bind: string;
  readonly port: number;
  readonly protocol: Protocol;
  readonly plaintext: boolean;
  readonly servers: BoundServer[];
}

/**
 * Istio's mergeGateways, for servers bound to 0.0.0.0 or an IP: a second plaintext server on a port
 * merges only as HTTP (one `http.<port>` route), TLS servers on a port are told apart by SNI and
 * must not claim a host twice, and an HTTPS server needs a port name no other holds.
 */
export function mergeGateways(gateways: readonly Gateway[], targetPorts: ReadonlyMap<number, number>): MergedGateway {
  const plans = new Map<string, PlanBuilder>();
  const serversByRouteName = new Map<string, BoundServer[]>();
  const tlsHosts = new Map<string, Map<string, string>>();
  const skipped: SkippedServer[] = [];
  for (const gateway of gateways) {
    const name = gatewayName(gateway);
    gateway.spec.servers.forEach((written, index) => {
      const skip = (reason: string, why: SkippedServer['why'] = 'conflict'): void => {
        skipped.push({ gatewayName: name, index, why, reason });
      };
      const protocol = parseProtocolName(written.port.protocol);
      const unserved = unservedReason(written, protocol);
      if (unserved) {
        skip(unserved, 'unserved');
        return;
      }
      const server: GatewayServer = { ...written, hosts: sanitizeHosts(written.hosts, gateway.meta.namespace) };
      // A Gateway API listener's port is the pod's own (Istio translates only legacy-selector Gateways).
      const port = gateway.meta.origin ? written.port.number : (targetPorts.get(written.port.number) ?? written.port.number);
      const bind = written.bind ?? '0.0.0.0';
      const key = `${bind}_${String(port)}`;
      const routeName = routeNameOf(server, protocol, port, gateway);
      const bound: BoundServer = { gateway, gatewayName: name, server, index, protocol, ...(routeName !== undefined ? { routeName } : {}) };
      const tlsServer = server.tls !== undefined && !isHttpProtocol(protocol);
      if (tlsServer) {
        const known = tlsHosts.get(key) ?? new Map<string, string>();
        tlsHosts.set(key, known);
        const taken = server.hosts.filter((host) => known.has(host));
        if (taken.length > 0) {
          skip(`host ${taken.join(', ')} on port ${String(port)} is already served by Gateway ${known.get(taken[0] ?? '') ?? ''}`);
          return;
        }
        for (const host of server.hosts) known.set(host, name);
      }
      const plan = plans.get(key);
      if (!plan) {
        plans.set(key, { bind, port, protocol, plaintext: !tlsServer, servers: [bound] });
        if (routeName !== undefined && isHttpServer(protocol, server)) serversByRouteName.set(routeName, [bound]);
        return;
      }
      if (plan.plaintext) {
        if (!canMerge(plan.protocol, protocol) || routeName === undefined) {
          skip(`port ${String(port)} already has a plaintext ${plan.protocol} server of Gateway ${plan.servers[0]?.gatewayName ?? ''}, and only HTTP servers share a port`);
          return;
        }
        plan.servers.push(bound);
        const sharing = serversByRouteName.get(routeName);
        if (sharing) sharing.push(bound);
        else serversByRouteName.set(routeName, [bound]);
        return;
      }
      if (!tlsServer) {
        skip(`port ${String(port)} already serves TLS, and a plaintext server cannot share it`);
        return;
      }
      if (isHttpServer(protocol, server)) {
        if (routeName === undefined || serversByRouteName.has(routeName)) {
          skip(`another HTTPS server on port ${String(port)} has the port name ${server.port.name}: give each a unique port name`);
          return;
        }
        serversByRouteName.set(routeName, [bound]);
      }
      plan.servers.push(bound);
    });
  }
  const listeners = [...plans.values()].sort((a, b) => a.port - b.port || (a.bind < b.bind ? -1 : a.bind > b.bind ? 1 : 0));
  return { key: mergedGatewayKey(gateways, targetPorts), gatewayNames: gateways.map(gatewayName), listeners, serversByRouteName, skipped };
}

/** The Gateway's selector takes the workload; one converted from the Gateway API takes only workloads of its own namespace. */
export function gatewaySelects(gateway: Gateway, labels: Readonly<Record<string, string>>, namespace: string | undefined): boolean {
  return (!gateway.meta.origin || gateway.meta.namespace === namespace) && labelsMatch(gateway.spec.selector ?? {}, labels);
}

export interface GatewayIndex {
  /** Every Gateway, oldest first. */
  readonly gateways: readonly Gateway[];
  readonly byName: ReadonlyMap<string, Gateway>;
  /** The Gateways whose selector the proxy's workload labels satisfy (none for a proxy that is not a gateway). */
  selectFor(proxy: Pick<Proxy, 'type' | 'namespace' | 'labels' | 'ipAddresses'>): readonly Gateway[];
}

export function indexGateways(gateways: readonly Gateway[], workloads: WorkloadIndex): GatewayIndex {
  return {
    gateways,
    byName: new Map(gateways.map((gateway) => [gatewayName(gateway), gateway])),
    selectFor(proxy) {
      if (proxy.type !== 'router' || gateways.length === 0) return [];
      const labels = workloads.labelsOf(proxy);
      return gateways.filter((gateway) => gatewaySelects(gateway, labels, proxy.namespace));
    },
  };
}

interface TargetPort {
  /** Position in Service order: the first Service to name a port wins. */
  readonly order: number;
  readonly servicePort: number;
  readonly targetPort: number;
}

/** Each workload address's Service ports and the pod port each reaches, in Service order; built once per push. */
export type TargetPortIndex = ReadonlyMap<string, readonly TargetPort[]>;

export function indexTargetPorts(services: readonly Service[], endpointsByHost: ReadonlyMap<string, readonly Endpoint[]>): TargetPortIndex {
  const index = new Map<string, TargetPort[]>();
  let order = 0;
  for (const service of services) {
    for (const endpoint of endpointsByHost.get(service.hostname) ?? []) {
      const servicePort = service.ports.find((p) => p.name === endpoint.servicePortName) ?? (service.ports.length === 1 ? service.ports[0] : undefined);
      if (!servicePort) continue;
      const entry = { order: order++, servicePort: servicePort.port, targetPort: endpoint.port };
      const list = index.get(endpoint.address);
      if (list) list.push(entry);
      else index.set(endpoint.address, [entry]);
    }
  }
  return index;
}

/**
 * The Service ports of the proxy's own workload and the pod port each reaches (Istio's legacy
 * gateway selector: a server on Service port 80 listens on its targetPort, e.g. 8080).
 */
export function targetPortsOf(proxy: Pick<Proxy, 'ipAddresses'>, index: TargetPortIndex): Map<number, number> {
  const ports = new Map<number, number>();
  const own = proxy.ipAddresses.flatMap((ip) => index.get(ip) ?? []).sort((a, b) => a.order - b.order);
  // The first Service to name a port wins, as Istio's legacy selector resolves a single port.
  for (const { servicePort, targetPort } of own) if (!ports.has(servicePort)) ports.set(servicePort, targetPort);
  return ports;
}

/** Istio's NamesForNamespace: a server's hosts a VirtualService of `namespace` may take, without their namespace. */
export function serverHostsFor(hosts: readonly string[], namespace: string): string[] {
  return hosts.flatMap((host) => {
    const slash = host.indexOf('/');
    if (slash < 0) return [host];
    const ns = host.slice(0, slash);
    return ns === namespace || ns === '*' ? [host.slice(slash + 1)] : [];
  });
}

/** `pattern` covers `host`: equal, `*`, or a `*.` suffix (a wildcard covers narrower wildcards). */
function covers(pattern: string, host: string): boolean {
  return pattern === host || pattern === '*' || (pattern.startsWith('*') && host.endsWith(pattern.slice(1)));
}

/** Istio's host.Names Intersection: of each pair where one covers the other, the narrower, once each. */
export function intersectHosts(serverHosts: readonly string[], virtualServiceHosts: readonly string[]): string[] {
  const out: string[] = [];
  for (const a of serverHosts) {
    for (const b of virtualServiceHosts) {
      const narrower = covers(b, a) ? a : covers(a, b) ? b : undefined;
      if (narrower !== undefined && !out.includes(narrower)) out.push(narrower);
    }
  }
  return out;
}
