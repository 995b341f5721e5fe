// POST /debug/preview: validation and per-proxy xDS diff of YAML, without applying it.
import type { FastifyInstance } from 'fastify';
import { EMPTY_SNAPSHOT } from '../../model/store.ts';
import { sendError } from '../errors.ts';
import { MAX_PREVIEW_BYTES, previewTooLarge, previewYaml } from '../preview.ts';
import { anyValue, errorResponses, issue } from '../schemas.ts';
import type { AdminViews } from '../views.ts';

const problem = { type: 'object', properties: { ...issue.properties, object: { type: 'string' } } } as const;

const changes = {
  type: 'object',
  properties: {
    added: { type: 'array', items: { type: 'string' } },
    removed: { type: 'array', items: { type: 'string' } },
    changed: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          name: { type: 'string' },
          fields: { type: 'array', items: { type: 'object', properties: { path: { type: 'string' }, before: anyValue, after: anyValue } } },
        },
      },
    },
  },
} as const;

const previewResponse = {
  type: 'object',
  properties: {
    valid: { type: 'boolean' },
    objects: {
      type: 'array',
      items: {
        type: 'object',
        properties: { kind: { type: 'string' }, namespace: { type: 'string' }, name: { type: 'string' }, change: { type: 'string', enum: ['added', 'changed', 'unchanged'] } },
      },
    },
    errors: { type: 'array', items: problem },
    warnings: { type: 'array', items: problem },
    proxies: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          proxy: { type: 'string' },
          connectionId: { type: 'string' },
          types: { type: 'object', properties: { cds: changes, eds: changes, lds: changes, rds: changes } },
        },
      },
    },
    unaffectedProxies: { type: 'integer' },
  },
} as const;

export function registerPreviewRoutes(app: FastifyInstance, views: AdminViews): void {
  app.post<{ Body: unknown }>('/debug/preview', {
    // JSON's quoting can double the YAML's size; the YAML itself is checked below.
    bodyLimit: 2 * MAX_PREVIEW_BYTES + 1024,
    schema: {
      summary: 'What applying YAML would change for each connected proxy, without applying it',
      description: 'Body: the YAML (Content-Type text/yaml), or JSON {"yaml": "..."}. Answers validation problems and, per affected proxy and type, resources added, removed and changed with field-level changes.',
      response: { 200: previewResponse, ...errorResponses },
    },
    handler: async (request, reply) => {
      const body = request.body;
      const yaml = typeof body === 'string' ? body : typeof body === 'object' && body !== null && 'yaml' in body && typeof body.yaml === 'string' ? body.yaml : undefined;
      if (yaml === undefined || yaml.trim() === '') {
        return sendError(reply, 400, 'MP_BAD_REQUEST', 'send the YAML to preview as the body (Content-Type: text/yaml) or as JSON {"yaml": "..."}');
      }
      const tooLarge = previewTooLarge(yaml);
      if (tooLarge !== undefined) return sendError(reply, 413, 'MP_BAD_REQUEST', tooLarge);
      return previewYaml(views.snapshot?.() ?? EMPTY_SNAPSHOT, views.connections(), yaml);
    },
  });
}
