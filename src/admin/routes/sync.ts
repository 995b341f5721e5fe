// /debug/syncz and /debug/config_dump: what each connected proxy was sent and what it said back.
import type { FastifyInstance } from 'fastify';
import { buildConfigDump, type DumpedType } from '../../xds/config-dump.ts';
import type { WatchState, XdsConnection } from '../../xds/server/connection.ts';
import { syncStatus } from '../../xds/server/connection.ts';
import type { ResourceTypeUrl } from '../../xds/type-urls.ts';
import { PUSH_ORDER, SHORT_TYPE } from '../../xds/type-urls.ts';
import { sendError } from '../errors.ts';
import type { AdminViews } from '../views.ts';

function watchView(watch: WatchState | undefined): Record<string, unknown> {
  return {
    status: syncStatus(watch),
    subscribed: watch ? (watch.names ?? '*') : null,
    sent: watch?.sent
      ? { version: watch.sent.version, nonce: watch.sent.nonce, at: watch.sent.at, resources: watch.sent.resources.length }
      : null,
    acked: watch?.acked ?? null,
    nack: watch?.nack ?? null,
  };
}

export function connectionSync(connection: XdsConnection): Record<string, unknown> {
  return {
    proxy: connection.proxy?.id ?? null,
    connectionId: connection.id,
    peer: connection.peer,
    connectedAt: connection.connectedAt,
    generator: connection.proxy?.generator ?? null,
    types: Object.fromEntries(PUSH_ORDER.map((t) => [SHORT_TYPE[t], watchView(connection.watches.get(t))])),
  };
}

/** The newest connection of a proxy id (a reconnecting proxy may briefly have two). */
export function findConnection(views: AdminViews, proxyId: string): XdsConnection | undefined {
  return views
    .connections()
    .filter((c) => c.proxy?.id === proxyId)
    .sort((a, b) => b.connectedAt.getTime() - a.connectedAt.getTime())[0];
}

export function registerSyncRoutes(app: FastifyInstance, views: AdminViews): void {
  app.get('/debug/syncz', () => ({ proxies: views.connections().map(connectionSync) }));

  app.get<{ Querystring: { proxyID?: string } }>('/debug/config_dump', async (request, reply) => {
    const proxyId = request.query.proxyID;
    if (!proxyId) return sendError(reply, 400, 'MP_NOT_FOUND', 'proxyID is required: /debug/config_dump?proxyID=<node id>');
    const connection = findConnection(views, proxyId);
    if (!connection) {
      return sendError(reply, 404, 'MP_NOT_FOUND', `no connected proxy "${proxyId}": see /debug/syncz for connected proxies`);
    }
    const types: Partial<Record<ResourceTypeUrl, DumpedType>> = {};
    for (const typeUrl of PUSH_ORDER) {
      const sent = connection.watches.get(typeUrl)?.sent;
      if (sent) types[typeUrl] = sent;
    }
    return buildConfigDump(types);
  });
}
