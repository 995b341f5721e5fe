// /debug/leaderz: who leads the status Lease (this replica or another), and what this replica's
// status writer did; without Kubernetes, why nothing is elected.
import type { FastifyInstance } from 'fastify';
import type { AdminViews } from '../views.ts';

const timing = { type: 'object', properties: { leaseDurationMs: { type: 'number' }, renewDeadlineMs: { type: 'number' }, retryPeriodMs: { type: 'number' } } } as const;

const leaderz = {
  type: 'object',
  properties: {
    election: {
      type: ['object', 'null'],
      properties: {
        lease: { type: 'string', description: 'namespace/name of the Lease' },
        identity: { type: 'string', description: "this replica's holder identity" },
        leader: { type: ['string', 'null'], description: "the holder as last seen ('' released, null not read yet)" },
        leading: { type: 'boolean' },
        leadingSince: { type: 'string' },
        transitions: { type: 'integer' },
        timing,
        lastError: { type: 'string' },
      },
    },
    status: {
      type: ['object', 'null'],
      properties: {
        leading: { type: 'boolean' },
        written: { type: 'integer' },
        conflicts: { type: 'integer' },
        failed: { type: 'integer' },
        pending: { type: 'integer' },
        lastWriteAt: { type: 'string' },
        lastError: { type: 'string' },
      },
    },
    gatewayDeployment: {
      type: ['object', 'null'],
      description: 'with --gateway-deployment on: the Gateways of meshpilot\'s class, and what this replica applied for them while leading',
      properties: { managed: { type: 'integer' }, applied: { type: 'integer' }, failed: { type: 'integer' }, lastError: { type: 'string' } },
    },
    why: { type: ['string', 'null'], description: 'why there is no election, when there is none' },
  },
} as const;

export function registerLeaderRoutes(app: FastifyInstance, views: AdminViews): void {
  app.get('/debug/leaderz', {
    schema: { summary: 'Who leads the status Lease, and the status writes and gateway deployments of this replica', response: { 200: leaderz } },
    handler: () => {
      const state = views.leaderElection?.();
      return {
        election: state?.election ? { ...state.election, leader: state.election.leader ?? null } : null,
        status: state?.status ?? null,
        gatewayDeployment: state?.gatewayDeployment ?? null,
        why: state?.why ?? (state ? null : 'no Kubernetes source: nothing is elected'),
      };
    },
  });
}
