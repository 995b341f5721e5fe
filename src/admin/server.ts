// The admin HTTP server (fastify): health, readiness and the /debug API.
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { registerConfigRoutes } from './routes/config.ts';
import { registerHealthRoutes } from './routes/health.ts';
import { registerRegistryRoutes } from './routes/registry.ts';
import { registerSyncRoutes } from './routes/sync.ts';
import type { AdminViews } from './views.ts';

export function buildAdminApp(views: AdminViews, log: Logger): FastifyInstance {
  // Per-request lines are noise for an admin API polled by probes: only warnings and errors.
  const loggerInstance: FastifyBaseLogger = log.child({ component: 'admin' }, { level: log.levelVal > 40 ? log.level : 'warn' });
  const app = Fastify({ loggerInstance });
  registerHealthRoutes(app, views);
  registerRegistryRoutes(app, views);
  registerConfigRoutes(app, views);
  registerSyncRoutes(app, views);
  return app;
}

export async function startAdminServer(app: FastifyInstance, host: string, port: number): Promise<number> {
  await app.listen({ host, port });
  const address = app.server.address();
  return typeof address === 'object' && address ? address.port : port;
}
