// The Gateway API conformance suite (sigs.k8s.io/gateway-api/conformance, the Go module in
// test/conformance) against a cluster played here: the fake Kubernetes API with the suite's
// own CRDs, meshpilot watching it, Deployments run as the suite's echo-basic in network
// namespaces, each meshpilot Gateway a real Envoy. Returns the suite's report per profile.
import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { MESH_CONTROLLER_NAME } from '../../src/model/route-status.ts';
import { startFakeCa } from './fake-istio-ca.ts';
import { FakeKubeApi, type KubeObject } from './fake-kube-api.ts';
import { startMeshpilotOnKube, type KubeMeshpilot } from './fake-kube-api-meshpilot.ts';
import { GatewayDeployer } from './gateway-deployer.ts';
import { ClusterDns } from './cluster-dns.ts';
import { KubeWorkloads, SERVICE_RANGE, type ImageRunner } from './kube-workloads.ts';
import { MeshSidecars, meshNamespace } from './mesh-sidecars.ts';
import { eventually } from './mesh-dir.ts';
import { ExplainCheck, type ExplainTally } from './explain-check.ts';
import { PodNetwork } from './netns.ts';

const run = promisify(execFile);
export const CONFORMANCE_MODULE = join(import.meta.dirname, '..', 'conformance');
/** Istio's echo application (the mesh cases' `echo-advanced` image), a Go module of its own. */
const ISTIO_ECHO_MODULE = join(CONFORMANCE_MODULE, 'istio-echo');
export const GATEWAY_CONTROLLER = 'meshpilot.io/gateway-controller';
export const GATEWAY_CLASS = 'meshpilot';

/** The suite's module and version (test/conformance/go.mod). */
export const SUITE = 'sigs.k8s.io/gateway-api/conformance v1.6.3 (Apache-2.0), experimental-channel CRDs of sigs.k8s.io/gateway-api v1.6.3';
/** The profiles run here. */
export const RUN_PROFILES = ['GATEWAY-HTTP', 'GATEWAY-GRPC', 'GATEWAY-TLS', 'MESH-HTTP', 'MESH-GRPC'] as const;
/** meshpilot's mesh, an XMesh: the suite reads the mesh features it claims from its status. */
export const MESH_NAME = 'meshpilot';
/** Waits bounded for a run inside npm test (the suite's defaults wait up to 60-180 s per failing step); seconds. */
export const BOUNDED_TIMEOUTS: Readonly<Record<string, number>> = {
  gwcMustBeAccepted: 30,
  namespacesMustBeReady: 90,
  createTimeout: 10,
  deleteTimeout: 10,
  getTimeout: 5,
  requestTimeout: 5,
  gatewayMustHaveAddress: 10,
  gatewayMustHaveCondition: 10,
  gatewayStatusMustHaveListeners: 10,
  gatewayListenersMustHaveConditions: 10,
  httpRouteMustHaveCondition: 10,
  httpRouteMustNotHaveParents: 10,
  routeMustHaveParents: 10,
  latestObservedGenerationSet: 10,
  maxTimeToConsistency: 10,
  defaultTestTimeout: 15,
};

/** One profile's results as the suite reports them. */
export interface ProfileResult {
  readonly name: string;
  readonly core: Outcome;
  readonly extended?: Outcome & { readonly supportedFeatures: readonly string[]; readonly unsupportedFeatures: readonly string[] };
}

export interface Outcome {
  readonly result: string;
  readonly passed: number;
  readonly failed: number;
  readonly skipped: number;
  readonly failedTests: readonly string[];
  readonly skippedTests: readonly string[];
}

export interface ConformanceResult {
  readonly gatewayAPIVersion: string;
  readonly profiles: readonly ProfileResult[];
  /** Each failed case's cause in one line. */
  readonly causes: Readonly<Record<string, string>>;
  /** Cases that ran and passed. */
  readonly passed: readonly string[];
  /** Each failed case's whole output. */
  readonly failedOutput: Readonly<Record<string, string>>;
  /** The suite's own verdict (false also when its setup failed). */
  readonly suitePassed: boolean;
  readonly setupError?: string;
  readonly output: string;
  /** Every request of the run against meshpilot's explain of it (test/support/explain-check.ts). */
  readonly explain: ExplainTally;
}

