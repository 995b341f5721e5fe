// Egress through real Envoy with meshpilot's clusters and routes. TLS origination as Istio's egress task sets it up: the application calls http://host, and a
// DestinationRule `tls.mode: SIMPLE` makes its sidecar open TLS to the external host. Real Envoy,
// with meshpilot's clusters and routes, against loopback HTTPS servers holding certificates this
// test makes: the right chain is trusted, a wrong name or an unknown CA is refused, and
// insecureSkipVerify turns the check off. And a VirtualService's directResponse answers by itself.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { buildPushContext } from '../src/model/push-context.ts';
import { loadDirectory } from '../src/sources/yaml-source.ts';
import type { JsonObject } from '../src/xds/proto-json.ts';
import { renderForProxy } from '../src/xds/render.ts';
import { LISTENER_TYPE } from '../src/xds/type-urls.ts';
import { exactStat, requireEnvoy, startEnvoy, type RunningEnvoy } from './support/envoy.ts';
import { staticBootstrap } from './support/envoy-static.ts';
import { MeshDir, rule } from './support/mesh-dir.ts';
import { SIDECAR, violations } from './support/rendered.ts';

const run = promisify(execFile);

/** A CA and two server certificates it signs: one for `secure.example.test`, one for another name. */
async function makeCertificates(dir: string): Promise<void> {
  const openssl = (...args: string[]): Promise<unknown> => run('openssl', args, { cwd: dir });
  await openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=meshpilot test CA');
  for (const [name, san] of [['good', 'secure.example.test'], ['wrong', 'somebody-else.example.test']] as const) {
    await openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${san}`);
    await writeFile(`${dir}/${name}.ext`, `subjectAltName=DNS:${san}\n`);
    await openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '1', '-extfile', `${name}.ext`);
  }
}

/** An HTTPS server on loopback that answers with the SNI it was sent. */
async function httpsServer(dir: string, name: string): Promise<Server> {
  const server = createServer({ key: await readFile(`${dir}/${name}.key`), cert: await readFile(`${dir}/${name}.pem`) }, (req, res) => {
    const sni = 'servername' in req.socket ? (req.socket as { servername?: unknown }).servername : undefined;
    res.end(`tls ok, sni=${String(sni)}`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

function portOf(server: Server): number {
  return (server.address() as AddressInfo).port;
}

/** A plain-HTTP request to Envoy's outbound listener, as the application would send it. */
function get(port: number, host: string, path = '/'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { host } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** A ServiceEntry for `host` on port 80, its one endpoint the loopback server on `port`. */
function external(host: string, port: number): ReturnType<typeof rule> {
  return rule('ServiceEntry', host.split('.')[0] ?? host, 'default', {
    hosts: [host],
    location: 'MESH_EXTERNAL',
    resolution: 'STATIC',
    ports: [{ number: 80, name: 'http', protocol: 'HTTP' }],
    endpoints: [{ address: '127.0.0.1', ports: { http: port } }],
  });
}

function simpleTls(host: string, tls: Record<string, unknown>): ReturnType<typeof rule> {
  return rule('DestinationRule', host.split('.')[0] ?? host, 'default', { host, trafficPolicy: { tls: { mode: 'SIMPLE', ...tls } } });
}

describe('egress through real Envoy: TLS origination (DestinationRule tls.mode SIMPLE) and a directResponse', () => {
  let dir: MeshDir | undefined;
  let certDir: MeshDir | undefined;
  let good: Server | undefined;
  let wrong: Server | undefined;
  let envoy: RunningEnvoy | undefined;
  let listenerPort = 0;

  before(async () => {
    dir = await MeshDir.create();
    certDir = await MeshDir.create();
    const certs = certDir.path;
    await makeCertificates(certs);
    good = await httpsServer(certs, 'good');
    wrong = await httpsServer(certs, 'wrong');
    await dir.write('egress.yaml', [
      external('secure.example.test', portOf(good)),
      simpleTls('secure.example.test', { caCertificates: `${certs}/ca.pem` }),
      rule('VirtualService', 'secure', 'default', {
        hosts: ['secure.example.test'],
        http: [
          { match: [{ uri: { prefix: '/status' } }], directResponse: { status: 418, body: { string: 'brewing, not forwarded' } } },
          { route: [{ destination: { host: 'secure.example.test' } }] },
        ],
      }),
      external('impostor.example.test', portOf(wrong)),
      simpleTls('impostor.example.test', { caCertificates: `${certs}/ca.pem` }),
      external('lenient.example.test', portOf(wrong)),
      simpleTls('lenient.example.test', { insecureSkipVerify: true }),
      external('public.example.test', portOf(good)),
      simpleTls('public.example.test', {}),
    ]);
  });

  after(async () => {
    await envoy?.stop();
    good?.close();
    wrong?.close();
    await dir?.remove();
    await certDir?.remove();
  });

  it('starts real Envoy with the clusters and routes meshpilot renders for four external hosts, its checkers finding nothing', async (t) => {
    if (!(await requireEnvoy(t)) || !dir) return;
    const converted = await loadDirectory(dir.path);
    assert.deepEqual(converted.rejected, []);
    const rendered = renderForProxy(buildPushContext(converted), SIDECAR);
    assert.deepEqual(violations(rendered), []);
    const bootstrap = staticBootstrap(SIDECAR.id, rendered);
    // The outbound HTTP listener, bound on loopback instead of behind iptables' redirect.
    const resources = bootstrap['static_resources'] as { listeners: JsonObject[] };
    const listener = resources.listeners.find((l) => l['name'] === '0.0.0.0_80');
    assert.ok(listener, `no 0.0.0.0_80 in ${rendered[LISTENER_TYPE].map((l) => l.name).join(', ')}`);
    const { bind_to_port: _bind, ...bound } = listener;
    resources.listeners = [{ ...bound, address: { socket_address: { address: '127.0.0.1', port_value: 0 } } }];
    envoy = await startEnvoy({ bootstrap: { ...bootstrap, admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } } } });
    const running = envoy;
    listenerPort = await running.waitFor('the outbound listener', async () => {
      const body = (await (await running.admin('/listeners?format=json')).json()) as {
        listener_statuses?: { local_address?: { socket_address?: { port_value?: number } } }[];
      };
      return body.listener_statuses?.[0]?.local_address?.socket_address?.port_value;
    });
  });

  it('reaches a server whose certificate chains to caCertificates and names the host, sending the host as SNI', async (t) => {
    if (!(await requireEnvoy(t))) return;
    assert.deepEqual(await get(listenerPort, 'secure.example.test'), { status: 200, body: 'tls ok, sni=secure.example.test' });
  });

  it('refuses a server whose certificate, though from the trusted CA, names another host', async (t) => {
    if (!(await requireEnvoy(t)) || !envoy) return;
    const response = await get(listenerPort, 'impostor.example.test');
    assert.equal(response.status, 503);
    assert.ok((await envoy.waitForStat('cluster.outbound|80||impostor.example.test.ssl.fail_verify_san', 1)) >= 1);
  });

  it('checks against the system trust store when no caCertificates is given, which does not hold the test CA', async (t) => {
    if (!(await requireEnvoy(t)) || !envoy) return;
    const response = await get(listenerPort, 'public.example.test');
    assert.equal(response.status, 503);
    assert.ok((await envoy.waitForStat('cluster.outbound|80||public.example.test.ssl.fail_verify_error', 1)) >= 1);
  });

  it('with insecureSkipVerify accepts the wrong certificate, still sending the host as SNI', async (t) => {
    if (!(await requireEnvoy(t))) return;
    assert.deepEqual(await get(listenerPort, 'lenient.example.test'), { status: 200, body: 'tls ok, sni=lenient.example.test' });
  });

  it("answers a directResponse route with the rule's status and body, without calling the host", async (t) => {
    if (!(await requireEnvoy(t)) || !envoy) return;
    assert.deepEqual(await get(listenerPort, 'secure.example.test', '/status'), { status: 418, body: 'brewing, not forwarded' });
    const forwarded = await envoy.stats({ filter: exactStat('cluster.outbound|80||secure.example.test.upstream_rq_total') });
    // Only the one request of the TLS case above reached the server.
    assert.deepEqual([...forwarded.values()], [1]);
  });
});
