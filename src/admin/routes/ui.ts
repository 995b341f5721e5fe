// The web UI at /ui: static files from the repository's ui/ directory, nothing from the network.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { sendError } from '../errors.ts';

const UI_DIR = new URL('../../../ui/', import.meta.url);

const FILES: Readonly<Record<string, string>> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'graph.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
};

export function registerUiRoutes(app: FastifyInstance, tokenRequired: boolean): void {
  app.get('/ui', { schema: { hide: true } }, async (_request, reply) => reply.redirect('/ui/'));
  // Lets the page ask for the token before its first data request fails.
  app.get('/ui/session', { schema: { hide: true } }, () => ({ tokenRequired }));
  app.get<{ Params: { file?: string } }>('/ui/:file', { schema: { hide: true } }, async (request, reply) => {
    const file = request.params.file === undefined || request.params.file === '' ? 'index.html' : request.params.file;
    const type = FILES[file];
    if (!type) return sendError(reply, 404, 'MP_NOT_FOUND', `no UI file ${file}`);
    const body = await readFile(fileURLToPath(new URL(file, UI_DIR)));
    return reply
      .type(type)
      // The UI loads only its own files; inline scripts and other origins are refused.
      .header('content-security-policy', "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'")
      .send(body);
  });
}
