// /debug/authz: which AuthorizationPolicies apply to a proxy's workload, the RBAC filters it was
// sent in evaluation order, and, given a caller, whether it would be allowed and by which policy.
import type { FastifyInstance } from 'fastify';
import { actionOf } from '../../model/authorization.ts';
import type { Proxy } from '../../model/proxy.ts';
import type { PushContext } from '../../model/push-context.ts';
import { asObject, asObjects } from '../../xds/attribution.ts';
import type { CallerFacts, RbacVerdict } from '../../xds/explain/rbac.ts';
import { evaluateRbac } from '../../xds/explain/rbac.ts';
import { authorizationHttpFilters, authorizationNetworkFilters, grpcAuthorizationHttpFilters, RBAC_HTTP_FILTER, RBAC_NETWORK_FILTER } from '../../xds/generate/authz.ts';
import { VIRTUAL_INBOUND_LISTENER } from '../../xds/generate/names.ts';
import type { JsonObject } from '../../xds/proto-json.ts';
import { protoJson } from '../../xds/proto-json.ts';
import type { XdsConnection } from '../../xds/server/connection.ts';
import { LISTENER_TYPE } from '../../xds/type-urls.ts';
import { sendError } from '../errors.ts';
import { errorResponses, issue, stringMap } from '../schemas.ts';
import type { AdminViews } from '../views.ts';
import { parseHeaders } from './explain.ts';
import { findConnection, noSuchProxy } from './sync.ts';

interface AuthzQuery {
  proxyID: string;
  port?: number;
  principal?: string;
  namespace?: string;
  ip?: string;
  method?: string;
  path?: string;
  host?: string;
  sni?: string;
  header?: string[];
}

const rbacFilter = {
  type: 'object',
  properties: {
    filter: { type: 'string' },
    action: { type: 'string', enum: ['ALLOW', 'DENY', 'LOG'] },
    policies: { type: 'array', items: { type: 'string' }, description: 'RBAC policy names, ns[NAMESPACE]-policy[NAME]-rule[INDEX]' },
  },
} as const;

const authzAnswer = {
  type: 'object',
  properties: {
    proxy: { type: 'string' },
    policies: {
      type: 'array',
      description: 'the policies that apply to the workload, in evaluation order (CUSTOM, AUDIT, DENY, ALLOW), oldest first within an action',
      items: {
        type: 'object',
        properties: {
          namespace: { type: 'string' },
          name: { type: 'string' },
          action: { type: 'string' },
          scope: { type: 'string', enum: ['mesh', 'namespace', 'workload'] },
          rules: { type: 'integer' },
          warnings: { type: 'array', items: issue },
        },
      },
    },
    defaultDecision: { type: 'string', enum: ['allow', 'deny'], description: 'for a request no policy matches: deny once any ALLOW policy applies' },
    ports: {
      type: 'array',
      description: 'the RBAC filters of each inbound chain, as the proxy was last sent them (or, for a proxy not sent an inbound listener, as generated now)',
      items: { type: 'object', properties: { chain: { type: 'string' }, port: { type: ['integer', 'null'] }, protocol: { type: 'string', enum: ['http', 'tcp'] }, sent: { type: 'boolean' }, filters: { type: 'array', items: rbacFilter } } },
    },
    explain: {
      type: ['object', 'null'],
      properties: {
        caller: { type: 'object', properties: { principal: { type: ['string', 'null'] }, ip: { type: ['string', 'null'] }, method: { type: ['string', 'null'] }, path: { type: ['string', 'null'] }, host: { type: ['string', 'null'] }, sni: { type: ['string', 'null'] }, headers: stringMap } },
        port: { type: 'integer' },
        chain: { type: ['string', 'null'] },
        allowed: { type: 'boolean' },
        decidedBy: {
          type: ['object', 'null'],
          properties: { rbacPolicy: { type: 'string' }, namespace: { type: 'string' }, name: { type: 'string' }, rule: { type: 'integer' }, action: { type: 'string' } },
        },
        steps: { type: 'array', items: { type: 'object', properties: { action: { type: 'string' }, matched: { type: ['string', 'null'] }, outcome: { type: 'string' } } } },
        summary: { type: 'string' },
      },
    },
  },
} as const;

const ACTION_RANK: Readonly<Record<string, number>> = { CUSTOM: 0, AUDIT: 1, DENY: 2, ALLOW: 3 };

