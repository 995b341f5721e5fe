// The fake Kubernetes API as the conformance suite's controller-runtime client and the harness's
// controllers use it: CRDs that serve their kind with their schema's defaults, deletes of one
// object, a collection or a namespace, label and field selectors, generateName, the Namespace
// name label, pods/log, and HTTPS (client-go sends its token only over TLS).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { get } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { FakeKubeApi, type KubeObject } from './support/fake-kube-api.ts';

const run = promisify(execFile);

async function call(api: FakeKubeApi, method: string, path: string, body?: unknown): Promise<{ status: number; json: KubeObject & { items?: KubeObject[] } }> {
  const response = await fetch(`${api.url}${path}`, {
    method,
    headers: { authorization: 'Bearer fake-token', 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, json: (text.startsWith('{') ? JSON.parse(text) : { text }) as KubeObject & { items?: KubeObject[] } };
}

const names = (list: { items?: KubeObject[] }): string[] => (list.items ?? []).map((item) => String(item.metadata?.['name']));

const WIDGET_CRD: KubeObject = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: 'widgets.example.com' },
  spec: {
    group: 'example.com',
    scope: 'Namespaced',
    names: { plural: 'widgets', kind: 'Widget' },
    versions: [
      {
        name: 'v1',
        served: true,
        storage: true,
        subresources: { status: {} },
        schema: { openAPIV3Schema: { type: 'object', properties: { spec: { type: 'object', properties: { size: { type: 'integer', default: 3 }, parts: { type: 'array', items: { type: 'object', properties: { kind: { type: 'string', default: 'bolt' } } } } } } } } },
      },
    ],
  },
};

describe('the fake Kubernetes API for controllers', () => {
  it('serves a CRD created through it, with its schema defaults, and stops when it is deleted', async () => {
    const api = await FakeKubeApi.start();
    try {
      assert.equal((await call(api, 'POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', WIDGET_CRD)).status, 201);
      const created = await call(api, 'POST', '/apis/example.com/v1/namespaces/shop/widgets', { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w1' }, spec: { parts: [{}, { kind: 'nut' }] } });
      assert.equal(created.status, 201);
      assert.deepEqual(created.json['spec'], { size: 3, parts: [{ kind: 'bolt' }, { kind: 'nut' }] });
      assert.equal(created.json.metadata?.['generation'], 1);
      assert.equal((await call(api, 'DELETE', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com')).status, 200);
      assert.equal((await call(api, 'GET', '/apis/example.com/v1/namespaces/shop/widgets/w1')).status, 404);
    } finally {
      await api.close();
    }
  });

  it('deletes one object, a selected collection, and a namespace with everything in it', async () => {
    const api = await FakeKubeApi.start();
    try {
      api.applyAll([
        { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } },
        { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'keep' } },
        ...['a', 'b', 'c'].map((name) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'shop', labels: { tier: name === 'c' ? 'db' : 'web' } } })),
        { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'other', namespace: 'keep' } },
      ]);
      const gone = await call(api, 'DELETE', '/api/v1/namespaces/shop/configmaps/a');
      assert.deepEqual([gone.status, gone.json.metadata?.['name']], [200, 'a']);
      assert.equal((await call(api, 'DELETE', '/api/v1/namespaces/shop/configmaps/a')).status, 404);
      assert.deepEqual(names((await call(api, 'DELETE', '/api/v1/namespaces/shop/configmaps?labelSelector=tier%3Dweb')).json), ['b']);
      assert.deepEqual(api.list('ConfigMap').map((o) => o.metadata?.['name']), ['other', 'c']);
      assert.equal((await call(api, 'DELETE', '/api/v1/namespaces/shop')).status, 200);
      assert.deepEqual(api.list('ConfigMap').map((o) => o.metadata?.['name']), ['other']);
      assert.deepEqual(api.list('Namespace').map((o) => o.metadata?.['name']), ['keep']);
    } finally {
      await api.close();
    }
  });

  it('lists by label and field selectors, names from generateName, and labels Namespaces with their name', async () => {
    const api = await FakeKubeApi.start();
    try {
      api.applyAll(['web', 'db', 'cache'].map((app) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: `${app}-0`, namespace: 'shop', labels: { app, ...(app === 'db' ? {} : { tier: 'front' }) } } })));
      const list = async (query: string): Promise<string[]> => names((await call(api, 'GET', `/api/v1/namespaces/shop/pods?${query}`)).json);
      assert.deepEqual(await list('labelSelector=app%20in%20(web%2Cdb)'), ['db-0', 'web-0']);
      assert.deepEqual(await list('labelSelector=app%20notin%20(web),tier'), ['cache-0']);
      assert.deepEqual(await list('labelSelector=!tier'), ['db-0']);
      assert.deepEqual(await list('labelSelector=app!%3Dweb'), ['cache-0', 'db-0']);
      assert.deepEqual(await list('fieldSelector=metadata.name%3Dweb-0'), ['web-0']);
      assert.equal((await call(api, 'GET', '/api/v1/namespaces/shop/pods?fieldSelector=spec.nodeName%3Dn1')).status, 400);
      const generated = await call(api, 'POST', '/api/v1/namespaces/shop/configmaps', { metadata: { generateName: 'cm-' } });
      assert.match(String(generated.json.metadata?.['name']), /^cm-[0-9a-z]{5}$/);
      const namespace = await call(api, 'POST', '/api/v1/namespaces', { metadata: { name: 'team-a' } });
      assert.deepEqual(namespace.json.metadata?.['labels'], { 'kubernetes.io/metadata.name': 'team-a' });
      assert.equal(namespace.json.metadata['namespace'], undefined, 'a cluster-scoped object has no namespace');
    } finally {
      await api.close();
    }
  });

  it("serves a Pod's log since a time, and speaks HTTPS with a certificate", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'meshpilot-fake-api-'));
    try {
      await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'key'), '-out', join(dir, 'crt'), '-days', '1', '-subj', '/CN=fake-kube-api', '-addext', 'subjectAltName=IP:127.0.0.1']);
      const cert = await readFile(join(dir, 'crt'), 'utf8');
      const api = await FakeKubeApi.start({ tls: { cert, key: await readFile(join(dir, 'key'), 'utf8') } });
      try {
        assert.match(api.url, /^https:/);
        api.apply({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'echo-0', namespace: 'shop' } });
        const lines = [{ at: new Date('2026-01-01T00:00:00Z'), line: 'old' }, { at: new Date('2026-01-01T00:00:10Z'), line: 'new' }];
        api.serveLogs((namespace, pod, since) => (pod === 'echo-0' ? lines.filter((l) => !since || l.at >= since).map((l) => `${l.line}\n`).join('') : undefined));
        const body = await new Promise<{ status: number; text: string }>((resolve, reject) => {
          get(`${api.url}/api/v1/namespaces/shop/pods/echo-0/log?sinceTime=2026-01-01T00:00:05Z`, { ca: cert, headers: { authorization: 'Bearer fake-token' } }, (res) => {
            let text = '';
            res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk)).on('end', () => { resolve({ status: res.statusCode ?? 0, text }); });
          }).on('error', reject);
        });
        assert.deepEqual(body, { status: 200, text: 'new\n' });
      } finally {
        await api.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
