// The outbound targets every proxy may call: one per service port, and one per subset of it.
import type { PushContext } from '../../model/push-context.ts';
import type { Subset } from '../../model/rules.ts';
import type { Service, ServicePort } from '../../model/service.ts';
import { clusterName } from './names.ts';

export interface OutboundTarget {
  readonly clusterName: string;
  readonly service: Service;
  readonly port: ServicePort;
  readonly subset?: Subset;
}

/** All outbound clusters of the mesh, in a stable order; shared by every proxy of a push. */
export function outboundTargets(push: PushContext): readonly OutboundTarget[] {
  return push.memo('outbound-targets', () => {
    const targets: OutboundTarget[] = [];
    for (const service of push.services) {
      const subsets = push.destinationRuleByHost.get(service.hostname)?.spec.subsets ?? [];
      for (const port of service.ports) {
        targets.push({ clusterName: clusterName(port.port, service.hostname), service, port });
        for (const subset of subsets) {
          targets.push({ clusterName: clusterName(port.port, service.hostname, subset.name), service, port, subset });
        }
      }
    }
    return targets;
  });
}

export function outboundTargetByName(push: PushContext): ReadonlyMap<string, OutboundTarget> {
  return push.memo('outbound-targets-by-name', () => new Map(outboundTargets(push).map((t) => [t.clusterName, t])));
}
