// Starts a real meshpilot in the test process on free loopback ports.
import { pino } from 'pino';
import { serve, type RunningMeshpilot, type ServeOptions } from '../../src/main.ts';

export async function startMeshpilot(configDir: string, overrides: Partial<ServeOptions> = {}): Promise<RunningMeshpilot & { admin(path: string, init?: RequestInit): Promise<Response> }> {
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
  return Object.assign(running, {
    admin: (path: string, init?: RequestInit) => fetch(`http://127.0.0.1:${running.adminPort}${path}`, init),
  });
}
