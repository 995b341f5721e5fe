// /debug/syncz, /debug/adsz and /debug/config_dump: what each connected proxy asked for, was
// sent and said back.
import type { FastifyInstance } from 'fastify';
import { PROXY_KINDS, proxyKind, type Proxy } from '../../model/proxy.ts';
import type { PushContext } from '../../model/push-context.ts';
import { buildConfigDump, type DumpedType } from '../../xds/config-dump.ts';
import type { WatchState, XdsConnection } from '../../xds/server/connection.ts';
import { syncStatus } from '../../xds/server/connection.ts';
import type { ResourceTypeUrl } from '../../xds/type-urls.ts';
import { PUSH_ORDER, SECRET_TYPE, SHORT_TYPE } from '../../xds/type-urls.ts';
import { sendError } from '../errors.ts';
import { issuedByIdentity, proxySecurity, proxySecuritySchema } from '../proxy-security.ts';
import { anyObject, errorResponses, nackAttribution, nullableString, proxyQuery } from '../schemas.ts';
import type { AdminViews } from '../views.ts';

const proxyKindSchema = { type: ['string', 'null'], enum: [...PROXY_KINDS, null], description: 'sidecar, router (a gateway), proxyless-grpc, or unknown (a node id not in Istio form)' } as const;

const syncType = {
  type: 'object',
  properties: {
    status: { type: 'string', enum: ['SYNCED', 'STALE', 'NOT SENT', 'ERROR'] },
    subscribed: { description: '"*" for a wildcard subscription, else the names asked for', anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }, { type: 'null' }] },
    sent: {
      type: ['object', 'null'],
      properties: { version: { type: 'string' }, nonce: { type: 'string' }, at: { type: 'string' }, resources: { type: 'integer' }, pushSequence: { type: 'integer' } },
    },
    acked: { type: ['object', 'null'], properties: { version: { type: 'string' }, nonce: { type: 'string' }, at: { type: 'string' } } },
    nack: {
      type: ['object', 'null'],
      properties: {
        version: { type: 'string' },
        nonce: { type: 'string' },
        at: { type: 'string' },
        code: { type: 'integer' },
        message: { type: 'string' },
        rejected: { type: ['object', 'null'], properties: nackAttribution.properties },
      },
    },
  },
} as const;

export const proxySync = {
  type: 'object',
  properties: {
    proxy: nullableString,
    connectionId: { type: 'string' },
    peer: { type: 'string' },
    connectedAt: { type: 'string' },
    generator: nullableString,
    kind: proxyKindSchema,
    types: { type: 'object', properties: { cds: syncType, eds: syncType, lds: syncType, rds: syncType, sds: syncType } },
  },
} as const;

function watchView(views: AdminViews, connection: XdsConnection, typeUrl: ResourceTypeUrl, watch: WatchState | undefined): Record<string, unknown> {
  const attribution = views.nacks?.().current(connection, typeUrl);
  return {
    status: syncStatus(watch),
    subscribed: watch ? (watch.names ?? '*') : null,
    sent: watch?.sent
      ? { version: watch.sent.version, nonce: watch.sent.nonce, at: watch.sent.at.toISOString(), resources: watch.sent.resources.length, pushSequence: watch.sent.pushSequence }
      : null,
    acked: watch?.acked ? { ...watch.acked, at: watch.acked.at.toISOString() } : null,
    nack: watch?.nack
      ? { ...watch.nack, at: watch.nack.at.toISOString(), rejected: attribution ? { ...attribution, at: attribution.at.toISOString() } : null }
      : null,
  };
}

export function connectionSync(views: AdminViews, connection: XdsConnection): Record<string, unknown> {
  return {
    proxy: connection.proxy?.id ?? null,
    connectionId: connection.id,
    peer: connection.peer,
    connectedAt: connection.connectedAt.toISOString(),
    generator: connection.proxy?.generator ?? null,
    kind: connection.proxy ? proxyKind(connection.proxy) : null,
    // SDS only for the proxies that take Secrets over ADS (gateways with credentialName).
    types: Object.fromEntries(PUSH_ORDER.filter((t) => t !== SECRET_TYPE || connection.watches.has(t)).map((t) => [SHORT_TYPE[t], watchView(views, connection, t, connection.watches.get(t))])),
  };
}

/** The newest connection of a proxy id (a reconnecting proxy may briefly have two). */
export function findConnection(views: AdminViews, proxyId: string): XdsConnection | undefined {
  return views
    .connections()
    .filter((c) => c.proxy?.id === proxyId)
    .sort((a, b) => b.connectedAt.getTime() - a.connectedAt.getTime())[0];
}

export function noSuchProxy(proxyId: string): string {
  return `no connected proxy "${proxyId}": see /debug/syncz for connected proxies`;
}

