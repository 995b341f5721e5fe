// Size limits and quiet logs: a huge file or object is refused with a clear error before it can
// take the process's memory, and thousands of bad documents do not write thousands of log lines.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { MAX_FILE_BYTES, MAX_OBJECT_BYTES } from '../src/sources/config-dir.ts';
import { PROBLEM_LINES_PER_PUBLISH } from '../src/sources/problem-log.ts';
import { MeshDir, eventually, service, toYaml } from './support/mesh-dir.ts';
import { startMeshpilot, type TestMeshpilot } from './support/meshpilot.ts';

interface Configz {
  rejected: { source: { location: string }; object: string; keptLastGood: boolean; errors: { code: string; message: string }[] }[];
}

const svc = (name: string, ip: string): ReturnType<typeof service> => service(name, 'default', [{ name: 'http', port: 9080, targetPort: 9080 }], ip);

describe('size limits and log volume', () => {
  let dir: MeshDir;
  let meshpilot: TestMeshpilot;
  const lines: { msg: string }[] = [];

  const rejectedAt = (location: string) => async (): Promise<Configz['rejected'][number] | undefined> => {
    const configz = (await (await meshpilot.admin('/debug/configz')).json()) as Configz;
    return configz.rejected.find((r) => r.source.location === location);
  };

  before(async () => {
    dir = await MeshDir.create();
    await dir.write('big.yaml', [svc('kept', '198.51.100.7')]);
    const log = pino({ level: 'warn' }, { write: (line: string) => void lines.push(JSON.parse(line) as { msg: string }) });
    meshpilot = await startMeshpilot(dir.path, { log });
    await eventually(async () => ((await (await meshpilot.admin('/debug/registryz')).text()).includes('kept.default') ? true : undefined), 10_000, 'kept served');
  });

  after(async () => {
    await meshpilot.close();
    await dir.remove();
  });

  it('a file over the limit is refused unread, and what it held is still served', async () => {
    const padding = `# ${'x'.repeat(1000)}\n`.repeat(Math.ceil(MAX_FILE_BYTES / 1000) + 10);
    await dir.write('big.yaml', `${toYaml([svc('kept', '198.51.100.7')])}${padding}`);
    const rejected = await eventually(rejectedAt('big.yaml'), 20_000, 'big.yaml refused');
    assert.equal(rejected.errors[0]?.code, 'MP_FILE_REFUSED');
    assert.match(rejected.errors[0].message, /MiB, over the 16\.0 MiB a config file may be/);
    assert.equal(rejected.keptLastGood, true);
    assert.ok((await (await meshpilot.admin('/debug/registryz')).text()).includes('kept.default'));
  });

  it("an object over Kubernetes' size limit is refused", async () => {
    const huge = svc('huge', '198.51.100.8');
    (huge['metadata'] as Record<string, unknown>)['annotations'] = { blob: 'y'.repeat(MAX_OBJECT_BYTES + 1000) };
    await dir.write('huge.yaml', [huge]);
    const rejected = await eventually(rejectedAt('huge.yaml'), 20_000, 'huge.yaml refused');
    assert.match(rejected.errors[0]?.message ?? '', /over the 1\.5 MiB Kubernetes allows one object/);
  });

  it('a thousand invalid documents write a bounded number of log lines, and configz lists them all', async () => {
    const before = lines.length;
    const bad = Array.from({ length: 1000 }, (_, i) => ({ apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: `dr-${i}`, namespace: 'default' }, spec: {} }));
    await dir.write('many.yaml', bad);
    await eventually(async () => {
      const configz = (await (await meshpilot.admin('/debug/configz')).json()) as Configz;
      return configz.rejected.filter((r) => r.source.location === 'many.yaml').length === 1000 ? true : undefined;
    }, 20_000, 'all 1000 listed');
    await eventually(() => (lines.slice(before).some((l) => l.msg.includes('more new problems not logged one by one')) ? true : undefined), 5000, 'the summary line');
    assert.ok(lines.length - before <= PROBLEM_LINES_PER_PUBLISH + 5, `${String(lines.length - before)} lines logged`);
  });
});
