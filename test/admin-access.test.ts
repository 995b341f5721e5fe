// The admin token guards what the router serves, however the request target is spelled.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { isLoopbackHostHeader, nonNormalTarget } from '../src/admin/auth.ts';
import { buildAdminApp } from '../src/admin/server.ts';
import { readAdminToken } from '../src/admin/token-file.ts';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MeshDir } from './support/mesh-dir.ts';
import { startMeshpilot, type TestMeshpilot } from './support/meshpilot.ts';

/** Sends the target exactly as written (fetch would normalise it first). */
function rawGet(port: number, target: string, method = 'GET', headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path: target, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
      });
    });
    req.on('error', reject);
    req.end(method === 'POST' ? 'apiVersion: v1\nkind: List\nitems: []\n' : undefined);
  });
}

const TOKEN = 'access-test-token';

// Every spelling a router might map onto a guarded route: none may answer 200 without the token.
const GUARDED_SPELLINGS: readonly string[] = [
  '/debug/configz',
  '/%64ebug/configz',
  '/debu%67/configz',
  '/%64%65%62%75%67/adsz',
  '/debug%2Fconfigz',
  '/debug/%63onfigz',
  '/%2564ebug/configz',
  '/debug/./configz',
  '/debug/../debug/configz',
  '/ui/../debug/configz',
  '/debug/%2e%2e/debug/configz',
  '//debug/configz',
  '/debug//configz',
  '/debug/configz/',
  '/DEBUG/configz',
  '/Debug/Configz',
  '/debug/configz?x=1',
  '/debug/configz#frag',
  '/debug/syncz;x=1',
  'http://x/debug/adsz',
  'http://127.0.0.1/debug/configz',
  '/debug/registryz%00',
];

describe('the admin token guards every spelling of a /debug route', () => {
  let dir: MeshDir;
  let meshpilot: TestMeshpilot;

  before(async () => {
    dir = await MeshDir.create();
    meshpilot = await startMeshpilot(dir.path, { adminToken: TOKEN });
  });

  after(async () => {
    await meshpilot.close();
    await dir.remove();
  });

  for (const target of GUARDED_SPELLINGS) {
    it(`GET ${target} without the token shows no config`, async () => {
      const { status, body } = await rawGet(meshpilot.adminPort, target);
      assert.ok([400, 401, 404].includes(status), `${target} answered ${String(status)}: ${body.slice(0, 200)}`);
      assert.doesNotMatch(body, /"services"|"rules"|"proxies"|"connections"/);
    });
  }

  for (const target of ['/%64ebug/preview', '/debug/./preview', 'http://x/debug/preview']) {
    it(`POST ${target} without the token runs no preview`, async () => {
      const { status } = await rawGet(meshpilot.adminPort, target, 'POST', { 'content-type': 'application/yaml' });
      assert.ok([400, 401, 404].includes(status), `${target} answered ${String(status)}`);
    });
  }

  it('the plain path with the token is served', async () => {
    const { status } = await rawGet(meshpilot.adminPort, '/debug/configz', 'GET', { authorization: `Bearer ${TOKEN}` });
    assert.equal(status, 200);
  });

  it('an escaped spelling is refused even with the token, and says which plain path to use', async () => {
    const { status, body } = await rawGet(meshpilot.adminPort, '/%64ebug/configz', 'GET', { authorization: `Bearer ${TOKEN}` });
    assert.equal(status, 400);
    assert.match(body, /MP_BAD_REQUEST/);
  });

  it('health, readiness and metrics stay open', async () => {
    for (const path of ['/healthz', '/ready', '/metrics']) assert.equal((await rawGet(meshpilot.adminPort, path)).status, 200, path);
  });
});

describe('request targets in normal form', () => {
  it('accepts plain paths, queries with escapes, and node ids', () => {
    for (const ok of ['/debug/configz', '/debug/config_dump?proxyID=sidecar~10.1.1.1~a.b~b.svc.cluster.local', '/debug/explain?path=%2Fa%2E', '/ui/', '/']) {
      assert.equal(nonNormalTarget(ok), undefined, ok);
    }
  });

  it('refuses absolute-form, escaped unreserved characters, dot and empty segments', () => {
    for (const bad of ['http://x/debug', '/%64ebug', '/a%2Fb', '/a/./b', '/a/../b', '/a/..', '/a//b', '/a/%2e%2E/b', '*']) {
      assert.ok(nonNormalTarget(bad), bad);
    }
  });
});