export interface ConformanceOptions {
  readonly profiles: readonly string[];
  /** Features claimed; by default the suite reads them from the GatewayClass status meshpilot writes. */
  readonly supportedFeatures?: readonly string[];
  /** The suite's TimeoutConfig, in seconds per field (others keep the suite's defaults). */
  readonly timeoutsSeconds?: Readonly<Record<string, number>>;
  readonly skipTests?: readonly string[];
  readonly runTest?: string;
  /** Where the suite's stdout/stderr goes as it runs (besides the result). */
  readonly onOutput?: (line: string) => void;
}

/** Builds the suite and echo-basic from the module (Go's cache makes a rebuild a link). */
export async function buildConformance(dir: string): Promise<{ suite: string; echo: string; istioEcho: { server: string; client: string }; gatewayApiDir: string; test2json: string }> {
  const suite = join(dir, 'conformance.test');
  const echo = join(dir, 'echo-basic');
  const istioEcho = { server: join(dir, 'istio-echo-server'), client: join(dir, 'istio-echo-client') };
  await run('go', ['test', '-c', '-o', suite, '.'], { cwd: CONFORMANCE_MODULE, maxBuffer: 1 << 24 });
  await run('go', ['build', '-o', echo, 'sigs.k8s.io/gateway-api/conformance/echo-basic'], { cwd: CONFORMANCE_MODULE, maxBuffer: 1 << 24 });
  for (const [program, output] of Object.entries(istioEcho)) {
    await run('go', ['build', '-o', output, `istio.io/istio/pkg/test/echo/cmd/${program}`], { cwd: ISTIO_ECHO_MODULE, maxBuffer: 1 << 24 });
  }
  const { stdout } = await run('go', ['list', '-m', '-f', '{{.Dir}}', 'sigs.k8s.io/gateway-api'], { cwd: CONFORMANCE_MODULE });
  const test2json = (await run('go', ['tool', '-n', 'test2json'], { cwd: CONFORMANCE_MODULE })).stdout.trim();
  return { suite, echo, istioEcho, gatewayApiDir: stdout.trim(), test2json };
}

/** The experimental channel's CRDs of the module's gateway-api version (what the suite checks it runs against). */
async function gatewayApiCrds(gatewayApiDir: string): Promise<KubeObject[]> {
  const dir = join(gatewayApiDir, 'config', 'crd', 'experimental');
  const crds: KubeObject[] = [];
  for (const file of (await readdir(dir)).filter((f) => f.endsWith('.yaml')).sort()) {
    for (const doc of parseAllDocuments(await readFile(join(dir, file), 'utf8'))) {
      const object = doc.toJS() as KubeObject | null;
      if (object?.['kind'] === 'CustomResourceDefinition') crds.push(object);
    }
  }
  return crds;
}

/** A self-signed certificate and key, written as `<name>.crt` and `<name>.key` in `dir`. */
async function selfSigned(dir: string, name: string, subjectAltName: string): Promise<{ certFile: string; keyFile: string }> {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', `/CN=${name}`, '-addext', `subjectAltName=${subjectAltName}`]);
  return { certFile, keyFile };
}

/** A self-signed certificate for the fake API on 127.0.0.1 (client-go sends its token only over TLS). */
export async function servingCertificate(dir: string): Promise<{ cert: string; key: string }> {
  const { certFile, keyFile } = await selfSigned(dir, 'fake-kube-api', 'IP:127.0.0.1');
  return { cert: await readFile(certFile, 'utf8'), key: await readFile(keyFile, 'utf8') };
}

const IMPLEMENTATION = {
  organization: 'meshpilot',
  project: 'meshpilot',
  url: 'https://github.com/meshpilot/meshpilot',
  version: '0.1.0',
  contact: ['meshpilot maintainers'],
};

