// Liveness and readiness for Kubernetes probes.
import type { FastifyInstance } from 'fastify';
import type { AdminViews } from '../views.ts';

export function registerHealthRoutes(app: FastifyInstance, views: AdminViews): void {
  app.get('/healthz', () => ({ status: 'ok' }));
  app.get('/ready', async (_request, reply) => {
    if (views.ready()) return { status: 'ready', pushSequence: views.currentPush()?.sequence };
    return reply.code(503).send({ status: 'not ready', reason: 'the first model is not built or the xDS port is not bound yet' });
  });
}
