// /debug/certs: the CA's root and the certificates it issued (serial, SPIFFE ID, validity), for
// operators and `proxy-config secret` (?proxyID= narrows to the proxy's identity).
import type { FastifyInstance } from 'fastify';
import { sendError } from '../errors.ts';
import { issuedByIdentity, proxySecurity, proxySecuritySchema } from '../proxy-security.ts';
import { errorResponses, issuedCertificate } from '../schemas.ts';
import type { AdminViews } from '../views.ts';
import { findConnection, noSuchProxy } from './sync.ts';

const certs = {
  type: 'object',
  properties: {
    trustDomain: { type: 'string' },
    root: {
      type: 'object',
      properties: { kind: { type: 'string' }, origin: { type: 'string' }, serial: { type: 'string' }, notBefore: { type: 'string' }, notAfter: { type: 'string' }, pem: { type: 'string' } },
    },
    certificates: { type: 'array', description: 'issued certificates, oldest first (bounded: the oldest are forgotten)', items: issuedCertificate },
    proxy: {
      type: 'object',
      description: 'with ?proxyID=: the proxy, its identity and its newest certificate (certificates then holds only its identity\'s)',
      properties: { id: { type: 'string' }, ...proxySecuritySchema.properties },
    },
  },
} as const;

export function registerCertsRoutes(app: FastifyInstance, views: AdminViews): void {
  app.get<{ Querystring: { identity?: string; proxyID?: string } }>('/debug/certs', {
    schema: {
      summary: "The CA's root and the certificates it issued; ?identity= keeps one SPIFFE ID's, ?proxyID= a connected proxy's",
      querystring: {
        type: 'object',
        properties: {
          identity: { type: 'string', description: 'a SPIFFE ID, e.g. spiffe://cluster.local/ns/default/sa/productpage' },
          proxyID: { type: 'string', minLength: 1, description: "node id of a connected proxy: its workload's identity (see /debug/syncz)" },
        },
      },
      response: { 200: certs, ...errorResponses },
    },
    handler: (request, reply) => {
      const ca = views.certificateAuthority?.();
      if (!ca) return sendError(reply, 404, 'MP_NOT_FOUND', 'this meshpilot runs no CA (the secure port is off): see "Identity and the CA" in the README');
      const { identity, proxyID } = request.query;
      const root = ca.material.root;
      const answer = {
        trustDomain: ca.trustDomain,
        root: { kind: ca.material.kind, origin: ca.material.origin, serial: root.serialNumber.toLowerCase(), notBefore: new Date(root.validFrom).toISOString(), notAfter: ca.rootNotAfter.toISOString(), pem: ca.rootPem },
      };
      if (proxyID === undefined) return { ...answer, certificates: ca.issued().filter((record) => identity === undefined || record.identity === identity) };
      const connection = findConnection(views, proxyID);
      const push = views.currentPush();
      if (!connection?.proxy || !push) return sendError(reply, 404, 'MP_NOT_FOUND', noSuchProxy(proxyID));
      const issued = issuedByIdentity(ca);
      const security = proxySecurity(push, connection.proxy, issued);
      const id = security.identity?.spiffeId;
      return { ...answer, certificates: (id !== undefined && issued?.get(id)) || [], proxy: { id: proxyID, ...security } };
    },
  });
}
