// /debug/explain: the path a request from a proxy takes, over what that proxy was sent.
import type { FastifyInstance } from 'fastify';
import type { SentConfig } from '../../xds/explain/explain.ts';
import { EXPLAIN_OUTCOMES, explainRequest } from '../../xds/explain/explain.ts';
import type { XdsConnection } from '../../xds/server/connection.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../../xds/type-urls.ts';
import { sendError } from '../errors.ts';
import { anyObject, errorResponses, nullableString, ruleRef, servedEndpoint, stringMap } from '../schemas.ts';
import type { AdminViews } from '../views.ts';
import { findConnection, noSuchProxy } from './sync.ts';

interface ExplainQuery {
  proxyID: string;
  authority: string;
  path?: string;
  method?: string;
  scheme?: 'http' | 'https';
  header?: string[];
}

const nullableRuleRef = { type: ['object', 'null'], properties: ruleRef.properties } as const;

const explanation = {
  type: 'object',
  properties: {
    proxy: { type: 'string' },
    outcome: { type: 'string', enum: EXPLAIN_OUTCOMES },
    summary: { type: 'string' },
    request: { type: 'object', properties: { authority: { type: 'string' }, path: { type: 'string' }, method: { type: 'string' }, scheme: { type: 'string' }, headers: stringMap } },
    listener: {
      type: ['object', 'null'],
      properties: {
        name: { type: 'string' },
        kind: { type: 'string' },
        httpFilters: { type: 'array', items: { type: 'string' } },
        filterChain: {
          type: 'object',
          description: "a gateway's filter chain, picked by SNI (absent for other proxies)",
          properties: { index: { type: 'integer' }, serverNames: { type: 'array', items: { type: 'string' } }, terminatesTls: { type: 'boolean' } },
        },
      },
    },
    gateway: {
      type: ['object', 'null'],
      description: 'for a gateway proxy: the Gateway server that made the listener and route configuration',
      properties: {
        rule: ruleRef,
        server: { type: 'integer' },
        port: { type: 'integer' },
        protocol: { type: 'string' },
        hosts: { type: 'array', items: { type: 'string' } },
        tlsMode: nullableString,
        credentialName: nullableString,
        httpsRedirect: { type: 'boolean' },
      },
    },
    routeConfig: { type: ['object', 'null'], properties: { name: { type: 'string' }, sent: { type: 'boolean' } } },
    virtualHost: {
      type: ['object', 'null'],
      properties: { name: { type: 'string' }, domain: { type: 'string' }, match: { type: 'string' }, service: nullableRuleRef },
    },
    route: {
      type: ['object', 'null'],
      properties: { name: { type: 'string' }, index: { type: 'integer' }, match: anyObject, rule: nullableRuleRef },
    },
    skipped: {
      type: 'array',
      items: { type: 'object', properties: { name: { type: 'string' }, index: { type: 'integer' }, reason: { type: 'string' }, rule: nullableRuleRef } },
    },
    clusters: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          name: { type: 'string' },
          weight: { type: ['integer', 'null'] },
          percent: { type: 'number' },
          sent: { type: 'boolean' },
          type: nullableString,
          lbPolicy: nullableString,
          service: nullableString,
          subset: nullableString,
          rules: { type: 'array', items: ruleRef },
          endpoints: { type: 'array', items: servedEndpoint },
        },
      },
    },
    policy: {
      type: ['object', 'null'],
      properties: {
        timeout: nullableString,
        retries: { type: ['object', 'null'], additionalProperties: true },
        fault: { type: ['object', 'null'], additionalProperties: true },
        mirrors: { type: 'array', items: anyObject },
        other: anyObject,
      },
    },
    answer: {
      type: 'object',
      description: 'what the proxy answers itself when the route does not forward: a redirect or a direct response',
      properties: {
        kind: { type: 'string', enum: ['redirect', 'direct_response'] },
        status: { type: 'integer' },
        location: {
          type: ['object', 'null'],
          description: "the parts of the redirect's Location the route sets (the others keep the request's)",
          properties: { scheme: { type: 'string' }, host: { type: 'string' }, port: { type: 'integer' }, path: { type: 'string' } },
        },
      },
    },
  },
} as const;

function sentConfig(connection: XdsConnection): SentConfig {
  const sent = (typeUrl: Parameters<typeof connection.watches.get>[0]) => connection.watches.get(typeUrl)?.sent?.resources ?? [];
  return { listeners: sent(LISTENER_TYPE), routes: sent(ROUTE_TYPE), clusters: sent(CLUSTER_TYPE), endpoints: sent(ENDPOINT_TYPE) };
}

export function parseHeaders(values: readonly string[]): Record<string, string> | string {
  const headers: Record<string, string> = {};
  for (const value of values) {
    const colon = value.indexOf(':', value.startsWith(':') ? 1 : 0);
    if (colon <= 0) return `header "${value}" is not "name:value": write e.g. header=end-user:jason`;
    headers[value.slice(0, colon).trim().toLowerCase()] = value.slice(colon + 1).trim();
  }
  return headers;
}

export function registerExplainRoutes(app: FastifyInstance, views: AdminViews): void {
  app.get<{ Querystring: ExplainQuery }>('/debug/explain', {
    schema: {
      summary: 'Which listener, virtual host, route, clusters and endpoints a request from a proxy takes, and which rule made each step',
      description: 'Computed from the resources the proxy was last sent. `header` repeats: header=end-user:jason&header=x-b3:1.',
      querystring: {
        type: 'object',
        required: ['proxyID', 'authority'],
        properties: {
          proxyID: { type: 'string', minLength: 1 },
          authority: { type: 'string', minLength: 1, description: 'host[:port] as the caller writes it, e.g. reviews:9080' },
          path: { type: 'string', default: '/' },
          method: { type: 'string', default: 'GET' },
          scheme: { type: 'string', enum: ['http', 'https'], default: 'http', description: 'https: a gateway matches the filter chain by SNI (the host)' },
          header: { type: 'array', items: { type: 'string' }, description: 'name:value, repeatable' },
        },
      },
      response: { 200: explanation, ...errorResponses },
    },
    handler: async (request, reply) => {
      const { proxyID, authority, path = '/', method = 'GET', scheme = 'http', header = [] } = request.query;
      const connection = findConnection(views, proxyID);
      if (!connection?.proxy) return sendError(reply, 404, 'MP_NOT_FOUND', noSuchProxy(proxyID));
      const headers = parseHeaders(header);
      if (typeof headers === 'string') return sendError(reply, 400, 'MP_BAD_REQUEST', headers);
      const answer = explainRequest(sentConfig(connection), connection.proxy, { authority, path, method: method.toUpperCase(), scheme, headers }, views.currentPush());
      return { proxy: proxyID, ...answer };
    },
  });
}
