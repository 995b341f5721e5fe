// Admin access: loopback-only unless a bearer token guards the debug API.
import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { sendError } from './errors.ts';

export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost' || host === '::1' || host === '[::1]') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

/** How the admin API is exposed; decides who may read the routes that show config. */
export interface AdminAccess {
  /** The address the admin API binds. */
  readonly host: string;
  /** Bearer token for /debug/*, the UI's data and preview. */
  readonly token?: string;
}

/** The line to log at start when the admin API is reachable from other hosts without a token. */
export function adminAccessNotice(access: AdminAccess): string | undefined {
  if (isLoopbackHost(access.host) || (access.token !== undefined && access.token !== '')) return undefined;
  return `the admin API binds ${access.host} without a token: /healthz, /ready, /metrics and /docs answer everyone, /debug/* and preview only loopback clients (kubectl port-forward); set --admin-token-file to reach them from elsewhere`;
}

function isLoopbackPeer(address: string | undefined): boolean {
  if (address === undefined) return false;
  return isLoopbackHost(address.startsWith('::ffff:') ? address.slice('::ffff:'.length) : address);
}

/** A Host header naming this machine by loopback (anything else, bound to loopback, is DNS rebinding). */
export function isLoopbackHostHeader(host: string | undefined): boolean {
  if (host === undefined) return false;
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.replace(/:\d+$/, '');
  return isLoopbackHost(name.toLowerCase());
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
 * Refuses non-normal request targets (and, bound to loopback, foreign Host headers), then guards
 * the routes that show config: a valid token, or without one configured, a loopback client. The
 * decision is made on the route the router matched, never on the raw URL.
 */
export function registerAdminAccess(app: FastifyInstance, access: AdminAccess): void {
  const expected = access.token === undefined || access.token === '' ? undefined : digest(access.token);
  const loopbackBound = isLoopbackHost(access.host);
  app.addHook('onRequest', async (request, reply) => {
    const refused = nonNormalTarget(request.raw.url ?? '');
    if (refused !== undefined) {
      await sendError(reply, 400, 'MP_BAD_REQUEST', `${refused}: request ${JSON.stringify((request.raw.url ?? '').slice(0, 200))} by its plain path, e.g. /debug/configz`);
      return reply;
    }
    if (loopbackBound && !isLoopbackHostHeader(request.headers.host)) {
      await sendError(reply, 403, 'MP_UNAUTHORIZED', `Host ${JSON.stringify((request.headers.host ?? '').slice(0, 100))} is not a loopback name: the admin API binds ${access.host}; use http://127.0.0.1:PORT or http://localhost:PORT`);
      return reply;
    }
    const route = request.routeOptions.url;
    if (route === undefined || !needsToken(route)) return;
    if (expected === undefined) {
      if (isLoopbackPeer(request.socket.remoteAddress)) return;
      await sendError(reply, 401, 'MP_UNAUTHORIZED', `${route} answers only loopback clients (kubectl port-forward) unless meshpilot runs with --admin-token-file`);
      return reply;
    }
    const header = request.headers.authorization ?? '';
    const given = header.startsWith('Bearer ') ? header.slice('Bearer '.length) : '';
    if (given !== '' && timingSafeEqual(digest(given), expected)) return;
    await sendError(reply, 401, 'MP_UNAUTHORIZED', `${route} needs "Authorization: Bearer <token>" with the admin token of this meshpilot`);
    return reply;
  });
}
