// Cross-object checks of a VirtualService: what its destinations name must exist. A missing
// service is a warning (it may appear later, and Istio routes to it anyway); a missing port or
// subset of an existing service is an error: the route fails closed (503), as in Istio.
import type { Destination, DestinationRule, ValidationIssue } from './rules.ts';
import type { Service } from './service.ts';

export interface DestinationRef {
  readonly destination: Destination;
  readonly path: string;
}

export function referenceIssues(
  refs: readonly DestinationRef[],
  services: ReadonlyMap<string, Service>,
  destinationRuleOf: (host: string) => DestinationRule | undefined,
): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  for (const { destination, path } of refs) {
    const { host, subset, port } = destination;
    const service = services.get(host);
    if (!service) {
      // Wildcards and external names cannot be checked against the registry.
      if (host.includes('*')) continue;
      issues.push({
        code: 'MP_REF_UNKNOWN',
        severity: 'warning',
        path: `${path}.host`,
        message: `no service "${host}" in the registry: requests routed here fail with 503 until it exists`,
      });
      continue;
    }
    if (port && !service.ports.some((p) => p.port === port.number)) {
      issues.push({
        code: 'MP_REF_UNKNOWN',
        severity: 'error',
        path: `${path}.port.number`,
        message: `service "${host}" has no port ${port.number}: requests routed here fail with 503; use one of ${service.ports.map((p) => p.port).join(', ')}`,
      });
    }
    if (!port && service.ports.length > 1) {
      issues.push({
        code: 'MP_REF_UNKNOWN',
        severity: 'warning',
        path: `${path}.port`,
        message: `service "${host}" has ${service.ports.length} ports: without port.number the caller's port is used; name one of ${service.ports.map((p) => p.port).join(', ')}`,
      });
    }
    if (subset && !(destinationRuleOf(host)?.spec.subsets ?? []).some((s) => s.name === subset)) {
      issues.push({
        code: 'MP_REF_UNKNOWN',
        severity: 'error',
        path: `${path}.subset`,
        message: `no DestinationRule defines subset "${subset}" for "${host}": requests routed here fail with 503 until it is added to the DestinationRule's subsets`,
      });
    }
  }
  return issues;
}
