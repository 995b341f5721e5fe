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

/** Routes that show config or run preview; health, /metrics, /docs and the UI's static files stay open. */
function needsToken(route: string): boolean {
  return route === '/debug' || route.startsWith('/debug/') || route.startsWith('/ui/api/');
}

const UNRESERVED_ESCAPE = /%(2[dDeE]|3[0-9]|[46][1-9a-fA-F]|[57][0-9aA]|5[fF]|7[eE]|2[fF])/;

/**
 * Why a request target is refused before routing: absolute-form (`GET http://host/path`) and
 * paths that are not in normal form (escaped unreserved characters or `/`, dot segments, empty
 * segments), since the router would decode them into a route other checks never saw.
 */
export function nonNormalTarget(target: string): string | undefined {
  if (!target.startsWith('/')) return 'the request target must be a path (origin-form), not an absolute URL';
  const path = target.split('?', 1)[0] ?? '';
  if (UNRESERVED_ESCAPE.test(path)) return 'the path escapes a character that needs no escaping';
  if (path.includes('//')) return 'the path has an empty segment';
  if (/(^|\/)\.\.?(\/|$)/.test(path) || /%2e/i.test(path)) return 'the path has a dot segment';
  return undefined;
}

const digest = (value: string): Buffer => createHash('sha256').update(value).digest();

/**
 * Refuses non-normal request targets, and with a token, guards the routes that need it. The
 * decision is made on the route the router matched, never on the raw URL.
 */
export function registerAdminAccess(app: FastifyInstance, token: string | undefined): void {
  const expected = token === undefined || token === '' ? undefined : digest(token);
  app.addHook('onRequest', async (request, reply) => {
    const refused = nonNormalTarget(request.raw.url ?? '');
    if (refused !== undefined) {
      await sendError(reply, 400, 'MP_BAD_REQUEST', `${refused}: request ${JSON.stringify((request.raw.url ?? '').slice(0, 200))} by its plain path, e.g. /debug/configz`);
      return reply;
    }
    if (expected === undefined) return;
    const route = request.routeOptions.url;
    if (route === undefined || !needsToken(route)) return;
    const header = request.headers.authorization ?? '';
    const given = header.startsWith('Bearer ') ? header.slice('Bearer '.length) : '';
    if (given !== '' && timingSafeEqual(digest(given), expected)) return;
    await sendError(reply, 401, 'MP_UNAUTHORIZED', `${route} needs "Authorization: Bearer <token>" with the --admin-token of this meshpilot`);
    return reply;
  });
}
