// Admin access: loopback-only unless a bearer token guards the debug API.
import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { MeshpilotError } from '../errors.ts';
import { sendError } from './errors.ts';

export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost' || host === '::1' || host === '[::1]') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

/** Refuses an admin API reachable from other hosts without a token. */
export function checkAdminAccess(host: string, token: string | undefined): void {
  if (isLoopbackHost(host) || (token !== undefined && token !== '')) return;
  throw new MeshpilotError(
    'MP_CONFIG',
    `--admin-host ${host} is not a loopback address and no --admin-token is set: set --admin-token (or MESHPILOT_ADMIN_TOKEN) so /debug, /ui data and preview require a bearer token, or bind --admin-host 127.0.0.1`,
  );
}

/** Paths that show config or run preview; health, /metrics, /docs and the UI's static files stay open. */
function needsToken(url: string): boolean {
  return url.startsWith('/debug/') || url === '/debug' || url.startsWith('/ui/api/');
}

const digest = (value: string): Buffer => createHash('sha256').update(value).digest();

export function registerBearerAuth(app: FastifyInstance, token: string | undefined): void {
  if (token === undefined || token === '') return;
  const expected = digest(token);
  app.addHook('onRequest', async (request, reply) => {
    if (!needsToken(request.url)) return;
    const header = request.headers.authorization ?? '';
    const given = header.startsWith('Bearer ') ? header.slice('Bearer '.length) : '';
    if (given !== '' && timingSafeEqual(digest(given), expected)) return;
    await sendError(reply, 401, 'MP_UNAUTHORIZED', `${request.url.split('?')[0] ?? ''} needs "Authorization: Bearer <token>" with the --admin-token of this meshpilot`);
    return reply;
  });
}