/** Output of the suite's run by top-level case (test2json events), and which cases failed. */
function outputByCase(events: readonly { Action?: string; Test?: string; Output?: string }[]): { output: Map<string, string>; failed: Set<string>; passed: Set<string> } {
  const chunks = new Map<string, string[]>();
  const failed = new Set<string>();
  const passed = new Set<string>();
  for (const event of events) {
    const name = event.Test?.replace(/^TestConformance\//, '');
    if (!name || name === 'TestConformance') continue;
    const top = name.split('/')[0] ?? name;
    if (event.Action === 'output' && event.Output !== undefined) chunks.set(top, [...(chunks.get(top) ?? []), event.Output]);
    if (event.Action === 'fail' && !name.includes('/')) failed.add(top);
    if (event.Action === 'pass' && !name.includes('/')) passed.add(top);
  }
  return { output: new Map([...chunks].map(([name, parts]) => [name, parts.join('')])), failed, passed };
}

/** A failed case's cause in one line: what it last saw go wrong before its first failed step, then testify's `Error:`. */
export function causeOf(output: string): string {
  const lines = output.split('\n');
  const firstFail = lines.findIndex((l) => /^\s*--- FAIL/.test(l));
  const before = (firstFail >= 0 ? lines.slice(0, firstFail) : lines).filter((l) => !/Error Trace:|^\s+Test:|Applying|Creating|Deleting|Request passed/.test(l));
  const strip = (l: string): string => l.replace(/^\s*\S+\.go:\d+:\s*(\S+Z:\s*)?/, '').replace(/^\s+(Error|Messages):\s+/, '').trim();
  const seen = before.filter((l) => /expected|mismatch|not ready yet|failed|unexpected|not found|timeout/i.test(l) && !/^\s+(Error|Messages):/.test(l)).map(strip);
  const short = seen.filter((l) => l.length <= 220);
  const error = lines.findIndex((l) => /^\s+Error:\s/.test(l));
  const testify = error >= 0 ? [strip(lines[error] ?? '').replace(/:$/, ''), strip(lines.slice(error + 1).find((l) => /^\s+Messages:/.test(l)) ?? '')].filter(Boolean).join(': ') : '';
  const what = short.filter((l) => /not ready yet|expected|mismatch/i.test(l)).at(-1) ?? short.at(-1) ?? seen.at(-1)?.slice(0, 220);
  // Addresses, ports and timings differ run to run; the cause does not.
  const stable = (l: string): string => l.replace(/\d+\.\d+\.\d+\.\d+(:\d+)?/g, 'ADDRESS').replace(/\s*\(after [^)]*\)/g, '').replace(/0x[0-9a-f]+/g, '0x');
  return stable([what, testify].filter(Boolean).join(' -- ')).slice(0, 400) || 'failed';
}

function outcome(status: Record<string, unknown> | undefined): Outcome {
  const stats = (status?.['statistics'] ?? {}) as Record<string, number | undefined>;
  return {
    result: typeof status?.['result'] === 'string' ? status['result'] : '',
    passed: stats['Passed'] ?? 0,
    failed: stats['Failed'] ?? 0,
    skipped: stats['Skipped'] ?? 0,
    failedTests: (status?.['failedTests'] as string[] | undefined) ?? [],
    skippedTests: (status?.['skippedTests'] as string[] | undefined) ?? [],
  };
}

