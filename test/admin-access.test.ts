// The admin token guards what the router serves, however the request target is spelled.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { nonNormalTarget } from '../src/admin/auth.ts';
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
