// Workload identity for the sidecar mesh: meshpilot with its CA on the secure port, a fake cluster
// answering TokenReview for each service account, one `meshpilot agent` per sidecar pod serving
// SDS, and each Envoy's bootstrap printed by `meshpilot bootstrap --sds`, as a user wires a pod.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { ServeOptions } from '../../src/main.ts';
import { CA_TOKEN_AUDIENCE } from '../../src/security/names.ts';
import { startTestAgent, type AgentUnderTest } from './agent-harness.ts';
import { FakeKubeApi, ISTIO_SECURITY_CRDS, istioCrds } from './fake-kube-api.ts';
import { startMeshpilotOnKube, type KubeMeshpilot } from './fake-kube-api-meshpilot.ts';
import { eventually } from './mesh-dir.ts';
import { PROXY_UID, type Pod } from './netns.ts';

const run = promisify(execFile);
const BIN = fileURLToPath(new URL('../../bin/meshpilot.js', import.meta.url));
const MESHPILOT_NAMESPACE = 'meshpilot-system';

export interface ServiceAccountRef {
  readonly namespace: string;
  readonly name: string;
}

const tokenOf = (account: ServiceAccountRef): string => `${account.namespace}-${account.name}-token`;

/** meshpilot, its CA and the cluster that vouches for the pods' tokens. */
export class MeshCa {
  private constructor(
    readonly api: FakeKubeApi,
    readonly meshpilot: KubeMeshpilot,
    readonly address: string,
    readonly rootFile: string,
  ) {}

  /** meshpilot serving `configDir` (plus the fake cluster) with the secure port on `serve.xdsHost`. */
  static async start(configDir: string, serve: Partial<ServeOptions>, accounts: readonly ServiceAccountRef[]): Promise<MeshCa> {
    const api = await FakeKubeApi.start();
    let meshpilot: KubeMeshpilot | undefined;
    try {
      for (const crd of [...istioCrds(), ...ISTIO_SECURITY_CRDS]) api.installCrd(crd);
      const namespaces = new Set([MESHPILOT_NAMESPACE, ...accounts.map((a) => a.namespace)]);
      api.applyAll([...namespaces].map((name) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } })));
      for (const account of accounts) {
        api.registerToken(tokenOf(account), { username: `system:serviceaccount:${account.namespace}:${account.name}`, audiences: [CA_TOKEN_AUDIENCE] });
      }
      meshpilot = await startMeshpilotOnKube(api, { configDir, serve: { ...serve, secure: { port: 0, namespace: MESHPILOT_NAMESPACE } } });
      const running = meshpilot;
      await eventually(async () => ((await running.admin('/ready')).status === 200 ? true : undefined), 10_000, "meshpilot's /ready");
      const { security } = running;
      assert.ok(security, 'the secure port runs');
      const rootDir = await mkdtemp(join(tmpdir(), 'meshpilot-mesh-root-'));
      const rootFile = join(rootDir, 'root-cert.pem');
      await writeFile(rootFile, security.ca.rootPem);
      return new MeshCa(api, running, `${serve.xdsHost ?? '127.0.0.1'}:${String(security.port)}`, rootFile);
    } catch (error) {
      await meshpilot?.close();
      await api.close();
      throw error;
    }
  }

  /**
   * A sidecar pod's agent, authenticated by its service account's token. Its directory (the SDS
   * socket's) belongs to the proxy's uid, as in a pod where the agent and Envoy both run as 1337.
   */
  async agentFor(pod: Pod, account: ServiceAccountRef): Promise<AgentUnderTest> {
    const agent = await startTestAgent({ address: this.address, rootFile: this.rootFile }, {
      namespace: account.namespace,
      serviceAccount: account.name,
      podName: `${pod.name}-0`,
      podIp: pod.ip,
      outputDir: undefined,
      status: undefined,
    }, tokenOf(account));
    try {
      await run('chown', ['-R', `${String(PROXY_UID)}:${String(PROXY_UID)}`, agent.dir]);
    } catch (error) {
      await agent.close();
      throw error;
    }
    return agent;
  }

  async close(): Promise<void> {
    await this.meshpilot.close();
    await this.api.close();
    await rm(join(this.rootFile, '..'), { recursive: true, force: true });
  }
}

/** What `meshpilot bootstrap --sds --output json` prints for a sidecar (the CLI, run as a user runs it). */
export async function sdsBootstrapFromCli(options: { nodeId: string; xdsAddress: string; sdsSocket: string; delta: boolean }): Promise<Record<string, unknown>> {
  const args = [BIN, 'bootstrap', '--node-id', options.nodeId, '--xds-address', options.xdsAddress, '--sds', '--sds-socket', options.sdsSocket, '--output', 'json', ...(options.delta ? ['--delta'] : [])];
  const { stdout } = await run(process.execPath, args);
  return JSON.parse(stdout) as Record<string, unknown>;
}