interface InboundChain {
  readonly chain: string;
  readonly port: number | null;
  readonly protocol: 'http' | 'tcp';
  readonly sent: boolean;
  /** Each RBAC filter's `rules` (action and policies), in filter order. */
  readonly rules: readonly JsonObject[];
}

function rbacRulesOf(filters: readonly JsonObject[], name: string): JsonObject[] {
  // A gRPC server's filters carry the action after the name (`envoy.filters.http.rbac.DENY`).
  return filters.filter((f) => f['name'] === name || (typeof f['name'] === 'string' && f['name'].startsWith(`${name}.`))).map((f) => asObject(asObject(f['typed_config'])?.['rules']) ?? {});
}

/** The inbound chains of the virtualInbound listener the proxy was last sent, with their RBAC filters. */
function sentChains(connection: XdsConnection): InboundChain[] | undefined {
  const listener = connection.watches.get(LISTENER_TYPE)?.sent?.resources.find((r) => r.name === VIRTUAL_INBOUND_LISTENER);
  if (!listener) return undefined;
  return asObjects(listener.json['filter_chains']).map((chain) => {
    const filters = asObjects(chain['filters']);
    const hcm = filters.find((f) => f['name'] === 'envoy.filters.network.http_connection_manager');
    const port = asObject(chain['filter_chain_match'])?.['destination_port'];
    const common = { chain: typeof chain['name'] === 'string' ? chain['name'] : '', port: typeof port === 'number' ? port : null, sent: true };
    return hcm
      ? { ...common, protocol: 'http' as const, rules: rbacRulesOf(asObjects(asObject(hcm['typed_config'])?.['http_filters']), RBAC_HTTP_FILTER) }
      : { ...common, protocol: 'tcp' as const, rules: rbacRulesOf(filters, RBAC_NETWORK_FILTER) };
  });
}

/** For a proxy without an inbound listener (a gRPC server before it asks for one): what would be generated now. */
function generatedChains(push: PushContext, proxy: Proxy): InboundChain[] {
  if (proxy.generator === 'grpc') return [{ chain: 'grpc-server', port: null, protocol: 'http', sent: false, rules: rbacRulesOf(grpcAuthorizationHttpFilters(push, proxy).map(protoJson), RBAC_HTTP_FILTER) }];
  return [
    { chain: 'http', port: null, protocol: 'http', sent: false, rules: rbacRulesOf(authorizationHttpFilters(push, proxy).map(protoJson), RBAC_HTTP_FILTER) },
    { chain: 'tcp', port: null, protocol: 'tcp', sent: false, rules: rbacRulesOf(authorizationNetworkFilters(push, proxy).map(protoJson), RBAC_NETWORK_FILTER) },
  ];
}

function callerFacts(query: AuthzQuery, headers: Record<string, string>, port: number): CallerFacts {
  const principal = query.principal ?? (query.namespace !== undefined ? `cluster.local/ns/${query.namespace}/sa/default` : undefined);
  return {
    ...(principal !== undefined ? { principal: principal.startsWith('spiffe://') ? principal : `spiffe://${principal}` } : {}),
    ...(query.ip !== undefined ? { sourceIp: query.ip } : {}),
    ...(query.method !== undefined ? { method: query.method.toUpperCase() } : {}),
    ...(query.path !== undefined ? { path: query.path } : {}),
    ...(query.host !== undefined ? { host: query.host } : {}),
    ...(query.sni !== undefined ? { sni: query.sni } : {}),
    port,
    headers,
  };
}

/** `ns[default]-policy[reviews-viewer]-rule[0]` -> its parts. */
function policyOf(rbacPolicy: string): { namespace: string; name: string; rule: number } | undefined {
  const match = /^ns\[([^\]]*)\]-policy\[([^\]]*)\]-rule\[(\d+)\]$/.exec(rbacPolicy);
  return match?.[1] !== undefined && match[2] !== undefined ? { namespace: match[1], name: match[2], rule: Number(match[3]) } : undefined;
}

function summary(verdict: RbacVerdict, port: number): string {
  const by = verdict.decidedBy ? `policy ${verdict.decidedBy}` : undefined;
  if (verdict.allowed) return `allowed on port ${String(port)}${by ? ` by ${by}` : verdict.steps.length === 0 ? ': no policy applies' : ': no DENY policy matches'}`;
  return `denied on port ${String(port)}${by ? ` by ${by}` : ': ALLOW policies apply and none matches the caller'} (Envoy answers 403 "RBAC: access denied", or closes a TCP connection)`;
}

