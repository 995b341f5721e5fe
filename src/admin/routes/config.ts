// /debug/configz: every rule with its problems, and every object a source rejected.
import type { FastifyInstance } from 'fastify';
import { grpcDegradations } from '../../xds/generate/grpc-degradation.ts';
import type { AdminViews } from '../views.ts';

export function registerConfigRoutes(app: FastifyInstance, views: AdminViews): void {
  app.get('/debug/configz', () => {
    const push = views.currentPush();
    if (!push) return { rules: [], rejected: [] };
    return {
      pushSequence: push.sequence,
      rules: [...push.ruleStatus.values()].map(({ rule, issues, applied }) => ({
        kind: rule.meta.kind,
        namespace: rule.meta.namespace,
        name: rule.meta.name,
        source: rule.meta.source,
        applied,
        errors: issues.filter((i) => i.severity === 'error'),
        // What proxyless gRPC clients get degraded shows beside the rule's own warnings.
        warnings: [...issues.filter((i) => i.severity === 'warning'), ...(applied ? grpcDegradations(push, rule) : [])],
        spec: rule.spec,
      })),
      rejected: push.rejected.map((r) => ({
        object: r.object,
        kind: r.kind ?? null,
        namespace: r.namespace ?? null,
        name: r.name ?? null,
        source: r.source,
        keptLastGood: r.keptLastGood,
        errors: r.issues.filter((i) => i.severity === 'error'),
        warnings: r.issues.filter((i) => i.severity === 'warning'),
      })),
    };
  });
}
