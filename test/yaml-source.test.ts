import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { MeshpilotError } from '../src/errors.ts';
import type { DestinationRule, VirtualService } from '../src/model/rules.ts';
import { ConfigStore } from '../src/model/store.ts';
import { loadDirectory, readObjectsFromText, YamlSource } from '../src/sources/yaml-source.ts';

const BOOKINFO = fileURLToPath(new URL('../fixtures/bookinfo', import.meta.url));

interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

function captureLog(): { log: pino.Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
  return { log, lines };
}

/** Polls until `condition` holds; fails with `what` after the deadline instead of sleeping blindly. */
async function eventually(what: string, condition: () => boolean, deadlineMs = 5000): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const serviceYaml = (name: string, port = 9080): string => `apiVersion: v1
kind: Service
metadata:
  name: ${name}
  namespace: default
spec:
  clusterIP: 10.96.0.${port % 250}
  ports:
  - name: http
    port: ${port}
`;

const reviewsVs = (weights: [number, number]): string => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: { host: reviews, subset: v1 }
      weight: ${weights[0]}
    - destination: { host: reviews, subset: v3 }
      weight: ${weights[1]}
`;

function weightsOf(store: ConfigStore): number[] {
  const rule = store.current().rules.find((r): r is VirtualService => r.meta.kind === 'VirtualService' && r.meta.name === 'reviews');
  return (rule?.spec.http?.[0]?.route ?? []).map((destination) => destination.weight ?? 0);
}

void describe('reading files', () => {
  void it("kubectl's List output is read, including API lists whose items carry no kind", () => {
    const text = `apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata: { name: details, namespace: default }
  spec: { ports: [{ name: http, port: 9080 }] }
- apiVersion: v1
  kind: Pod
  metadata: { name: details-v1-abc, namespace: default, labels: { app: details } }
metadata:
  resourceVersion: ""
