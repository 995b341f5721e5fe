// Which Gateways a gateway proxy serves, merged once per distinct set, and the servers a Gateway
// loses to an older one on the workloads both select (reported on the newer Gateway).
import type { Gateway, ValidationIssue } from './rules.ts';
import type { Proxy } from './proxy.ts';
import type { PushContext } from './push-context.ts';
import type { Endpoint } from './service.ts';
import type { GatewayIndex, MergedGateway, TargetPortIndex } from './gateways.ts';
import { gatewayName, gatewaySelects, mergedGatewayKey, mergeGateways, targetPortsOf } from './gateways.ts';
import { workloadNamespace } from './workload-labels.ts';

function mergeKey(gateways: readonly Gateway[], ports: ReadonlyMap<number, number>): string {
  return `merged-gateway:${mergedGatewayKey(gateways, ports)}`;
}

/** The proxy's Gateways merged (Istio's PushContext.mergeGateways); proxies alike share one result. */
export function gatewayFor(push: PushContext, proxy: Pick<Proxy, 'type' | 'namespace' | 'labels' | 'ipAddresses'>, targetPorts: TargetPortIndex): MergedGateway | undefined {
  const selected = push.gateways.selectFor(proxy);
  if (selected.length === 0) return undefined;
  const ports = targetPortsOf(proxy, targetPorts);
  return push.memo(mergeKey(selected, ports), () => mergeGateways(selected, ports));
}

/** Each workload address with its labels, once. */
/** A workload a Gateway's selector may pick, by its address. */
export interface GatewayWorkload {
  readonly labels: Readonly<Record<string, string>>;
  readonly name: string;
  readonly namespace: string | undefined;
}

/** Each address's workload, once per push for every Gateway's checks (not walked again per Gateway). */
export function workloadAddresses(endpointsByHost: ReadonlyMap<string, readonly Endpoint[]>): ReadonlyMap<string, GatewayWorkload> {
  const out = new Map<string, GatewayWorkload>();
  for (const endpoints of endpointsByHost.values()) {
    for (const endpoint of endpoints) if (!out.has(endpoint.address)) out.set(endpoint.address, { labels: endpoint.labels, name: endpoint.workload ?? endpoint.address, namespace: workloadNamespace(endpoint) });
  }
  return out;
}

/**
 * MP_RULE_CONFLICT for each server of `gateway` an older Gateway's server keeps from a workload both
 * select (the same port as a different protocol, a TLS host twice, an HTTPS port name twice), as
 * Istio's merge drops it; a Gateway without selector is compared with the older ones without selector.
 */
export function gatewayConflictIssues(gateway: Gateway, index: GatewayIndex, targetPorts: TargetPortIndex, workloads: ReadonlyMap<string, GatewayWorkload>): ValidationIssue[] {
  const older = index.gateways.slice(0, Math.max(0, index.gateways.indexOf(gateway)));
  const selector = gateway.spec.selector ?? {};
  const name = gatewayName(gateway);
  const issues = new Map<string, ValidationIssue>();
  const report = (merged: MergedGateway, where: string): void => {
    for (const skipped of merged.skipped) {
      if (skipped.gatewayName !== name || skipped.why !== 'conflict') continue;
      const path = `spec.servers[${String(skipped.index)}]`;
      if (!issues.has(path)) issues.set(path, { code: 'MP_RULE_CONFLICT', severity: 'warning', path, message: `is not served${where}: ${skipped.reason}; the older Gateway wins, as in Istio` });
    }
  };
  if (Object.keys(selector).length === 0) {
    report(mergeGateways([...older.filter((g) => Object.keys(g.spec.selector ?? {}).length === 0), gateway], new Map()), '');
    return [...issues.values()];
  }
  const merges = new Map<string, MergedGateway>();
  for (const [address, workload] of workloads) {
    if (!gatewaySelects(gateway, workload.labels, workload.namespace)) continue;
    const selected = [...older.filter((g) => gatewaySelects(g, workload.labels, workload.namespace)), gateway];
    const ports = targetPortsOf({ ipAddresses: [address] }, targetPorts);
    const key = mergeKey(selected, ports);
    let merged = merges.get(key);
    if (!merged) merges.set(key, (merged = mergeGateways(selected, ports)));
    report(merged, ` on ${workload.name}`);
  }
  return [...issues.values()];
}
