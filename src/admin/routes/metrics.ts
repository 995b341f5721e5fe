// /metrics: Prometheus text format, open like Istio's (scrapers carry no token).
import type { FastifyInstance } from 'fastify';
import type { MeshpilotMetrics } from '../../metrics.ts';

export function registerMetricsRoute(app: FastifyInstance, metrics: MeshpilotMetrics): void {
  app.get('/metrics', { schema: { summary: 'Prometheus metrics (pilot_* names as in Istio, plus process metrics)', produces: ['text/plain'] } }, async (_request, reply) => {
    const { contentType, body } = await metrics.render();
    return reply.type(contentType).send(body);
  });
}
