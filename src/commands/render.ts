// `meshpilot render`: the Envoy config (config_dump JSON) a proxy would receive from a config
// directory, computed offline, with no server and no cluster.
import { stat } from 'node:fs/promises';
import type { Command } from 'commander';
import { Option } from 'commander';
import { MeshpilotError } from '../errors.ts';
import type { MeshConfig } from '../model/mesh-config.ts';
import { parseProxy } from '../model/proxy.ts';
import { buildPushContext } from '../model/push-context.ts';
import { loadDirectory } from '../sources/config-dir.ts';
import { loadMeshConfigFile } from '../sources/mesh-config-file.ts';
import { buildConfigDump, type DumpedType } from '../xds/config-dump.ts';
import type { JsonObject } from '../xds/proto-json.ts';
import { renderForProxy } from '../xds/render.ts';
import { versionOfSet } from '../xds/resource.ts';
import type { ResourceTypeUrl, ShortType } from '../xds/type-urls.ts';
import { PUSH_ORDER, SECRET_TYPE, SHORT_TYPE, TYPE_BY_SHORT } from '../xds/type-urls.ts';

export interface RenderOptions {
  readonly configDir: string;
  readonly nodeId: string;
  readonly type?: ShortType;
  readonly meshConfig?: string;
  /** `grpc` renders what a proxyless gRPC client gets; its listeners are `targets`. */
  readonly generator?: 'envoy' | 'grpc';
  readonly targets?: readonly string[];
}

export interface RenderResult {
  readonly configDump: JsonObject;
  /** One line per object the directory could not use (it is left out, as the server would). */
  readonly problems: readonly string[];
}

export async function requireDirectory(dir: string, flag: string): Promise<void> {
  const info = await stat(dir).catch(() => undefined);
  if (!info?.isDirectory()) {
    throw new MeshpilotError('MP_CONFIG', `${flag} ${dir} ${info ? 'is not a directory' : 'does not exist'}: point it at a directory of Kubernetes/Istio YAML files`);
  }
}

export async function renderConfigDump(options: RenderOptions): Promise<RenderResult> {
  await requireDirectory(options.configDir, '--config-dir');
  const meshConfig: MeshConfig | undefined = options.meshConfig ? await loadMeshConfigFile(options.meshConfig) : undefined;
  const converted = await loadDirectory(options.configDir);
  const push = buildPushContext(converted, meshConfig);
  const generator = options.generator ?? 'envoy';
  const proxy = parseProxy(options.nodeId, generator === 'grpc' ? { GENERATOR: 'grpc' } : {});
  const targets = generator === 'grpc' && (options.targets ?? []).length === 0
    ? push.services.flatMap((s) => s.ports.map((p) => `${s.hostname}:${p.port}`))
    : options.targets;
  const rendered = renderForProxy(push, proxy, generator === 'grpc' ? targets : undefined);
  const wanted: readonly ResourceTypeUrl[] = options.type ? [TYPE_BY_SHORT[options.type]] : PUSH_ORDER;
  const types: Partial<Record<ResourceTypeUrl, DumpedType>> = {};
  for (const typeUrl of wanted) {
    const resources = rendered[typeUrl];
    // Like Envoy's own dump: secrets only for a proxy that takes some over ADS (a gateway with credentialName).
    if (typeUrl === SECRET_TYPE && resources.length === 0 && !options.type) continue;
    types[typeUrl] = { version: versionOfSet(resources), at: push.builtAt, resources };
  }
  const problems = converted.rejected.flatMap((r) =>
    r.issues.filter((i) => i.severity === 'error').map((i) => `${i.code} ${r.source.location}: ${r.object}: ${i.path ? `${i.path}: ` : ''}${i.message} (left out)`),
  );
  return { configDump: buildConfigDump(types), problems };
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function registerRenderCommand(program: Command): void {
  program
    .command('render')
    .description('print the Envoy config (config_dump JSON) a proxy would get from a config directory, offline')
    .requiredOption('--config-dir <dir>', 'directory of Kubernetes and Istio YAML (a `kubectl get ... -A -o yaml` dump works)')
    .requiredOption('--node-id <id>', 'the proxy, as its node id: sidecar~10.1.1.1~pod.ns~ns.svc.cluster.local')
    .addOption(new Option('--type <type>', 'only this resource type').choices(Object.values(SHORT_TYPE)))
    .addOption(new Option('--mesh-config <file>', 'Istio MeshConfig YAML').env('MESHPILOT_MESH_CONFIG'))
    .addOption(new Option('--generator <generator>', 'what the proxy is: an Envoy sidecar or a proxyless gRPC client').choices(['envoy', 'grpc']).default('envoy'))
    .option('--target <host:port>', 'a gRPC target the client dials (repeatable; default: every service port)', collect)
    .action(async (flags: { configDir: string; nodeId: string; type?: ShortType; meshConfig?: string; generator: 'envoy' | 'grpc'; target?: string[] }) => {
      try {
        const { configDump, problems } = await renderConfigDump({ ...flags, ...(flags.target ? { targets: flags.target } : {}) });
        for (const line of problems) process.stderr.write(`${line}\n`);
        process.stdout.write(`${JSON.stringify(configDump, null, 2)}\n`);
      } catch (error) {
        process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
        process.exitCode = 1;
      }
    });
}
