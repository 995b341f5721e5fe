// A file that becomes garbage, empty, or unreadable keeps its objects served: only deleting a
// file, or editing it into valid YAML without them, removes what it described.
import assert from 'node:assert/strict';
import { mkdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { applyLastGood, EMPTY_DIRECTORY_STATE, readObjectsFromText } from '../src/sources/config-dir.ts';
import { assembleObjects } from '../src/sources/kube-objects.ts';
import { MeshDir, eventually, service, toYaml } from './support/mesh-dir.ts';
import { startMeshpilot, type TestMeshpilot } from './support/meshpilot.ts';

interface Configz {
  rejected: { source: { location: string }; keptLastGood: boolean; errors: { code: string; message: string }[] }[];
}

const svc = (name: string, ip: string): ReturnType<typeof service> => service(name, 'default', [{ name: 'http', port: 9080, targetPort: 9080 }], ip);

describe('last good config survives a file turning bad', () => {
  let dir: MeshDir;
  let meshpilot: TestMeshpilot;

  const hostnames = async (): Promise<string[]> => {
    const registry = (await (await meshpilot.admin('/debug/registryz')).json()) as { services: { hostname: string }[] };
    return registry.services.map((s) => s.hostname).sort();
  };
  const refusal = (location: string) => async (): Promise<Configz['rejected'][number] | undefined> => {
    const configz = (await (await meshpilot.admin('/debug/configz')).json()) as Configz;
    return configz.rejected.find((r) => r.source.location === location);
  };

  before(async () => {
    dir = await MeshDir.create();
    await dir.write('a.yaml', [svc('alpha', '198.51.100.1'), svc('beta', '198.51.100.2')]);
    await dir.write('c.yaml', [svc('gamma', '198.51.100.3')]);
    await mkdir(join(dir.path, 'team'));
    await dir.write('team/d.yaml', [svc('delta', '198.51.100.4')]);
    meshpilot = await startMeshpilot(dir.path);
    await eventually(async () => ((await hostnames()).length === 4 ? true : undefined), 10_000, 'four services');
  });

  after(async () => {
    await meshpilot.close();
    await dir.remove();
  });

  it('bytes that parse as a YAML string are a broken file, and its objects stay', async () => {
    await dir.write('a.yaml', '\u0007\u0013garbage-bytes-that-are-a-yaml-scalar QmFzZTY0IG5vaXNl\n');
    const rejected = await eventually(refusal('a.yaml'), 10_000, 'a.yaml reported');
    assert.equal(rejected.keptLastGood, true);
    assert.match(rejected.errors[0]?.message ?? '', /not a Kubernetes object.*nothing from this file changed/);
    assert.deepEqual(await hostnames(), ['alpha', 'beta', 'delta', 'gamma'].map((n) => `${n}.default.svc.cluster.local`));
  });

  it('a file emptied by accident keeps its objects, and says how to remove them', async () => {
    await dir.write('c.yaml', '');
    const rejected = await eventually(refusal('c.yaml'), 10_000, 'c.yaml reported');
    assert.equal(rejected.errors[0]?.code, 'MP_FILE_REFUSED');
    assert.match(rejected.errors[0].message, /is empty but held 1 object.*delete the file/);
    assert.ok((await hostnames()).includes('gamma.default.svc.cluster.local'));
  });

  it('deleting the file removes its objects', async () => {
    await unlink(join(dir.path, 'c.yaml'));
    await eventually(async () => (!(await hostnames()).includes('gamma.default.svc.cluster.local') ? true : undefined), 10_000, 'gamma removed');
  });
});

describe('an unreadable subdirectory', () => {
  it('keeps the files last read under it, and the rest of the directory still applies', () => {
    const first = applyLastGood(EMPTY_DIRECTORY_STATE, [
      { file: 'a.yaml', result: readObjectsFromText(toYaml([svc('alpha', '198.51.100.1')]), 'a.yaml') },
      { file: 'team/d.yaml', result: readObjectsFromText(toYaml([svc('delta', '198.51.100.4')]), 'team/d.yaml') },
    ]);
    // What readDirectory reports when team/ cannot be listed (EACCES for a non-root process).
    const listedWithoutTeam = [
      { file: 'a.yaml', result: readObjectsFromText(toYaml([svc('alpha', '198.51.100.1'), svc('epsilon', '198.51.100.5')]), 'a.yaml') },
      { file: 'team/', result: { ok: false as const, rejected: { source: { origin: 'file' as const, location: 'team/' }, object: 'file', issues: [{ code: 'MP_FILE_REFUSED' as const, severity: 'error' as const, path: '', message: 'cannot be listed' }], keptLastGood: false } } },
    ];
    const second = applyLastGood(first.state, listedWithoutTeam);
    const served = assembleObjects(second.parsed).services.map((s) => s.hostname).sort();
    assert.deepEqual(served, ['alpha', 'delta', 'epsilon'].map((n) => `${n}.default.svc.cluster.local`));
    assert.ok(second.parsed.some((p) => p.type === 'rejected' && p.source.location === 'team/d.yaml' && p.rejected.keptLastGood));
  });
});

describe('a file holding an object in error', () => {
  const read = (text: string): ReturnType<typeof applyLastGood> => applyLastGood(EMPTY_DIRECTORY_STATE, [{ file: 'svc.yaml', result: readObjectsFromText(text, 'svc.yaml') }]);

  it('keeps the objects that vanished from it: a mangled name or a cut-off write is not a deletion', () => {
    const first = read(toYaml([svc('alpha', '198.51.100.1'), svc('beta', '198.51.100.2')]));
    const mangled = toYaml([svc('alpha', '198.51.100.1'), { ...svc('beta', '198.51.100.2'), metadata: { name: 7 } }]);
    const { parsed } = applyLastGood(first.state, [{ file: 'svc.yaml', result: readObjectsFromText(mangled, 'svc.yaml') }]);
    const converted = assembleObjects(parsed);
    assert.deepEqual(converted.services.map((s) => s.name), ['alpha', 'beta']);
    assert.deepEqual(converted.rejected.map((r) => [r.object, r.keptLastGood, r.issues[0]?.path]), [['Service in document 2', true, 'metadata.name']]);
  });

  it('once the file reads clean, what it no longer holds is removed', () => {
    const first = read(toYaml([svc('alpha', '198.51.100.1'), svc('beta', '198.51.100.2')]));
    const { parsed } = applyLastGood(first.state, [{ file: 'svc.yaml', result: readObjectsFromText(toYaml([svc('alpha', '198.51.100.1')]), 'svc.yaml') }]);
    assert.deepEqual(assembleObjects(parsed).services.map((s) => s.name), ['alpha']);
  });
});