export function registerAuthzRoutes(app: FastifyInstance, views: AdminViews): void {
  app.get<{ Querystring: AuthzQuery }>('/debug/authz', {
    schema: {
      summary: "A proxy's AuthorizationPolicies and RBAC filters, and whether a caller would be allowed, by which policy",
      description: 'Give `port` (and any of principal, namespace, ip, method, path, host, sni, header=name:value) to evaluate a caller over the RBAC filters the proxy was sent, as Envoy does.',
      querystring: {
        type: 'object',
        required: ['proxyID'],
        properties: {
          proxyID: { type: 'string', minLength: 1 },
          port: { type: 'integer', minimum: 1, maximum: 65535, description: "the workload port the caller connects to; with it, the answer explains the caller's request" },
          principal: { type: 'string', description: 'the caller identity, e.g. cluster.local/ns/default/sa/productpage (none: a plaintext caller)' },
          namespace: { type: 'string', description: 'shorthand for the principal cluster.local/ns/NAMESPACE/sa/default' },
          ip: { type: 'string', description: "the caller's address" },
          method: { type: 'string' },
          path: { type: 'string' },
          host: { type: 'string', description: 'the :authority the caller sends' },
          sni: { type: 'string' },
          header: { type: 'array', items: { type: 'string' }, description: 'name:value, repeatable' },
        },
      },
      response: { 200: authzAnswer, ...errorResponses },
    },
    handler: async (request, reply) => {
      const query = request.query;
      const connection = findConnection(views, query.proxyID);
      const push = views.currentPush();
      if (!connection?.proxy || !push) return sendError(reply, 404, 'MP_NOT_FOUND', noSuchProxy(query.proxyID));
      const headers = parseHeaders(query.header ?? []);
      if (typeof headers === 'string') return sendError(reply, 400, 'MP_BAD_REQUEST', headers);
      const proxy = connection.proxy;
      const applied = [...push.authorizationPoliciesFor(proxy)].sort((a, b) => (ACTION_RANK[actionOf(a.policy)] ?? 0) - (ACTION_RANK[actionOf(b.policy)] ?? 0));
      const policies = applied.map(({ policy, scope }) => ({
        namespace: policy.meta.namespace,
        name: policy.meta.name,
        action: actionOf(policy),
        scope,
        rules: policy.spec.rules?.length ?? 0,
        warnings: [...(policy.meta.warnings ?? [])],
      }));
      const chains = sentChains(connection) ?? generatedChains(push, proxy);
      const ports = chains.map((c) => ({
        chain: c.chain,
        port: c.port,
        protocol: c.protocol,
        sent: c.sent,
        filters: c.rules.map((rules) => ({ filter: c.protocol === 'http' ? RBAC_HTTP_FILTER : RBAC_NETWORK_FILTER, action: typeof rules['action'] === 'string' ? rules['action'] : 'ALLOW', policies: Object.keys(asObject(rules['policies']) ?? {}) })),
      }));
      let explain = null;
      if (query.port !== undefined) {
        const port = query.port;
        // Envoy picks the chain by destination port; a port no service declares takes the catch-all chain.
        const chain = chains.find((c) => c.port === port) ?? chains.find((c) => c.port === null && (c.protocol === 'tcp' || proxy.generator === 'grpc'));
        const facts = callerFacts(query, headers, port);
        const verdict = evaluateRbac(chain?.rules ?? [], facts);
        const origin = verdict.decidedBy ? policyOf(verdict.decidedBy) : undefined;
        const decided = verdict.decidedBy && origin ? { rbacPolicy: verdict.decidedBy, ...origin, action: verdict.steps.at(-1)?.action ?? '' } : null;
        explain = {
          caller: { principal: facts.principal ?? null, ip: facts.sourceIp ?? null, method: facts.method ?? null, path: facts.path ?? null, host: facts.host ?? null, sni: facts.sni ?? null, headers },
          port,
          chain: chain?.chain ?? null,
          allowed: verdict.allowed,
          decidedBy: decided,
          steps: verdict.steps,
          summary: summary(verdict, port),
        };
      }
      return {
        proxy: query.proxyID,
        policies,
        defaultDecision: applied.some(({ policy }) => actionOf(policy) === 'ALLOW') ? 'deny' : 'allow',
        ports,
        explain,
      };
    },
  });
}