const adsConnection = {
  type: 'object',
  properties: {
    connectionId: { type: 'string' },
    peer: { type: 'string' },
    connectedAt: { type: 'string' },
    proxy: nullableString,
    proxyType: nullableString,
    kind: proxyKindSchema,
    generator: nullableString,
    namespace: nullableString,
    ipAddresses: { type: 'array', items: { type: 'string' } },
    labels: { type: 'object', additionalProperties: { type: 'string' } },
    grpcLimits: { type: 'array', items: { type: 'string' }, description: "what this gRPC client's user agent says it must not be sent (ring-hash-crashes: round robin instead)" },
    sidecar: { type: ['string', 'null'], description: 'namespace/name of the Sidecar resource that limits what this proxy is sent; null when none applies' },
    security: { ...proxySecuritySchema, type: ['object', 'null'], description: "the workload's identity, its newest certificate from meshpilot's CA, and the mTLS mode of each inbound port" },
    node: {
      type: ['object', 'null'],
      properties: {
        id: { type: 'string' },
        cluster: { type: 'string' },
        userAgentName: { type: 'string' },
        userAgentVersion: { type: 'string' },
        metadata: anyObject,
        locality: anyObject,
      },
    },
    watches: {
      type: 'object',
      additionalProperties: {
        type: 'object',
        properties: {
          subscribed: syncType.properties.subscribed,
          requests: { type: 'integer' },
          status: { type: 'string' },
          resourceNames: { type: 'array', items: { type: 'string' } },
        },
      },
    },
  },
} as const;

/** `namespace/name` of the Sidecar that scopes the proxy, or null. */
function effectiveSidecar(push: PushContext | undefined, proxy: Proxy | undefined): string | null {
  const sidecar = push && proxy ? push.sidecarFor(proxy) : undefined;
  return sidecar ? `${sidecar.meta.namespace}/${sidecar.meta.name}` : null;
}

export function registerSyncRoutes(app: FastifyInstance, views: AdminViews): void {
  app.get('/debug/syncz', {
    schema: {
      summary: 'Sync state of every connected proxy, per type',
      description: 'Per proxy and type (cds/eds/lds/rds/sds): subscription, sent and ACKed version and nonce, status, and for a NACK the rejected resources and the rules that produced them.',
      response: { 200: { type: 'object', properties: { proxies: { type: 'array', items: proxySync } } } },
    },
    handler: () => ({ proxies: views.connections().map((c) => connectionSync(views, c)) }),
  });

  app.get('/debug/adsz', {
    schema: {
      summary: 'Every ADS connection: address, node, metadata, connected since, watches, identity, certificate and mTLS per port',
      response: { 200: { type: 'object', properties: { connections: { type: 'array', items: adsConnection } } } },
    },
    handler: () => {
      const push = views.currentPush();
      const issued = issuedByIdentity(views.certificateAuthority?.());
      return {
        connections: views.connections().map((c) => ({
          connectionId: c.id,
          peer: c.peer,
          connectedAt: c.connectedAt.toISOString(),
          proxy: c.proxy?.id ?? null,
          proxyType: c.proxy?.type ?? null,
          kind: c.proxy ? proxyKind(c.proxy) : null,
          generator: c.proxy?.generator ?? null,
          namespace: c.proxy?.namespace ?? null,
          ipAddresses: c.proxy?.ipAddresses ?? [],
          labels: c.proxy?.labels ?? {},
          grpcLimits: c.proxy?.grpcLimits ?? [],
          sidecar: effectiveSidecar(push, c.proxy),
          security: push && c.proxy ? proxySecurity(push, c.proxy, issued) : null,
          node: c.node ? { ...c.node, locality: c.node.locality ?? {} } : null,
          watches: Object.fromEntries(
            PUSH_ORDER.filter((t) => c.watches.has(t)).map((t) => {
              const w = c.watches.get(t);
              return [SHORT_TYPE[t], { subscribed: w?.names ?? '*', requests: w?.requests ?? 0, status: syncStatus(w), resourceNames: (w?.sent?.resources ?? []).map((r) => r.name) }];
            }),
          ),
        })),
      };
    },
  });

  app.get<{ Querystring: { proxyID: string } }>('/debug/config_dump', {
    schema: {
      summary: "What a proxy was sent, in Envoy's /config_dump shape",
      querystring: proxyQuery,
      response: { 200: { type: 'object', properties: { configs: { type: 'array', items: anyObject } } }, ...errorResponses },
    },
    handler: async (request, reply) => {
      const connection = findConnection(views, request.query.proxyID);
      if (!connection) return sendError(reply, 404, 'MP_NOT_FOUND', noSuchProxy(request.query.proxyID));
      const types: Partial<Record<ResourceTypeUrl, DumpedType>> = {};
      for (const typeUrl of PUSH_ORDER) {
        const sent = connection.watches.get(typeUrl)?.sent;
        if (sent) types[typeUrl] = sent;
      }
      return buildConfigDump(types);
    },
  });
}
