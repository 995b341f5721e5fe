// A real Envoy started as an ingress gateway (node id `router~...`, bootstrap from `meshpilot
// bootstrap`) and fed by meshpilot routes requests on loopback: by Host and path through a
// Gateway and the VirtualService bound to it to the backends, 404 for a host no server exposes,
// a redirect to HTTPS for an HTTPS-only host, HTTPS terminated with the server's certificate, and
// TLS passed through by SNI to a backend that terminates it itself.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { backend, freePort, get } from './support/gateway-http.ts';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { adsBootstrap, requireEnvoy, startEnvoy } from './support/envoy.ts';
import { endpointSlice, MeshDir, pod, rule, service } from './support/mesh-dir.ts';
import { startMeshpilot } from './support/meshpilot.ts';

const run = promisify(execFile);
const NS = 'shop';
const NODE_ID = 'router~10.244.7.7~edge-0.shop~shop.svc.cluster.local';

/** A CA, and certificates it signs for secure.example.com (the gateway's) and vault.example.com (a backend's). */
async function certificates(dir: string): Promise<void> {
  const openssl = (...args: string[]): Promise<unknown> => run('openssl', args, { cwd: dir });
  await openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=meshpilot gateway test CA');
  for (const name of ['secure', 'vault']) {
    await openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}.example.com`);
    await run('sh', ['-c', `printf "subjectAltName=DNS:${name}.example.com" > ${name}.ext`], { cwd: dir });
    await openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '1', '-extfile', `${name}.ext`);
  }
}

/** A backend that terminates TLS itself, answering with its name and the SNI it saw. */
async function tlsBackend(dir: string): Promise<{ close: () => void; port: number }> {
  const server = createHttpsServer({ key: await readFile(join(dir, 'vault.key')), cert: await readFile(join(dir, 'vault.pem')) }, (req, res) => {
    const sni = (req.socket as { servername?: unknown }).servername;
    res.end(JSON.stringify({ backend: 'vault', sni, path: req.url }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { close: () => server.close(), port: (server.address() as AddressInfo).port };
}

describe('a real Envoy as the ingress gateway of a Gateway and its VirtualService', () => {
  it('routes by Host and path to the backends, 404s other hosts, redirects the HTTPS-only host, and terminates HTTPS', async (t) => {
    if (!(await requireEnvoy(t))) return;
    const [frontend, api] = await Promise.all([backend('frontend'), backend('api')]);
    t.after(() => {
      frontend.server.close();
      api.server.close();
    });
    const [httpPort, httpsPort, passthroughPort] = [await freePort(), await freePort(), await freePort()];
    const dir = await MeshDir.create();
    t.after(() => dir.remove());
    await certificates(dir.path);
    const vault = await tlsBackend(dir.path);
    t.after(() => {
      vault.close();
    });
    await dir.write('shop.yaml', [
      service('frontend', NS, [{ name: 'http', port: 80, targetPort: frontend.port }], '10.96.7.1'),
      endpointSlice('frontend', NS, { name: 'http', port: frontend.port }, [{ name: 'frontend-0', ip: '127.0.0.1' }]),
      service('api', NS, [{ name: 'http', port: 80, targetPort: api.port }], '10.96.7.2'),
      endpointSlice('api', NS, { name: 'http', port: api.port }, [{ name: 'api-0', ip: '127.0.0.1' }]),
      service('vault', NS, [{ name: 'tls', port: 443, targetPort: vault.port }], '10.96.7.4'),
      endpointSlice('vault', NS, { name: 'tls', port: vault.port }, [{ name: 'vault-0', ip: '127.0.0.1' }]),
      // The gateway's pod, known by its address in the node id, and its Service: the Gateway selects it by the pod's labels.
      pod('edge-0', NS, '10.244.7.7', { app: 'edge' }),
      service('edge', NS, [{ name: 'http', port: 80, targetPort: 8080 }], '10.96.7.3'),
      endpointSlice('edge', NS, { name: 'http', port: 8080 }, [{ name: 'edge-0', ip: '10.244.7.7' }]),
      rule('Gateway', 'public', NS, {
        selector: { app: 'edge' },
        servers: [
          { port: { number: httpPort, name: 'http', protocol: 'HTTP' }, bind: '127.0.0.1', hosts: ['shop.example.com'] },
          { port: { number: httpPort, name: 'http-redirect', protocol: 'HTTP' }, bind: '127.0.0.1', hosts: ['secure.example.com'], tls: { httpsRedirect: true } },
          {
            port: { number: httpsPort, name: 'https', protocol: 'HTTPS' },
            bind: '127.0.0.1',
            hosts: ['./secure.example.com'],
            tls: { mode: 'SIMPLE', serverCertificate: join(dir.path, 'secure.pem'), privateKey: join(dir.path, 'secure.key') },
          },
          { port: { number: passthroughPort, name: 'tls', protocol: 'TLS' }, bind: '127.0.0.1', hosts: ['vault.example.com'], tls: { mode: 'PASSTHROUGH' } },
        ],
      }),
      rule('VirtualService', 'vault', NS, { hosts: ['vault.example.com'], gateways: ['public'], tls: [{ match: [{ sniHosts: ['vault.example.com'] }], route: [{ destination: { host: 'vault' } }] }] }),
      rule('VirtualService', 'storefront', NS, {
        hosts: ['shop.example.com', 'secure.example.com'],
        gateways: ['public'],
        http: [
          { match: [{ uri: { prefix: '/api/' } }], route: [{ destination: { host: 'api' } }] },
          { route: [{ destination: { host: 'frontend' } }] },
        ],
      }),
    ]);
    const meshpilot = await startMeshpilot(dir.path);
    t.after(() => meshpilot.close());
    const envoy = await startEnvoy({ bootstrap: adsBootstrap({ nodeId: NODE_ID, xdsHost: '127.0.0.1', xdsPort: meshpilot.xdsPort }) });
    t.after(() => envoy.stop());

    const served = await envoy.waitFor('the gateway to answer for shop.example.com', async () => {
      const answer = await get(httpPort, 'shop.example.com', '/').catch(() => undefined);
      return answer?.status === 200 ? answer : undefined;
    });
    assert.deepEqual(JSON.parse(served.body), { backend: 'frontend', path: '/', host: 'shop.example.com' });
    assert.deepEqual(JSON.parse((await get(httpPort, `shop.example.com:${String(httpPort)}`, '/api/items?id=7')).body), { backend: 'api', path: '/api/items?id=7', host: `shop.example.com:${String(httpPort)}` });
    assert.equal((await get(httpPort, 'other.example.com', '/')).status, 404, 'a host no server exposes is not found');

    const redirect = await get(httpPort, 'secure.example.com', '/cart');
    assert.equal(redirect.status, 301);
    assert.equal(redirect.headers['location'], 'https://secure.example.com/cart');
    const ca = await readFile(join(dir.path, 'ca.pem'));
    const secure = await envoy.waitFor('HTTPS on the secure server', async () => {
      const answer = await get(httpsPort, 'secure.example.com', '/api/orders', ca).catch(() => undefined);
      return answer?.status === 200 ? answer : undefined;
    });
    assert.deepEqual(JSON.parse(secure.body), { backend: 'api', path: '/api/orders', host: 'secure.example.com' });
    const passed = await get(passthroughPort, 'vault.example.com', '/secret', ca);
    assert.deepEqual(JSON.parse(passed.body), { backend: 'vault', sni: 'vault.example.com', path: '/secret' }, 'the backend terminated the TLS the gateway passed through');

    assert.deepEqual(await envoy.rejectedUpdates(), {});
    const dump = JSON.stringify(await meshpilot.configDump(NODE_ID));
    for (const name of [`127.0.0.1_${String(httpPort)}`, `127.0.0.1_${String(httpsPort)}`, `http.${String(httpPort)}.127.0.0.1`, `https.${String(httpsPort)}.https.public.shop.127.0.0.1`]) assert.ok(dump.includes(`"${name}"`), name);
    assert.ok(!dump.includes('virtualOutbound') && !dump.includes('virtualInbound'), 'a gateway gets no sidecar listener');
  });
});
