// /debug/push_status: the last push (reason, duration, proxies), sync totals and rule conflicts.
import type { FastifyInstance } from 'fastify';
import { syncStatus } from '../../xds/server/connection.ts';
import type { XdsConnection } from '../../xds/server/connection.ts';
import type { AdminViews } from '../views.ts';

const pushStatus = {
  type: 'object',
  properties: {
    pushSequence: { type: ['integer', 'null'] },
    lastPush: {
      type: ['object', 'null'],
      properties: {
        sequence: { type: 'integer' },
        at: { type: 'string' },
        reasons: { type: 'array', items: { type: 'string' } },
        debounceMs: { type: 'number' },
        durationMs: { type: 'number' },
        proxies: { type: 'integer' },
      },
    },
    proxies: {
      type: 'object',
      description: 'connected proxies by their worst type status',
      properties: { total: { type: 'integer' }, synced: { type: 'integer' }, stale: { type: 'integer' }, error: { type: 'integer' }, notSent: { type: 'integer' } },
    },
    counts: {
      type: 'object',
      properties: { services: { type: 'integer' }, virtualServices: { type: 'integer' }, destinationRules: { type: 'integer' }, rejectedObjects: { type: 'integer' } },
    },
    conflicts: {
      type: 'array',
      items: {
        type: 'object',
        properties: { kind: { type: 'string' }, namespace: { type: 'string' }, name: { type: 'string' }, path: { type: 'string' }, message: { type: 'string' } },
      },
    },
  },
} as const;

type Worst = 'error' | 'stale' | 'notSent' | 'synced';

function worstStatus(connection: XdsConnection): Worst {
  const statuses = [...connection.watches.values()].map((w) => syncStatus(w));
  if (statuses.includes('ERROR')) return 'error';
  if (statuses.includes('STALE')) return 'stale';
  if (statuses.length === 0 || statuses.every((s) => s === 'NOT SENT')) return 'notSent';
  return 'synced';
}

export function registerPushRoutes(app: FastifyInstance, views: AdminViews): void {
  app.get('/debug/push_status', {
    schema: { summary: 'The last push: reasons, debounce, duration, proxies; sync totals and rule conflicts', response: { 200: pushStatus } },
    handler: () => {
      const push = views.currentPush();
      const last = views.lastPush();
      const connections = views.connections();
      const proxies = { total: connections.length, synced: 0, stale: 0, error: 0, notSent: 0 };
      for (const c of connections) proxies[worstStatus(c)]++;
      const statuses = push ? [...push.ruleStatus.values()] : [];
      return {
        pushSequence: push?.sequence ?? null,
        lastPush: last ? { ...last, at: last.at.toISOString() } : null,
        proxies,
        counts: {
          services: push?.services.length ?? 0,
          virtualServices: statuses.filter((s) => s.rule.meta.kind === 'VirtualService').length,
          destinationRules: statuses.filter((s) => s.rule.meta.kind === 'DestinationRule').length,
          rejectedObjects: push?.rejected.length ?? 0,
        },
        conflicts: statuses.flatMap((s) =>
          s.issues
            .filter((i) => i.code === 'MP_RULE_CONFLICT')
            .map((i) => ({ kind: s.rule.meta.kind, namespace: s.rule.meta.namespace, name: s.rule.meta.name, path: i.path, message: i.message })),
        ),
      };
    },
  });
}