/** Runs the suite against a fresh cluster and meshpilot; everything started is stopped and removed. */
export async function runConformance(options: ConformanceOptions): Promise<ConformanceResult> {
  const dir = await mkdtemp(join(tmpdir(), 'meshpilot-conformance-'));
  const undo: (() => Promise<unknown>)[] = [() => rm(dir, { recursive: true, force: true })];
  try {
    const built = await buildConformance(dir);
    const api = await FakeKubeApi.start({ tls: await servingCertificate(dir) });
    undo.push(() => api.close());
    for (const crd of await gatewayApiCrds(built.gatewayApiDir)) api.apply(crd);
    api.apply({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GatewayClass', metadata: { name: GATEWAY_CLASS }, spec: { controllerName: GATEWAY_CONTROLLER } });
    api.apply({ apiVersion: 'gateway.networking.x-k8s.io/v1alpha1', kind: 'XMesh', metadata: { name: MESH_NAME }, spec: { controllerName: MESH_CONTROLLER_NAME } });
    const network = await PodNetwork.create(2);
    undo.push(() => network.close());
    // Service VIPs (and so any address meshpilot could report for a Gateway) stay on the bridge.
    await network.routeToBridge(SERVICE_RANGE);
    // Gateways take their certificates as deployed ones do: over ADS on the secure port, to their workload identity.
    const meshCa = await startFakeCa();
    undo.push(() => meshCa.close());
    const caDir = join(dir, 'cacerts');
    await mkdir(caDir);
    for (const [file, pem] of Object.entries({ 'ca-cert.pem': meshCa.root.certPem, 'ca-key.pem': meshCa.root.keyPem, 'root-cert.pem': meshCa.root.certPem, 'cert-chain.pem': meshCa.root.certPem })) await writeFile(join(caDir, file), pem);
    const meshpilot: KubeMeshpilot = await startMeshpilotOnKube(api, { serve: { xdsHost: network.hostIp, secure: { port: 0, caDir } }, tuning: { pageSize: 500 } });
    undo.push(() => meshpilot.close());
    const dns = await ClusterDns.start(api, network.hostIp);
    undo.push(() => dns.close());
    // The certificate Istio's echo image carries (`--crt=/cert.crt --key=/cert.key`).
    const echoCert = await selfSigned(dir, 'echo', 'DNS:echo');
    const istioEcho: ImageRunner = { binary: built.istioEcho.server, files: { '/cert.crt': echoCert.certFile, '/cert.key': echoCert.keyFile }, commands: { client: built.istioEcho.client } };
    const sidecars = new MeshSidecars(network, { xdsHost: network.hostIp, xdsPort: meshpilot.xdsPort });
    const workloads = await KubeWorkloads.start(
      api,
      network,
      (image) =>
        image.includes('/echo-basic:') ? { binary: built.echo } : image.includes('/echo-advanced:') ? istioEcho : { none: `${image} is not run here (the cases that use it are not claimed)` },
      { dns, inject: (pod, object) => (meshNamespace(api, pod.namespace) ? sidecars.inject(pod, object) : Promise.resolve(undefined)) },
    );
    undo.push(() => workloads.close());
    const gateways = new GatewayDeployer(api, network, { controllerName: GATEWAY_CONTROLLER, xdsHost: network.hostIp, xdsPort: meshpilot.xdsPort, secure: { port: meshpilot.security?.port ?? 0, ca: meshCa } });
    undo.push(() => gateways.close());
    const explain = new ExplainCheck((path) => meshpilot.admin(path), api, workloads, gateways);
    const reportUrl = await explain.serve();
    undo.push(() => explain.close());
    // Each exec'd echo client's requests are checked before the suite reads their output.
    api.serveExec(async (request) => {
      const startMs = Date.now();
      const result = await workloads.exec(request.namespace, request.pod, request.command);
      await explain.mesh(request, startMs, result);
      return result;
    });

    // The suite reads the GatewayClass's and the XMesh's supportedFeatures as it starts: wait for meshpilot's status.
    for (const [kind, name] of [['GatewayClass', GATEWAY_CLASS], ['XMesh', MESH_NAME]] as const) {
      await eventually(() => {
        const status = api.get(kind, undefined, name)?.['status'] as { conditions?: { type: string; status: string }[]; supportedFeatures?: unknown[] } | undefined;
        return status?.conditions?.some((c) => c.type === 'Accepted' && c.status === 'True') && (status.supportedFeatures?.length ?? 0) > 0 ? true : undefined;
      }, 30_000, `${kind} ${name} Accepted with supportedFeatures`);
    }
    const kubeconfig = join(dir, 'kubeconfig');
    await api.writeKubeconfig(kubeconfig);
    const reportPath = join(dir, 'report.yaml');
    const timeoutConfig = Object.fromEntries(Object.entries(options.timeoutsSeconds ?? {}).map(([key, seconds]) => [key, Math.round(seconds * 1e9)]));
    const optionsFile = join(dir, 'options.yaml');
    await writeFile(
      optionsFile,
      stringify({
        gatewayClassName: GATEWAY_CLASS,
        meshName: MESH_NAME,
        conformanceProfiles: options.profiles,
        ...(options.supportedFeatures ? { supportedFeatures: options.supportedFeatures } : {}),
        reportOutputPath: reportPath,
        cleanupBaseResources: false,
        cleanupTestResources: true,
        implementation: IMPLEMENTATION,
        mode: 'default',
        ...(options.skipTests ? { skipTests: options.skipTests } : {}),
        ...(options.runTest ? { runTest: options.runTest } : {}),
        timeoutConfig,
      }),
    );
    const events: { Action?: string; Test?: string; Output?: string }[] = [];
    const text: string[] = [];
    const exitCode = await new Promise<number>((resolve, reject) => {
      // test2json itself (not `go tool`, which would stand between): killed with this process, and the suite, its child, on its next write.
      const child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', built.test2json, '-t', built.suite, '-test.v=test2json', '-test.timeout=30m'], {
        cwd: dir,
        env: { ...process.env, KUBECONFIG: kubeconfig, MESHPILOT_CONFORMANCE_OPTIONS: optionsFile, MESHPILOT_REQUEST_REPORT: reportUrl },
        stdio: ['ignore', 'pipe', 'pipe'],
        // Its own process group: test2json and the suite under it end together with this process.
        detached: true,
      });
      const endGroup = (): void => {
        try {
          if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      };
      process.once('exit', endGroup);
      let partial = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        partial += chunk;
        const lines = partial.split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) {
          try {
            const event = JSON.parse(line) as { Action?: string; Test?: string; Output?: string };
            events.push(event);
            if (event.Output !== undefined) {
              text.push(event.Output);
              options.onOutput?.(event.Output);
            }
          } catch {
            text.push(`${line}\n`);
          }
        }
      });
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
        text.push(chunk);
      });
      child.once('error', reject);
      child.once('exit', (code) => {
        process.off('exit', endGroup);
        resolve(code ?? 1);
      });
    });
    const output = text.join('');
    const report = (await readFile(reportPath, 'utf8').then(parse).catch(() => undefined)) as Record<string, unknown> | undefined;
    const profiles = ((report?.['profiles'] ?? []) as Record<string, unknown>[]).map((profile): ProfileResult => {
      const extended = profile['extended'] as Record<string, unknown> | undefined;
      return {
        name: String(profile['name']),
        core: outcome(profile['core'] as Record<string, unknown>),
        ...(extended ? { extended: { ...outcome(extended), supportedFeatures: (extended['supportedFeatures'] as string[] | undefined) ?? [], unsupportedFeatures: (extended['unsupportedFeatures'] as string[] | undefined) ?? [] } } : {}),
      };
    });
    const setupFailed = report === undefined || profiles.length === 0;
    const byCase = outputByCase(events);
    const failedOutput = Object.fromEntries([...byCase.failed].map((name) => [name, byCase.output.get(name) ?? '']));
    const causes = Object.fromEntries(Object.entries(failedOutput).map(([name, text]) => [name, causeOf(text)]));
    return {
      gatewayAPIVersion: typeof report?.['gatewayAPIVersion'] === 'string' ? report['gatewayAPIVersion'] : '',
      profiles,
      causes,
      passed: [...byCase.passed].sort(),
      failedOutput,
      suitePassed: exitCode === 0,
      ...(setupFailed ? { setupError: /Error:\s+(.*)/.exec(output)?.[1] ?? output.split('\n').slice(-20).join('\n') } : {}),
      output,
      explain: explain.tally(),
    };
  } finally {
    for (const step of undo.reverse()) await step().catch(() => undefined);
  }
}
