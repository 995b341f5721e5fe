// Resolving the host a proxyless gRPC client dials (`xds:///reviews:9080`) to a service port.
import type { PushContext } from '../../model/push-context.ts';
import type { Service, ServicePort } from '../../model/service.ts';
import { DEFAULT_DOMAIN_SUFFIX } from '../../model/service.ts';

/** Accepts the FQDN, `name.ns.svc`, `name.ns`, or a short name in the caller's namespace. */
export function resolveTargetHost(
  push: PushContext,
  host: string,
  port: number,
  proxyNamespace: string | undefined,
): { service: Service; port: ServicePort } | undefined {
  const candidates = [host, `${host}.svc.${DEFAULT_DOMAIN_SUFFIX}`, `${host}.${DEFAULT_DOMAIN_SUFFIX}`];
  if (!host.includes('.') && proxyNamespace) candidates.push(`${host}.${proxyNamespace}.svc.${DEFAULT_DOMAIN_SUFFIX}`);
  for (const candidate of candidates) {
    const service = push.serviceByHost.get(candidate);
    const servicePort = service?.ports.find((p) => p.port === port);
    if (service && servicePort) return { service, port: servicePort };
  }
  return undefined;
}
