// Starts a real meshpilot in the test process on free loopback ports.
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { serve, type RunningMeshpilot, type ServeOptions } from '../../src/main.ts';
import type { JsonObject } from '../../src/xds/proto-json.ts';
import type { ShortType } from '../../src/xds/type-urls.ts';

/** One type of a proxy in /debug/syncz. */
export interface TypeSync {
  readonly status: 'SYNCED' | 'STALE' | 'NOT SENT' | 'ERROR';
  readonly subscribed: string | string[] | null;
  readonly sent: { readonly version: string; readonly nonce: string; readonly resources: number } | null;
  readonly acked: { readonly version: string; readonly nonce: string } | null;
  readonly nack: {
    readonly version: string;
    readonly nonce: string;
    readonly message: string;
    readonly rejected: { readonly resources: readonly { readonly name: string; readonly rules: readonly { kind: string; namespace: string; name: string; httpRoute?: number }[] }[] } | null;
  } | null;
}

export type TestMeshpilot = RunningMeshpilot & {
  adminUrl: string;
  admin(path: string, init?: RequestInit): Promise<Response>;
  /** A connected proxy's line of /debug/syncz, by type; undefined while it is not connected. */
  proxySync(nodeId: string): Promise<Record<ShortType, TypeSync> | undefined>;
  /** `/debug/config_dump?proxyID=`: what meshpilot sent that proxy. */
  configDump(nodeId: string): Promise<JsonObject>;
};

export async function startMeshpilot(configDir: string, overrides: Partial<ServeOptions> = {}): Promise<TestMeshpilot> {
  const running = await serve({
    configDir,
    xdsHost: '127.0.0.1',
    xdsPort: 0,
    adminHost: '127.0.0.1',
    adminPort: 0,
    logLevel: 'silent',
    debounceQuietMs: 20,
    debounceMaxMs: 1000,
    log: pino({ level: process.env['MESHPILOT_TEST_LOG'] ?? 'silent' }),
    ...overrides,
  });
  const adminUrl = `http://127.0.0.1:${running.adminPort}`;
  const admin = (path: string, init?: RequestInit): Promise<Response> => fetch(`${adminUrl}${path}`, init);
  const json = async <T>(path: string): Promise<T> => {
    const response = await admin(path);
    if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
    return (await response.json()) as T;
  };
  return Object.assign(running, {
    adminUrl,
    admin,
    proxySync: async (nodeId: string) => {
      const body = await json<{ proxies: { proxy: string | null; types: Record<ShortType, TypeSync> }[] }>('/debug/syncz');
      return body.proxies.find((p) => p.proxy === nodeId)?.types;
    },
    configDump: (nodeId: string) => json<JsonObject>(`/debug/config_dump?proxyID=${encodeURIComponent(nodeId)}`),
  });
}

/** Counts how often the push queue hands a proxy's connection pending work (none: nothing regenerated for it). */
export function countWakeUps(meshpilot: TestMeshpilot, nodeId: string): { readonly count: number } {
  const connection = meshpilot.adsServer.connections().find((c) => c.proxy?.id === nodeId);
  assert.ok(connection, `${nodeId} is connected`);
  const counter = { count: 0 };
  const flush = connection.flush.bind(connection);
  connection.flush = () => {
    counter.count++;
    return flush();
  };
  return counter;
}
