// client-node's generated API clients, each call with a deadline: they have none of their own, and
// a Lease renewal or a status write that hangs must fail in time.
import type { Configuration, HttpLibrary } from '@kubernetes/client-node';
import { ApiException, createConfiguration, IsomorphicFetchHttpLibrary, ServerConfiguration } from '@kubernetes/client-node';
import type { KubeConnection } from './kube-api.ts';

/** An API client (`CoordinationV1Api`, `CustomObjectsApi`, ...) whose every request is aborted after `timeoutMs`. */
export function apiClient<T>(connection: KubeConnection, Api: new (configuration: Configuration) => T, timeoutMs: number): T {
  const fetchLibrary = new IsomorphicFetchHttpLibrary();
  const httpApi: HttpLibrary = {
    send(request) {
      request.setSignal(AbortSignal.timeout(timeoutMs));
      return fetchLibrary.send(request);
    },
  };
  return new Api(createConfiguration({ baseServer: new ServerConfiguration(connection.server, {}), authMethods: { default: connection.config }, httpApi }));
}

/** The HTTP status of a refused call (409 Conflict, 404 NotFound, ...); undefined for network errors and timeouts. */
export function apiStatusCode(error: unknown): number | undefined {
  return error instanceof ApiException ? error.code : undefined;
}

/** One line for a failed call: the API's own Status message when there is one. */
export function apiErrorMessage(error: unknown): string {
  if (error instanceof ApiException) {
    const body: unknown = error.body;
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    try {
      const message = (JSON.parse(text) as { message?: unknown }).message;
      if (typeof message === 'string') return `${error.code} ${message}`;
    } catch {
      // not a Status object
    }
    return `${error.code} ${text.slice(0, 200)}`;
  }
  if (error instanceof Error) return error.name === 'AbortError' ? 'no answer in time' : error.message;
  return String(error);
}
