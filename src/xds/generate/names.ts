// Istio's resource names, so dashboards and habits carry over.

export const BLACKHOLE_CLUSTER = 'BlackHoleCluster';
export const PASSTHROUGH_CLUSTER = 'PassthroughCluster';
export const VIRTUAL_OUTBOUND_LISTENER = 'virtualOutbound';
export const VIRTUAL_OUTBOUND_PORT = 15001;
export const VIRTUAL_INBOUND_LISTENER = 'virtualInbound';
export const VIRTUAL_INBOUND_PORT = 15006;
export const INBOUND_PASSTHROUGH_CLUSTER = 'InboundPassthroughCluster';
/** Source address of inbound passthrough connections, which iptables lets through untouched. */
export const INBOUND_PASSTHROUGH_BIND_ADDRESS = '127.0.0.6';

export interface ClusterKey {
  readonly direction: 'outbound' | 'inbound';
  readonly port: number;
  readonly subset: string;
  readonly host: string;
}

/** `outbound|9080|v1|reviews.default.svc.cluster.local` */
export function clusterName(port: number, host: string, subset = '', direction: 'outbound' | 'inbound' = 'outbound'): string {
  return `${direction}|${port}|${subset}|${host}`;
}

/** `inbound|9080||`: Istio names an inbound cluster by the workload port alone. */
export function inboundClusterName(port: number): string {
  return clusterName(port, '', '', 'inbound');
}

export function parseClusterName(name: string): ClusterKey | undefined {
  const parts = name.split('|');
  if (parts.length !== 4) return undefined;
  const [direction, port, subset, host] = parts as [string, string, string, string];
  if ((direction !== 'outbound' && direction !== 'inbound') || !/^\d+$/.test(port)) return undefined;
  return { direction, port: Number(port), subset, host };
}

/** Sidecar outbound HTTP listeners: `0.0.0.0_9080`, with RDS config named `"9080"`. */
export function httpListenerName(port: number): string {
  return `0.0.0.0_${port}`;
}

export function tcpListenerName(address: string, port: number): string {
  return `${address}_${port}`;
}

export function routeConfigName(port: number): string {
  return String(port);
}

/** Proxyless gRPC listeners are named by the target authority: `host:port`. */
export function parseHostPort(name: string): { host: string; port: number } | undefined {
  const match = /^([A-Za-z0-9*][A-Za-z0-9.*-]*):(\d{1,5})$/.exec(name);
  if (!match?.[1] || !match[2]) return undefined;
  const port = Number(match[2]);
  return port > 0 && port < 65536 ? { host: match[1], port } : undefined;
}