describe('who may read /debug', () => {
  const views = { currentPush: () => undefined, lastPush: () => undefined, connections: () => [], ready: () => true };
  const log = pino({ level: 'silent' });

  it('bound to all addresses without a token: health and metrics for everyone, /debug only for loopback clients', async () => {
    const app = await buildAdminApp(views, log, { access: { host: '0.0.0.0' } });
    try {
      const remote = { remoteAddress: '192.0.2.40', headers: { host: 'meshpilot.meshpilot-system.svc:15014' } };
      assert.equal((await app.inject({ url: '/healthz', ...remote })).statusCode, 200);
      assert.equal((await app.inject({ url: '/ready', ...remote })).statusCode, 200);
      const denied = await app.inject({ url: '/debug/configz', ...remote });
      assert.equal(denied.statusCode, 401);
      assert.match(denied.body, /MP_UNAUTHORIZED.*loopback clients/);
      assert.equal((await app.inject({ url: '/debug/configz', remoteAddress: '127.0.0.1' })).statusCode, 200);
      assert.equal((await app.inject({ url: '/debug/configz', remoteAddress: '::ffff:127.0.0.1' })).statusCode, 200);
    } finally {
      await app.close();
    }
  });

  it('with a token, a remote client with the token reads /debug', async () => {
    const app = await buildAdminApp(views, log, { access: { host: '0.0.0.0', token: 't0ken' } });
    try {
      assert.equal((await app.inject({ url: '/debug/configz', remoteAddress: '192.0.2.40', headers: { authorization: 'Bearer t0ken' } })).statusCode, 200);
      assert.equal((await app.inject({ url: '/debug/configz', remoteAddress: '127.0.0.1' })).statusCode, 401);
    } finally {
      await app.close();
    }
  });

  it('bound to loopback, a foreign Host header (DNS rebinding) is refused', async () => {
    const app = await buildAdminApp(views, log, { access: { host: '127.0.0.1' } });
    try {
      const rebound = await app.inject({ url: '/debug/configz', remoteAddress: '127.0.0.1', headers: { host: 'attacker.example:15014' } });
      assert.equal(rebound.statusCode, 403);
      assert.match(rebound.body, /not a loopback name/);
      assert.equal((await app.inject({ url: '/debug/configz', remoteAddress: '127.0.0.1', headers: { host: 'localhost:15014' } })).statusCode, 200);
    } finally {
      await app.close();
    }
  });

  it('preview takes YAML or JSON only: a text/plain POST, which a foreign page may send without a preflight, is refused', async () => {
    const app = await buildAdminApp(views, log, { access: { host: '127.0.0.1' } });
    try {
      const csrf = await app.inject({ method: 'POST', url: '/debug/preview', remoteAddress: '127.0.0.1', headers: { host: '127.0.0.1', 'content-type': 'text/plain' }, payload: 'kind: List' });
      assert.equal(csrf.statusCode, 415);
    } finally {
      await app.close();
    }
  });

  it('Host headers that name loopback', () => {
    for (const ok of ['localhost', 'localhost:15014', '127.0.0.1:15014', '127.3.4.5', '[::1]:15014', 'LOCALHOST']) assert.ok(isLoopbackHostHeader(ok), ok);
    for (const bad of [undefined, '', 'example.com', '127.0.0.1.nip.io', 'localhost.example', '[::2]:1', '0.0.0.0']) assert.ok(!isLoopbackHostHeader(bad), String(bad));
  });
});

describe('--admin-token-file', () => {
  it('reads the token from a file, and explains what is wrong with a bad one', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'meshpilot-token-'));
    try {
      await writeFile(join(dir, 'token'), 'abc123\n');
      assert.equal(await readAdminToken(undefined, join(dir, 'token')), 'abc123');
      await writeFile(join(dir, 'empty'), '\n');
      await assert.rejects(readAdminToken(undefined, join(dir, 'empty')), /MP_CONFIG: --admin-token-file .* is empty/);
      await assert.rejects(readAdminToken(undefined, join(dir, 'missing')), /MP_CONFIG: --admin-token-file .* cannot be read/);
      await assert.rejects(readAdminToken('x', join(dir, 'token')), /MP_CONFIG: --admin-token and --admin-token-file are both set/);
      assert.equal(await readAdminToken('', undefined), undefined);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('bounded admin requests', () => {
  let dir: MeshDir;
  let meshpilot: TestMeshpilot;

  before(async () => {
    dir = await MeshDir.create();
    meshpilot = await startMeshpilot(dir.path);
  });

  after(async () => {
    await meshpilot.close();
    await dir.remove();
  });

  const preview = (body: string): Promise<Response> => meshpilot.admin('/debug/preview', { method: 'POST', headers: { 'content-type': 'application/yaml' }, body });

  it('a preview of thousands of documents is refused before any work, saying what preview is for', async () => {
    const documents = Array.from({ length: 5000 }, (_, i) => `apiVersion: v1\nkind: Service\nmetadata: {name: s${i}}\nspec: {ports: [{port: 80}]}\n`).join('---\n');
    const response = await preview(documents);
    assert.equal(response.status, 413);
    assert.match(await response.text(), /MP_BAD_REQUEST.*5000 documents; preview takes at most 1000/);
  });

  it('a preview body over the size limit is refused', async () => {
    const response = await preview(`# ${'x'.repeat(3 * 1024 * 1024)}\n`);
    assert.equal(response.status, 413);
  });

  it('a List hiding thousands of objects in one document is refused too', async () => {
    const items = Array.from({ length: 1500 }, (_, i) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name: `s${i}`, namespace: 'default' }, spec: { ports: [{ port: 80 }] } }));
    const response = await preview(JSON.stringify({ apiVersion: 'v1', kind: 'List', items }));
    const body = (await response.json()) as { valid: boolean; errors: { message: string }[] };
    assert.equal(body.valid, false);
    assert.match(body.errors[0]?.message ?? '', /1500 objects; preview takes at most 1000/);
  });
});
