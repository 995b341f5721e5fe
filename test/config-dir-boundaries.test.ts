// The config directory is the only thing read: a link that leaves it is refused and its target
// never echoed, while ConfigMap-style links inside it keep working.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MeshDir, service } from './support/mesh-dir.ts';
import { startMeshpilot, type TestMeshpilot } from './support/meshpilot.ts';

interface Configz {
  rejected: { source: { location: string }; errors: { code: string; message: string }[] }[];
}

describe('the config directory boundary', () => {
  let outside: string;
  let dir: MeshDir;
  let meshpilot: TestMeshpilot;
  const secret = 'MESHPILOT_ADMIN_TOKEN=do-not-show-this-token-anywhere';

  before(async () => {
    outside = await mkdtemp(path.join(os.tmpdir(), 'meshpilot-outside-'));
    await writeFile(path.join(outside, 'environ'), `${secret}\0HOME=/root\0`);
    await mkdir(path.join(outside, 'tree'));
    await writeFile(path.join(outside, 'tree', 'svc.yaml'), 'apiVersion: v1\nkind: Service\nmetadata: {name: sneaky, namespace: default}\nspec: {ports: [{port: 80}]}\n');
    dir = await MeshDir.create();
    await symlink(path.join(outside, 'environ'), path.join(dir.path, 'environ.yaml'));
    await symlink(path.join(outside, 'tree'), path.join(dir.path, 'linked-dir'));
    // What a ConfigMap volume looks like: the files are links into a timestamped dot-directory.
    await mkdir(path.join(dir.path, '..2026_11_30_00_00_00.1'));
    await symlink('..2026_11_30_00_00_00.1', path.join(dir.path, '..data'));
    await writeFile(path.join(dir.path, '..2026_11_30_00_00_00.1', 'reviews.yaml'), JSON.stringify(service('reviews', 'default', [{ name: 'http', port: 9080, targetPort: 9080 }], '198.51.100.20')));
    await symlink('..data/reviews.yaml', path.join(dir.path, 'reviews.yaml'));
    await writeFile(path.join(dir.path, 'words.yaml'), `just a long sentence that is not an object at all, ${'x'.repeat(200)}\n`);
    meshpilot = await startMeshpilot(dir.path);
  });

  after(async () => {
    await meshpilot.close();
    await dir.remove();
    await rm(outside, { recursive: true, force: true });
  });

  it('a link to a file outside the directory is refused with MP_FILE_REFUSED, and its content appears nowhere', async () => {
    const response = await meshpilot.admin('/debug/configz');
    const text = await response.text();
    assert.ok(!text.includes('do-not-show-this-token'), 'the linked file leaked into /debug/configz');
    const configz = JSON.parse(text) as Configz;
    const refused = configz.rejected.find((r) => r.source.location === 'environ.yaml');
    assert.equal(refused?.errors[0]?.code, 'MP_FILE_REFUSED');
  });

  it('a linked directory outside is not walked, and a ConfigMap-style link inside is served', async () => {
    const registry = await (await meshpilot.admin('/debug/registryz')).text();
    assert.ok(!registry.includes('sneaky'));
    assert.ok(registry.includes('reviews.default.svc.cluster.local'));
  });

  it('a document that is not an object is quoted only briefly', async () => {
    const configz = (await (await meshpilot.admin('/debug/configz')).json()) as Configz;
    const words = configz.rejected.find((r) => r.source.location === 'words.yaml');
    const message = words?.errors[0]?.message ?? '';
    assert.match(message, /MP_OBJECT_INVALID|not a Kubernetes object/);
    assert.ok(!message.includes('x'.repeat(40)), message);
    assert.match(message, /a string of \d+ characters/);
  });
});
