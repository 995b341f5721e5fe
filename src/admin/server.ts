// The admin HTTP server (fastify): health, readiness, the /debug API (documented at /docs),
// /metrics and the web UI.
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { MeshpilotMetrics } from '../metrics.ts';
import { registerAdminAccess, type AdminAccess } from './auth.ts';
import { sendError } from './errors.ts';
import { registerCertsRoutes } from './routes/certs.ts';
import { registerAuthzRoutes } from './routes/authz.ts';
import { registerConfigRoutes } from './routes/config.ts';
import { registerExplainRoutes } from './routes/explain.ts';
import { registerGraphRoutes } from './routes/graph.ts';
import { registerHealthRoutes } from './routes/health.ts';
import { registerLeaderRoutes } from './routes/leader.ts';
import { registerMetricsRoute } from './routes/metrics.ts';
import { registerPreviewRoutes } from './routes/preview.ts';
import { registerPushRoutes } from './routes/push.ts';
import { registerRegistryRoutes } from './routes/registry.ts';
import { registerSyncRoutes } from './routes/sync.ts';
import { registerUiRoutes } from './routes/ui.ts';
import type { AdminViews } from './views.ts';

export interface AdminOptions {
  /** Where the admin API binds and its bearer token: who may read /debug/* and the UI's data. */
  readonly access: AdminAccess;
  readonly metrics?: MeshpilotMetrics;
}

/** Preview bodies are rule YAML; a few MB is already far more than any rule set. */
const BODY_LIMIT = 4 * 1024 * 1024;

export async function buildAdminApp(views: AdminViews, log: Logger, options: AdminOptions): Promise<FastifyInstance> {
  // Per-request lines are noise for an admin API polled by probes: only warnings and errors.
  const loggerInstance: FastifyBaseLogger = log.child({ component: 'admin' }, { level: log.levelVal > 40 ? log.level : 'warn' });
  const app = Fastify({ loggerInstance, bodyLimit: BODY_LIMIT });
  // Not text/plain (fastify's default): a page on another origin may POST that without a CORS preflight.
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser(['text/yaml', 'application/yaml', 'application/x-yaml'], { parseAs: 'string' }, (_request, body, done) => {
    done(null, body);
  });
  app.setErrorHandler((error: FastifyError, _request, reply) => {
    if (error.validation) return sendError(reply, 400, 'MP_BAD_REQUEST', error.message);
    if (error.statusCode !== undefined && error.statusCode < 500) return sendError(reply, error.statusCode, 'MP_BAD_REQUEST', error.message);
    reply.log.error({ err: error }, 'admin request failed');
    return sendError(reply, 500, 'MP_INTERNAL', error.message);
  });
  app.setNotFoundHandler((request, reply) => sendError(reply, 404, 'MP_NOT_FOUND', `no admin path ${request.method} ${request.url.split('?')[0] ?? ''}: see /docs`));
  registerAdminAccess(app, options.access);
  await app.register(swagger, {
    openapi: {
      info: { title: 'meshpilot admin API', version: '1', description: 'Read-only views of what meshpilot knows and sends, plus explain and preview.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  registerHealthRoutes(app, views);
  registerRegistryRoutes(app, views);
  registerConfigRoutes(app, views);
  registerSyncRoutes(app, views);
  registerPushRoutes(app, views);
  registerExplainRoutes(app, views);
  registerAuthzRoutes(app, views);
  registerPreviewRoutes(app, views);
  registerGraphRoutes(app, views);
  registerCertsRoutes(app, views);
  registerLeaderRoutes(app, views);
  if (options.metrics) registerMetricsRoute(app, options.metrics);
  registerUiRoutes(app, options.access.token !== undefined && options.access.token !== '');
  return app;
}

export async function startAdminServer(app: FastifyInstance, host: string, port: number): Promise<number> {
  await app.listen({ host, port });
  const address = app.server.address();
  return typeof address === 'object' && address ? address.port : port;
}
