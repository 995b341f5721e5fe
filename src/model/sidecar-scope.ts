// What a proxy under a Sidecar may see: the services (and ports) its egress hosts import, the
// VirtualServices they import, and the destinations those route to (as Istio infers them, so
// no imported route points at a cluster the proxy lacks). Presented as a narrower PushContext,
// so the outbound generators need not know about Sidecars.
import type { MeshConfig } from './mesh-config.ts';
import type { Proxy } from './proxy.ts';
import type { PushContext, ResolvedVirtualService } from './push-context.ts';
import { memoizer } from './push-context.ts';
import type { Destination, Sidecar, SidecarEgressListener } from './rules.ts';
import { ruleKey } from './rules.ts';
import type { Service } from './service.ts';
import { egressHosts, importsService, importsVirtualService } from './sidecar.ts';

/** Without egress listeners a Sidecar imports everything, as Istio's default does. */
const IMPORT_ALL: readonly SidecarEgressListener[] = [{ hosts: ['*/*'] }];

export interface SidecarVisibility {
  readonly sidecar: Sidecar;
  /** Visible service hostnames and the ports of each the proxy may use. */
  readonly ports: ReadonlyMap<string, ReadonlySet<number>>;
  readonly virtualServices: ReadonlySet<ResolvedVirtualService>;
}

/** Where a VirtualService sends traffic (hosts already qualified when the push was built). */
function destinationsOf(vs: ResolvedVirtualService): Destination[] {
  return [
    ...vs.http.flatMap((route) => [
      ...(route.route ?? []).map((d) => d.destination),
      ...(route.mirror ? [route.mirror] : []),
      ...(route.mirrors ?? []).flatMap((m) => (m.destination ? [m.destination] : [])),
    ]),
    ...vs.tcp.flatMap((route) => (route.route ?? []).map((d) => d.destination)),
  ];
}

/** The port a destination is reached on from a listener of `listenerPort`, as the route generator picks it. */
function destinationPort(destination: Destination, service: Service, listenerPort: number): number {
  if (destination.port) return destination.port.number;
  const [only] = service.ports;
  return service.ports.length === 1 && only ? only.port : listenerPort;
}

export function sidecarVisibility(push: PushContext, sidecar: Sidecar, proxyNamespace: string): SidecarVisibility {
  const ports = new Map<string, Set<number>>();
  const add = (service: Service, port: number | undefined): void => {
    const wanted = port === undefined ? service.ports.map((p) => p.port) : service.ports.some((p) => p.port === port) ? [port] : [];
    if (wanted.length === 0) return;
    let set = ports.get(service.hostname);
    if (!set) ports.set(service.hostname, (set = new Set()));
    for (const p of wanted) set.add(p);
  };
  const allVirtualServices = new Set(push.virtualServiceByHost.values());
  const virtualServices = new Set<ResolvedVirtualService>();
  const listeners = sidecar.spec.egress && sidecar.spec.egress.length > 0 ? sidecar.spec.egress : IMPORT_ALL;
  for (const listener of listeners) {
    const hosts = egressHosts(listener.hosts, proxyNamespace);
    const listenerPort = listener.port?.number;
    for (const service of push.services) if (importsService(hosts, service)) add(service, listenerPort);
    for (const vs of allVirtualServices) {
      if (!importsVirtualService(hosts, vs.rule.meta.namespace, vs.hosts)) continue;
      virtualServices.add(vs);
      for (const destination of destinationsOf(vs)) {
        const service = push.serviceByHost.get(destination.host);
        if (service) add(service, listenerPort === undefined ? undefined : destinationPort(destination, service, listenerPort));
      }
    }
  }
  return { sidecar, ports, virtualServices };
}

/** A copy of the service with only the ports the proxy may use (the same object when that is all of them). */
function trimmed(service: Service, ports: ReadonlySet<number>): Service {
  return ports.size === service.ports.length ? service : { ...service, ports: service.ports.filter((p) => ports.has(p.port)) };
}

function scopedMeshConfig(mesh: MeshConfig, sidecar: Sidecar): MeshConfig {
  const mode = sidecar.spec.outboundTrafficPolicy?.mode;
  return mode && mode !== mesh.outboundTrafficPolicy ? { ...mesh, outboundTrafficPolicy: mode } : mesh;
}

function buildScopedPush(push: PushContext, visibility: SidecarVisibility): PushContext {
  const services = push.services.flatMap((service) => {
    const ports = visibility.ports.get(service.hostname);
    return ports ? [trimmed(service, ports)] : [];
  });
  const serviceByHost = new Map(services.map((s) => [s.hostname, s]));
  const virtualServiceByHost = new Map([...push.virtualServiceByHost].filter(([, vs]) => visibility.virtualServices.has(vs)));
  const scoped: PushContext = {
    sequence: push.sequence,
    builtAt: push.builtAt,
    services,
    serviceByHost,
    endpointsByHost: push.endpointsByHost,
    virtualServiceByHost,
    destinationRuleByHost: push.destinationRuleByHost,
    destinationRuleFor: (host, proxyNamespace) => push.destinationRuleFor(host, proxyNamespace),
    ruleStatus: push.ruleStatus,
    // Already scoped: scoping it again must not narrow it further.
    sidecarFor: () => undefined,
    authorizationPoliciesFor: (proxy) => push.authorizationPoliciesFor(proxy),
    workloadLabels: (proxy) => push.workloadLabels(proxy),
    rejected: push.rejected,
    objectWarnings: push.objectWarnings,
    routeStatuses: push.routeStatuses,
    gatewayStatuses: push.gatewayStatuses,
    meshConfig: scopedMeshConfig(push.meshConfig, visibility.sidecar),
    peerAuthentication: push.peerAuthentication,
    gateways: push.gateways,
    gatewayFor: (proxy) => push.gatewayFor(proxy),
    virtualServicesForGateway: (gateway, proxyNamespace) => push.virtualServicesForGateway(gateway, proxyNamespace),
    memo: memoizer(),
    viewFrom: () => scoped,
  };
  return scoped;
}

function scopeKey(sidecar: Sidecar, proxyNamespace: string): string {
  return `sidecar-scope:${ruleKey(sidecar.meta)}:${proxyNamespace}`;
}

/**
 * What `proxy` may see: what its namespace sees (exportTo), narrowed by its Sidecar; `push`
 * itself when neither hides anything, and one view shared by the proxies scoped alike.
 */
export function scopedPush(push: PushContext, proxy: Pick<Proxy, 'type' | 'namespace' | 'labels' | 'ipAddresses'>): PushContext {
  const visible = push.viewFrom(proxy.namespace);
  const sidecar = push.sidecarFor(proxy);
  if (!sidecar || proxy.namespace === undefined) return visible;
  const namespace = proxy.namespace;
  return push.memo(scopeKey(sidecar, namespace), () => buildScopedPush(visible, sidecarVisibility(visible, sidecar, namespace)));
}