---
{"apiVersion": "v1", "kind": "ServiceList", "items": [{"metadata": {"name": "ratings"}, "spec": {"ports": [{"name": "http", "port": 9080}]}}]}
`;
    const result = readObjectsFromText(text, 'dump.yaml');
    assert.ok(result.ok);
    assert.deepEqual(
      result.objects.map((o) => [(o.object as { kind: string }).kind, o.position]),
      [['Service', 'document 1, item 1'], ['Pod', 'document 1, item 2'], ['Service', 'document 2, item 1']],
    );
    assert.deepEqual(result.objects[0]?.source, { origin: 'file', location: 'dump.yaml' });
  });

  void it('a YAML syntax error names the line and column and fails the whole file', () => {
    const result = readObjectsFromText(`${serviceYaml('a')}---\napiVersion: v1\nkind: Service\nmetadata:\n  name: b\n   namespace: oops\n`, 'svc.yaml');
    assert.equal(result.ok, false);
    assert.equal(result.rejected.object, 'document 2');
    assert.equal(result.rejected.issues[0]?.code, 'MP_YAML_PARSE');
    assert.match(result.rejected.issues[0].message, /^line 15, column 9: .+: fix the YAML syntax/);
  });

  void it('the bookinfo fixture loads: four services, six endpoints with version labels, subsets, jason to v2, nothing rejected', async () => {
    const loaded = await loadDirectory(BOOKINFO);
    assert.deepEqual(loaded.rejected, []);
    assert.deepEqual(loaded.ignored, {});
    assert.deepEqual(
      loaded.services.map((s) => [s.hostname, s.ports.map((p) => `${p.name}/${p.port}/${p.protocol}`).join(), s.vip?.startsWith('10.96.')]),
      [
        ['details.default.svc.cluster.local', 'http/9080/HTTP', true],
        ['productpage.default.svc.cluster.local', 'http/9080/HTTP', true],
        ['ratings.default.svc.cluster.local', 'http/9080/HTTP', true],
        ['reviews.default.svc.cluster.local', 'http/9080/HTTP', true],
      ],
    );
    assert.deepEqual(
      loaded.endpoints.map((e) => [e.serviceHostname.split('.')[0], e.labels['app'], e.labels['version'], e.port, e.servicePortName, e.ready, e.address.startsWith('10.244.')]),
      [
        ['details', 'details', 'v1', 9080, 'http', true, true],
        ['productpage', 'productpage', 'v1', 9080, 'http', true, true],
        ['ratings', 'ratings', 'v1', 9080, 'http', true, true],
        ['reviews', 'reviews', 'v1', 9080, 'http', true, true],
        ['reviews', 'reviews', 'v2', 9080, 'http', true, true],
        ['reviews', 'reviews', 'v3', 9080, 'http', true, true],
      ],
    );
    assert.ok(loaded.endpoints.every((e) => e.locality?.zone !== undefined && e.workload?.startsWith('default/') && e.labels['pod-template-hash']));
    const subsets = Object.fromEntries(
      loaded.rules
        .filter((r): r is DestinationRule => r.meta.kind === 'DestinationRule')
        .map((r) => [r.spec.host, (r.spec.subsets ?? []).map((s) => `${s.name}:${s.labels?.['version'] ?? ''}`)]),
    );
    assert.deepEqual(subsets, { details: ['v1:v1'], productpage: ['v1:v1'], ratings: ['v1:v1'], reviews: ['v1:v1', 'v2:v2', 'v3:v3'] });
    const reviews = loaded.rules.find((r): r is VirtualService => r.meta.kind === 'VirtualService' && r.meta.name === 'reviews');
    assert.ok(reviews);
    const [jason, split] = reviews.spec.http ?? [];
    assert.ok(jason && split);
    assert.deepEqual(jason.match?.[0]?.headers?.['end-user'], { exact: 'jason' });
    assert.deepEqual(jason.route?.map((d) => d.destination.subset), ['v2']);
    assert.deepEqual(split.route?.map((d) => [d.destination.subset, d.weight]), [['v1', 50], ['v3', 50]]);
    assert.equal(loaded.rules.filter((r) => r.meta.kind === 'VirtualService').length, 4);
  });
});

void describe('YamlSource', () => {
  let dir: string;
  let store: ConfigStore;
  let source: YamlSource | undefined;
  let captured: ReturnType<typeof captureLog>;
  let publishes: string[];

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'meshpilot-yaml-'));
    store = new ConfigStore();
    publishes = [];
    store.onChange((change) => publishes.push(change.reason));
    captured = captureLog();
  });

  afterEach(async () => {
    await source?.stop();
    source = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  async function startSource(quietMs = 30): Promise<YamlSource> {
    source = new YamlSource({ dir, store, log: captured.log, quietMs });
    await source.start();
    return source;
  }

  const hostnames = (): string[] => store.current().services.map((s) => s.hostname);

  void it('start() on a directory that does not exist throws MP_CONFIG saying what to do', async () => {
    const missing = path.join(dir, 'nope');
    const starting = new YamlSource({ dir: missing, store, log: captured.log }).start();
    await assert.rejects(starting, (error: unknown) => {
      assert.ok(error instanceof MeshpilotError);
      assert.equal(error.code, 'MP_CONFIG');
      assert.match(error.message, /does not exist: point --config-dir/);
      return true;
    });
    assert.equal(store.has(`file:${missing}`), false);
  });

  void it('start() publishes the first snapshot under file:<dir>, ignoring dotfiles and other extensions', async () => {
    await writeFile(path.join(dir, 'a.yaml'), serviceYaml('alpha'));
    await writeFile(path.join(dir, '.hidden.yaml'), serviceYaml('hidden'));
    await writeFile(path.join(dir, 'notes.txt'), serviceYaml('notes'));
    await mkdir(path.join(dir, 'team-b'));
    await writeFile(path.join(dir, 'team-b', 'b.yml'), serviceYaml('beta'));
    const started = await startSource();
    assert.equal(started.sourceId, `file:${dir}`);
    assert.ok(store.has(started.sourceId));
    assert.deepEqual(hostnames(), ['alpha.default.svc.cluster.local', 'beta.default.svc.cluster.local']);
    assert.equal(store.current().services[1]?.source.location, 'team-b/b.yml');
  });

  void it('editing a file republishes without restart', async () => {
    await writeFile(path.join(dir, 'vs.yaml'), reviewsVs([50, 50]));
    await startSource();
    assert.deepEqual(weightsOf(store), [50, 50]);
    await writeFile(path.join(dir, 'vs.yaml'), reviewsVs([95, 5]));
    await eventually('the 95/5 split to be published', () => weightsOf(store)[0] === 95);
    assert.deepEqual(weightsOf(store), [95, 5]);
    assert.match(publishes.at(-1) ?? '', /changed: vs\.yaml/);
  });

  void it("an editor's rename-on-save and a file in a new subdirectory are both picked up", async () => {
    await writeFile(path.join(dir, 'svc.yaml'), serviceYaml('alpha'));
    await startSource();
    await writeFile(path.join(dir, 'svc.yaml.tmp'), serviceYaml('alpha-renamed'));
    await rename(path.join(dir, 'svc.yaml.tmp'), path.join(dir, 'svc.yaml'));
    await eventually('the renamed-over file to be read', () => hostnames().includes('alpha-renamed.default.svc.cluster.local'));
    await mkdir(path.join(dir, 'later'));
    await writeFile(path.join(dir, 'later', 'more.yaml'), serviceYaml('gamma'));
    await eventually('the file in the new directory to be read', () => hostnames().includes('gamma.default.svc.cluster.local'));
    assert.deepEqual(hostnames(), ['alpha-renamed.default.svc.cluster.local', 'gamma.default.svc.cluster.local']);
  });

  void it('a burst of writes is published once, and saving unchanged content publishes nothing', async () => {
    // A wide quiet period, so a slow machine cannot split the burst.
    await startSource(200);
    assert.equal(publishes.length, 1);
    for (const name of ['a', 'b', 'c', 'd', 'e']) await writeFile(path.join(dir, `${name}.yaml`), serviceYaml(name));
    await eventually('all five services', () => hostnames().length === 5);
    await writeFile(path.join(dir, 'a.yaml'), serviceYaml('a'));
    await source?.reload('test');
    assert.equal(publishes.length, 2, `publishes: ${publishes.join(' | ')}`);
  });

  void it('deleting a file removes its services', async () => {
    await writeFile(path.join(dir, 'keep.yaml'), serviceYaml('keep'));
    await writeFile(path.join(dir, 'drop.yaml'), serviceYaml('drop'));
    await startSource();
    assert.equal(hostnames().length, 2);
    await rm(path.join(dir, 'drop.yaml'));
    await eventually('drop to disappear', () => hostnames().length === 1);
    assert.deepEqual(hostnames(), ['keep.default.svc.cluster.local']);
  });

  void it('a file with a YAML syntax error keeps the objects it had and reports line and column', async () => {
    await writeFile(path.join(dir, 'svc.yaml'), serviceYaml('alpha') + '---\n' + serviceYaml('beta', 9081));
    await startSource();
    await writeFile(path.join(dir, 'svc.yaml'), serviceYaml('alpha') + '---\n' + serviceYaml('beta', 9081).replace('  ports:', '  ports: [\n'));
    await eventually('the syntax error to be reported', () => store.current().rejected.length > 0);
    const { rejected } = store.current();
    assert.deepEqual(hostnames(), ['alpha.default.svc.cluster.local', 'beta.default.svc.cluster.local']);
    assert.equal(rejected.length, 1);
    assert.equal(rejected[0]?.source.location, 'svc.yaml');
    assert.equal(rejected[0].keptLastGood, true);
    assert.match(rejected[0].issues[0]?.message ?? '', /^line \d+, column \d+: /);
    const warn = captured.lines.find((line) => line.level === 40 && line['code'] === 'MP_YAML_PARSE');
    assert.ok(warn, 'a warn line names the parse error');
    assert.equal(warn['file'], 'svc.yaml');
  });

  void it('a broken VirtualService keeps its last good version, and the log names file, object, field and fix', async () => {
    await writeFile(path.join(dir, 'vs.yaml'), reviewsVs([50, 50]));
    await startSource();
    await writeFile(path.join(dir, 'vs.yaml'), reviewsVs([0, 0]));
    await eventually('the rejection to be published', () => store.current().rejected.length === 1);
    assert.deepEqual(weightsOf(store), [50, 50], 'the last good 50/50 split is still served');
    const [rejected] = store.current().rejected;
    assert.equal(rejected?.object, 'VirtualService default/reviews');
    assert.equal(rejected.keptLastGood, true);
    assert.equal(rejected.issues[0]?.path, 'spec.http[0].route');
    const warn = captured.lines.find((line) => line.level === 40 && line['code'] === 'MP_RULE_INVALID');
    assert.ok(warn, 'one warn line for the rejected rule');
    assert.deepEqual([warn['file'], warn['object'], warn['field'], warn['keptLastGood']], ['vs.yaml', 'VirtualService default/reviews', 'spec.http[0].route', true]);
    assert.match(warn.msg, /the weights of http\[0\]\.route sum to 0, so no destination gets traffic: give at least one destination a positive weight; still serving its last good version/);

    await writeFile(path.join(dir, 'vs.yaml'), reviewsVs([90, 10]));
    await eventually('the fixed rule to be served', () => weightsOf(store)[0] === 90);
    assert.deepEqual(store.current().rejected, []);
  });

  void it('a broken object that never had a good version is simply not served', async () => {
    await startSource();
    await writeFile(path.join(dir, 'vs.yaml'), reviewsVs([0, 0]));
    await eventually('the rejection to be published', () => store.current().rejected.length === 1);
    assert.equal(store.current().rejected[0]?.keptLastGood, false);
    assert.deepEqual(store.current().rules, []);
  });
});
