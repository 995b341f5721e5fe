// /debug/configz: every rule with its problems and the proxies rejecting what it produced,
// and every object a source rejected.
import type { FastifyInstance } from 'fastify';
import { grpcDegradations } from '../../xds/generate/grpc-degradation.ts';
import { anyObject, issue, nackAttribution } from '../schemas.ts';
import type { AdminViews } from '../views.ts';

const rejectedBy = {
  type: 'object',
  properties: {
    proxy: { type: 'string' },
    type: { type: 'string' },
    resource: { type: 'string' },
    httpRoute: { type: 'integer' },
    message: { type: 'string' },
    at: { type: 'string' },
  },
} as const;

const configz = {
  type: 'object',
  properties: {
    pushSequence: { type: 'integer' },
    rules: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          kind: { type: 'string' },
          namespace: { type: 'string' },
          name: { type: 'string' },
          source: anyObject,
          applied: { type: 'boolean' },
          errors: { type: 'array', items: issue },
          warnings: { type: 'array', items: issue },
          rejectedBy: { type: 'array', items: rejectedBy, description: 'proxies whose current NACK names a resource this rule produced' },
          origin: { ...anyObject, description: 'for a rule converted from Gateway API routes (GAMMA): the route and rule each spec.http entry came from' },
          spec: anyObject,
        },
      },
    },
    rejected: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          object: { type: 'string' },
          kind: { type: ['string', 'null'] },
          namespace: { type: ['string', 'null'] },
          name: { type: ['string', 'null'] },
          source: anyObject,
          keptLastGood: { type: 'boolean' },
          errors: { type: 'array', items: issue },
          warnings: { type: 'array', items: issue },
        },
      },
    },
    objectWarnings: {
      type: 'array',
      description: 'served objects other than rules (ServiceEntry, WorkloadEntry) with their warnings',
      items: {
        type: 'object',
        properties: { object: { type: 'string' }, kind: { type: 'string' }, namespace: { type: 'string' }, name: { type: 'string' }, source: anyObject, warnings: { type: 'array', items: issue } },
      },
    },
    nacks: { type: 'array', items: nackAttribution, description: 'every current NACK with the resources and rules it names' },
    routeStatuses: {
      type: 'array',
      description: "Gateway API routes whose parent is a Service or a Gateway of meshpilot's classes, with the status meshpilot gives each parent (what the leader writes to the route's status.parents)",
      items: {
        type: 'object',
        properties: { kind: { type: 'string' }, namespace: { type: 'string' }, name: { type: 'string' }, source: anyObject, parents: { type: 'array', items: anyObject } },
      },
    },
    gatewayStatuses: {
      type: 'array',
      description: "GatewayClasses and Gateways of meshpilot's classes, and XMeshes of its mesh controller, with the status the leader writes (conditions, addresses, listeners, supportedFeatures)",
      items: {
        type: 'object',
        properties: { kind: { type: 'string' }, namespace: { type: 'string' }, name: { type: 'string' }, source: anyObject, status: anyObject },
      },
    },
  },
} as const;

export function registerConfigRoutes(app: FastifyInstance, views: AdminViews): void {
  app.get('/debug/configz', {
    schema: { summary: 'Every rule with its status and problems, every rejected object, and current NACKs', response: { 200: configz } },
    handler: () => {
      const push = views.currentPush();
      const nacks = views.nacks?.().active(views.connections()) ?? [];
      if (!push) return { rules: [], rejected: [], objectWarnings: [], nacks: [], routeStatuses: [], gatewayStatuses: [] };
      const rejectedByRule = new Map<string, Record<string, unknown>[]>();
      for (const nack of nacks) {
        for (const resource of nack.resources) {
          for (const rule of resource.rules) {
            const key = `${rule.kind}/${rule.namespace}/${rule.name}`;
            const list = rejectedByRule.get(key) ?? [];
            list.push({ proxy: nack.proxy, type: nack.type, resource: resource.name, ...(rule.httpRoute !== undefined ? { httpRoute: rule.httpRoute } : {}), message: nack.message, at: nack.at.toISOString() });
            rejectedByRule.set(key, list);
          }
        }
      }
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
          warnings: [
            ...(rule.meta.warnings ?? []),
            ...issues.filter((i) => i.severity === 'warning'),
            ...(applied ? grpcDegradations(push, rule) : []),
          ],
          // A converted rule's resources name the routes it came from.
          rejectedBy: [rule.meta, ...(rule.meta.origin?.http ?? [])]
            .map((from) => `${from.kind}/${from.namespace}/${from.name}`)
            .filter((key, i, keys) => keys.indexOf(key) === i)
            .flatMap((key) => rejectedByRule.get(key) ?? []),
          ...(rule.meta.origin ? { origin: rule.meta.origin } : {}),
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
        objectWarnings: push.objectWarnings.map((w) => ({ object: w.object, kind: w.kind, namespace: w.namespace, name: w.name, source: w.source, warnings: w.issues })),
        nacks: nacks.map((n) => ({ ...n, at: n.at.toISOString() })),
        routeStatuses: push.routeStatuses,
        gatewayStatuses: push.gatewayStatuses,
      };
    },
  });
}
