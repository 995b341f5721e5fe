// RDS: sidecars get one RouteConfiguration per port ("9080"); proxyless gRPC one per target ("host:port").
import type { PushContext } from '../../model/push-context.ts';
import type { Proxy } from '../../model/proxy.ts';
import { scopedPush } from '../../model/sidecar-scope.ts';
import type { Service, ServicePort } from '../../model/service.ts';
import { DEFAULT_DOMAIN_SUFFIX, isHttpProtocol } from '../../model/service.ts';
import type { OutboundTrafficMode } from '../../model/mesh-config.ts';
import type { RouteConfiguration, VirtualHost } from '../envoy-types.generated.ts';
import type { EnvoyResource } from '../resource.ts';
import { internResource } from '../resource.ts';
import { ROUTE_TYPE } from '../type-urls.ts';
import { buildHttpRoutes, type RouteCaller } from './http-routes.ts';
import { PASSTHROUGH_CLUSTER, parseHostPort, routeConfigName } from './names.ts';
import { resolveTargetHost } from './targets.ts';

/** Every name a caller in `proxyNamespace` may use for the service, with and without the port. */
export function serviceDomains(service: Service, port: number, proxyNamespace: string | undefined): string[] {
  // A ServiceEntry host outside the cluster domain has no shorter Kubernetes names.
  if (service.resolution !== undefined && !service.hostname.endsWith(`.svc.${DEFAULT_DOMAIN_SUFFIX}`)) {
    return [service.hostname, ...(service.vip ? [service.vip] : [])].flatMap((name) => [name, `${name}:${port}`]);
  }
  const base = [service.hostname, `${service.name}.${service.namespace}.svc`, `${service.name}.${service.namespace}`];
  // Short names only resolve for callers in the service's own namespace (Kubernetes DNS search path).
  if (proxyNamespace === service.namespace) base.push(service.name);
  if (service.vip) base.push(service.vip);
  return base.flatMap((name) => [name, `${name}:${port}`]);
}

export const MAX_DIRECT_RESPONSE_BODY = 1024 * 1024;

function httpPortsOf(push: PushContext): number[] {
  return push.memo('http-ports', () => {
    const ports = new Set<number>();
    for (const service of push.services) for (const p of service.ports) if (isHttpProtocol(p.protocol)) ports.add(p.port);
    return [...ports].sort((a, b) => a - b);
  });
}

function sidecarRouteConfig(push: PushContext, port: number, caller: RouteCaller): RouteConfiguration {
  const proxyNamespace = caller.namespace;
  const used = new Set<string>();
  const virtualHosts: VirtualHost[] = [];
  for (const service of push.services) {
    const servicePort = service.ports.find((p) => p.port === port && isHttpProtocol(p.protocol));
    if (!servicePort) continue;
    const domains = serviceDomains(service, port, proxyNamespace).filter((d) => !used.has(d));
    if (domains.length === 0) continue;
    for (const d of domains) used.add(d);
    virtualHosts.push({
      name: `${service.hostname}:${port}`,
      domains,
      routes: buildHttpRoutes(push, push.virtualServiceByHost.get(service.hostname), service, servicePort, 'envoy', caller),
    });
  }
  virtualHosts.push(catchAllVirtualHost(push.meshConfig.outboundTrafficPolicy));
  // Istio allows direct_response bodies up to 1 MiB (Envoy's own default is 4 KiB).
  return { name: routeConfigName(port), virtual_hosts: virtualHosts, validate_clusters: false, max_direct_response_body_size_bytes: MAX_DIRECT_RESPONSE_BODY };
}

/** Hosts outside the registry: passed through (ALLOW_ANY) or refused with 502, as Istio's `block_all` does (REGISTRY_ONLY). */
function catchAllVirtualHost(mode: OutboundTrafficMode): VirtualHost {
  if (mode === 'REGISTRY_ONLY') {
    return { name: 'block_all', domains: ['*'], routes: [{ name: 'block_all', match: { prefix: '/' }, direct_response: { status: 502 } }] };
  }
  return { name: 'allow_any', domains: ['*'], routes: [{ name: 'allow_any', match: { prefix: '/' }, route: { cluster: PASSTHROUGH_CLUSTER, timeout: '0s' } }] };
}

export function grpcRouteConfig(push: PushContext, name: string, service: Service, port: ServicePort, caller?: RouteCaller): RouteConfiguration {
  const domains = [...new Set([name, service.hostname, `${service.hostname}:${port.port}`])];
  return {
    name,
    virtual_hosts: [
      { name, domains, routes: buildHttpRoutes(push, push.virtualServiceByHost.get(service.hostname), service, port, 'grpc', caller) },
    ],
  };
}

/** Label keys some route matches on (sourceLabels): the only labels that make two callers' routes differ. */
function sourceLabelKeys(push: PushContext): readonly string[] {
  return push.memo('rds:source-label-keys', () => {
    const keys = new Set<string>();
    for (const vs of new Set(push.virtualServiceByHost.values())) {
      for (const http of vs.http) for (const match of http.match ?? []) for (const key of Object.keys(match.sourceLabels ?? {})) keys.add(key);
    }
    return [...keys].sort();
  });
}

/** Routes depend on the caller's namespace and, through sourceLabels matches, on some of its labels. */
function routeCallerKey(push: PushContext, proxy: Proxy): string {
  const keys = sourceLabelKeys(push);
  return keys.length === 0 ? (proxy.namespace ?? '') : `${proxy.namespace ?? ''}:${JSON.stringify(keys.map((k) => proxy.labels[k] ?? null))}`;
}

/** Route configurations a proxy may ask for; `names` undefined means all a sidecar has. */
export function buildRouteConfigs(root: PushContext, proxy: Proxy, names: readonly string[] | undefined): readonly EnvoyResource[] {
  // Virtual hosts only for what the proxy's Sidecar lets it see.
  const push = scopedPush(root, proxy);
  const wanted = names ?? httpPortsOf(push).map(routeConfigName);
  const callerKey = routeCallerKey(push, proxy);
  // Callers that see the same routes and ask for the same names share one list (and its encoding).
  return push.memo(`rds-set:${proxy.generator}:${callerKey}:${wanted.join(',')}`, () => routeConfigs(push, proxy, wanted, callerKey));
}

function routeConfigs(push: PushContext, proxy: Proxy, wanted: readonly string[], callerKey: string): EnvoyResource[] {
  const caller: RouteCaller = { labels: proxy.labels, namespace: proxy.namespace };
  const out: EnvoyResource[] = [];
  for (const name of wanted) {
    if (/^\d+$/.test(name)) {
      const port = Number(name);
      if (!httpPortsOf(push).includes(port)) continue;
      out.push(
        push.memo(`rds:sidecar:${callerKey}:${name}`, () =>
          internResource(push.sequence, ROUTE_TYPE, name, sidecarRouteConfig(push, port, caller)),
        ),
      );
      continue;
    }
    const target = parseHostPort(name);
    const resolved = target && resolveTargetHost(push, target.host, target.port, proxy.namespace);
    if (!resolved) continue;
    out.push(
      push.memo(`rds:grpc:${callerKey}:${name}`, () =>
        internResource(push.sequence, ROUTE_TYPE, name, grpcRouteConfig(push, name, resolved.service, resolved.port, caller)),
      ),
    );
  }
  return out;
}
