// Connecting to the Kubernetes API: which kubeconfig, and plain JSON GETs (lists and discovery)
// with the same credentials and TLS settings client-node's watches use.
import { existsSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';
import { MeshpilotError } from '../../errors.ts';

import { inCluster } from './in-cluster.ts';

/**
 * A KubeConfig whose watch requests give up when the API server sends no response headers in
 * time; client-node's watch has no deadline of its own, so a silent server would hang it forever.
 */
class DeadlineKubeConfig extends KubeConfig {
  headersTimeoutMs = 30_000;

  override async applyToFetchOptions(...args: Parameters<KubeConfig['applyToFetchOptions']>): ReturnType<KubeConfig['applyToFetchOptions']> {
    const init = await super.applyToFetchOptions(...args);
    init.timeout = this.headersTimeoutMs;
    return init;
  }
}

export interface KubeConnection {
  readonly config: KubeConfig;
  /** The API server's URL, for logs and source ids. */
  readonly server: string;
  /** Where the credentials came from: the kubeconfig file, `in-cluster`, or `default`. */
  readonly origin: string;
}

/** `--kubeconfig FILE`, else the pod's service account, else the usual KUBECONFIG / ~/.kube/config. */
export function connect(kubeconfig: string | undefined, headersTimeoutMs = 30_000): KubeConnection {
  const config = new DeadlineKubeConfig();
  config.headersTimeoutMs = headersTimeoutMs;
  let origin: string;
  try {
    if (kubeconfig !== undefined) {
      if (!existsSync(kubeconfig)) throw new Error('the file does not exist');
      config.loadFromFile(kubeconfig);
      origin = kubeconfig;
    } else if (inCluster()) {
      config.loadFromCluster();
      origin = 'in-cluster';
    } else {
      config.loadFromDefault();
      origin = 'default';
    }
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new MeshpilotError('MP_CONFIG', `--kubeconfig ${kubeconfig ?? '(default)'} cannot be loaded (${reason}): point --kubeconfig at a valid kubeconfig file`, { cause: error });
  }
  const server = config.getCurrentCluster()?.server;
  if (!server) {
    throw new MeshpilotError('MP_CONFIG', `--kubeconfig ${kubeconfig ?? '(default)'} has no current cluster with a server: set current-context to a context whose cluster has a server URL`);
  }
  return { config, server, origin };
}

/** An HTTP error from the API server, with its status code (410 means: relist). */
export class KubeApiError extends Error {
  readonly statusCode: number;
  constructor(statusCode: number, message: string) {
    super(message);
    this.name = 'KubeApiError';
    this.statusCode = statusCode;
  }
}

/** GET `path` as JSON; rejects on a non-200 answer, a network error, or after `timeoutMs`. */
export async function getJson(connection: KubeConnection, path: string, query: Readonly<Record<string, string>> = {}, timeoutMs = 60_000): Promise<unknown> {
  const { statusCode, body } = await requestJson(connection, 'GET', path, { query, timeoutMs });
  if (statusCode !== 200) throw new KubeApiError(statusCode, `GET ${path}: ${statusCode} ${statusMessage(body)}`);
  try {
    return JSON.parse(body) as unknown;
  } catch (error) {
    throw new Error(`GET ${path}: the answer is not JSON`, { cause: error });
  }
}

/** Sends `method path` with a JSON body; resolves with any HTTP answer (the caller reads its code), rejects on a network error or after `timeoutMs`. */
export async function requestJson(
  connection: KubeConnection,
  method: 'GET' | 'POST' | 'PUT',
  path: string,
  { query = {}, body, timeoutMs = 60_000 }: { query?: Readonly<Record<string, string>>; body?: unknown; timeoutMs?: number } = {},
): Promise<{ statusCode: number; body: string }> {
  const url = new URL(connection.server.replace(/\/$/, '') + path);
  for (const [key, value] of Object.entries(query)) url.searchParams.set(key, value);
  const options: https.RequestOptions = {};
  await connection.config.applyToHTTPSOptions(options);
  const request = url.protocol === 'https:' ? https.request : http.request;
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const headers: http.OutgoingHttpHeaders = { ...(options.headers as http.OutgoingHttpHeaders | undefined), Accept: 'application/json', ...(payload !== undefined ? { 'Content-Type': 'application/json' } : {}) };
  return new Promise((resolve, reject) => {
    const req = request(url, { ...options, method, headers, signal: AbortSignal.timeout(timeoutMs) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        resolve({ statusCode: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
      });
    });
    req.on('error', (error) => {
      // An abort here is always the deadline; say so, so it is not mistaken for a deliberate stop.
      reject(error.name === 'AbortError' ? new Error(`${method} ${path}: no answer within ${timeoutMs} ms`, { cause: error }) : error);
    });
    req.end(payload);
  });
}

/** The message of a Kubernetes Status body (or the start of whatever the body is). */
export function statusMessage(body: string): string {
  try {
    const parsed = JSON.parse(body) as { message?: unknown };
    if (typeof parsed.message === 'string') return parsed.message;
  } catch {
    // not a Status object; the raw text says what it says
  }
  return body.slice(0, 200);
}
