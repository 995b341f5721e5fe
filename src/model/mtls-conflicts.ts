// A DestinationRule that sends plaintext (tls.mode DISABLE) to a server whose PeerAuthentication is
// STRICT: every such request is refused. Istio's analyzer reports it (MTLSPolicyConflict); so does meshpilot.
import { hostMatches } from './destination-rules.ts';
import type { PeerAuthenticationIndex } from './peer-authentication.ts';
import { portMode } from './peer-authentication.ts';
import type { ClientTlsSettings, DestinationRule, TrafficPolicy, ValidationIssue } from './rules.ts';
import type { Endpoint, Service } from './service.ts';
import { resolveShortName } from './service.ts';

interface DisabledAt {
  readonly path: string;
  /** Undefined: every port. */
  readonly port?: number;
}

function disabledIn(policy: TrafficPolicy | undefined, path: string): DisabledAt[] {
  const off = (tls: ClientTlsSettings | undefined): boolean => tls?.mode === 'DISABLE';
  const out: DisabledAt[] = off(policy?.tls) ? [{ path: `${path}.tls.mode` }] : [];
  policy?.portLevelSettings?.forEach((setting, i) => {
    if (off(setting.tls) && setting.port?.number !== undefined) out.push({ path: `${path}.portLevelSettings[${i}].tls.mode`, port: setting.port.number });
  });
  return out;
}

/** Where the endpoints of `service` on service port `port` (every port when undefined) accept only mTLS. */
function strictServers(service: Service, port: number | undefined, endpoints: readonly Endpoint[], index: PeerAuthenticationIndex): string[] {
  const ports = service.ports.filter((p) => port === undefined || p.port === port);
  const strict = new Set<string>();
  for (const endpoint of endpoints) {
    if (!ports.some((p) => p.name === endpoint.servicePortName || ports.length === 1)) continue;
    const mtls = index.forWorkload(service.namespace, endpoint.labels);
    if (portMode(mtls, endpoint.port) !== 'STRICT') continue;
    const decidedBy = mtls.policies.at(-1);
    strict.add(decidedBy ? `${decidedBy.meta.namespace}/${decidedBy.meta.name}` : 'the mesh default');
  }
  return [...strict].sort();
}

/** MP_MTLS_CONFLICT warnings for each plaintext setting of `rule` aimed at a STRICT server. */
export function mtlsConflictIssues(
  rule: DestinationRule,
  services: readonly Service[],
  endpointsByHost: ReadonlyMap<string, readonly Endpoint[]>,
  index: PeerAuthenticationIndex,
): ValidationIssue[] {
  if (index.size === 0) return [];
  const host = resolveShortName(rule.spec.host, rule.meta.namespace);
  const settings = [
    ...disabledIn(rule.spec.trafficPolicy, 'spec.trafficPolicy'),
    ...(rule.spec.subsets ?? []).flatMap((subset, i) => disabledIn(subset.trafficPolicy, `spec.subsets[${i}].trafficPolicy`)),
  ];
  const issues: ValidationIssue[] = [];
  for (const setting of settings) {
    for (const service of services) {
      if (service.meshExternal || !hostMatches(host, service.hostname)) continue;
      const policies = strictServers(service, setting.port, endpointsByHost.get(service.hostname) ?? [], index);
      if (policies.length === 0) continue;
      issues.push({
        code: 'MP_MTLS_CONFLICT',
        severity: 'warning',
        path: setting.path,
        message: `sends plaintext to ${service.hostname}, whose PeerAuthentication ${policies.join(', ')} is STRICT: its servers refuse these requests; use ISTIO_MUTUAL (or no tls, for auto mTLS), or relax the policy`,
      });
    }
  }
  return issues;
}
