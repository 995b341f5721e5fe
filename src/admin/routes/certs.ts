// /debug/certs: the CA's root and the certificates it issued (serial, SPIFFE ID, validity), for
// operators and `proxy-config secret`.
import type { FastifyInstance } from 'fastify';
import { sendError } from '../errors.ts';
import type { AdminViews } from '../views.ts';

const certs = {
  type: 'object',
  properties: {
    trustDomain: { type: 'string' },
    root: { type: 'object', properties: { kind: { type: 'string' }, origin: { type: 'string' }, notAfter: { type: 'string' }, pem: { type: 'string' } } },
    certificates: {
      type: 'array',
      description: 'issued certificates, oldest first (bounded: the oldest are forgotten)',
      items: {
        type: 'object',
        properties: { serial: { type: 'string' }, identity: { type: 'string' }, keyType: { type: 'string' }, notBefore: { type: 'string' }, notAfter: { type: 'string' } },
      },
    },
  },
} as const;

export function registerCertsRoutes(app: FastifyInstance, views: AdminViews): void {
  app.get('/debug/certs', {
    schema: {
      summary: "The CA's root and the certificates it issued; ?identity= keeps one SPIFFE ID's",
      querystring: { type: 'object', properties: { identity: { type: 'string' } } },
      response: { 200: certs },
    },
    handler: (request, reply) => {
      const ca = views.certificateAuthority?.();
      if (!ca) return sendError(reply, 404, 'MP_NOT_FOUND', 'this meshpilot runs no CA (the secure port is off): see "Identity and the CA" in the README');
      const { identity } = request.query as { identity?: string };
      const issued = ca.issued().filter((record) => identity === undefined || record.identity === identity);
      return {
        trustDomain: ca.trustDomain,
        root: { kind: ca.material.kind, origin: ca.material.origin, notAfter: ca.rootNotAfter.toISOString(), pem: ca.rootPem },
        certificates: issued,
      };
    },
  });
}
