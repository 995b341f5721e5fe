// Every request of a conformance run checked against meshpilot's /debug/explain for the proxy it
// went through, right after it came back: gateway requests the suite's Go round tripper posts
// here, mesh requests the exec'd Istio echo `client` made from a pod through its sidecar.
// Requests made while the proxy had not yet applied what meshpilot last sent it are "converging".
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Explanation } from '../../src/xds/explain/explain.ts';
import { parseClusterName } from '../../src/xds/generate/names.ts';
import type { FakeKubeApi } from './fake-kube-api.ts';
import type { ExecRequest } from './fake-kube-exec.ts';
import type { GatewayDeployer } from './gateway-deployer.ts';
import type { ExecResult, KubeWorkloads } from './kube-workloads.ts';
import { judge, type ObservedResponse } from './explain-verdict.ts';

/** A request as explain takes it, with the proxy it went through and when it was sent. */
export interface CheckedRequest {
  readonly via: 'gateway' | 'mesh';
  readonly proxy: string;
  readonly authority: string;
  readonly path: string;
  readonly method: string;
  readonly scheme: 'http' | 'https';
  readonly headers: Readonly<Record<string, string>>;
  readonly startMs: number;
}

export interface Disagreement {
  readonly request: CheckedRequest;
  readonly response: ObservedResponse;
  readonly why: string;
  readonly explain: Explanation;
}

export interface ExplainTally {
  /** Requests seen (every one lands in exactly one of the counts below). */
  readonly requests: number;
  readonly agreed: number;
  readonly disagreed: number;
  /** Agreed requests by the way they went and explain's outcome, e.g. `gateway https routed`. */
  readonly agreedBy: Readonly<Record<string, number>>;
  /** Sent while the proxy had not applied meshpilot's last push (the suite retries those). */
  readonly converging: number;
  /** The converging ones by what was not yet in place. */
  readonly convergingBy: Readonly<Record<string, number>>;
  /** Not checked, by reason. */
  readonly notChecked: Readonly<Record<string, number>>;
  readonly disagreements: readonly Disagreement[];
}

/** The round tripper's report of one gateway request (test/conformance/conformance_test.go). */
interface GatewayReport {
  readonly startMs: number;
  readonly url: string;
  readonly host: string;
  readonly protocol: string;
  readonly method: string;
  readonly headers: Readonly<Record<string, readonly string[]>> | null;
  readonly serverName: string;
  readonly unfollowRedirect: boolean;
  readonly error?: string;
  readonly status?: number;
  readonly location?: string;
  readonly pod?: string;
  readonly namespace?: string;
}

type Fields = Record<string, unknown>;
const fields = (value: unknown): Fields => (typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Fields) : {});

/** A URL's authority and raw path (as sent: no normalisation of `..` or escapes). */
function splitUrl(url: string): { scheme: string; host: string; port: number | undefined; path: string } | undefined {
  const match = /^([a-z][a-z0-9+.-]*):\/\/([^/?#]*)([^#]*)/i.exec(url);
  if (!match?.[1] || match[2] === undefined) return undefined;
  const hostPort = /^(.*?)(?::(\d+))?$/.exec(match[2]);
  const path = match[3] ?? '';
  return { scheme: match[1].toLowerCase(), host: (hostPort?.[1] ?? match[2]).toLowerCase(), port: hostPort?.[2] ? Number(hostPort[2]) : undefined, path: path.startsWith('/') ? path : `/${path}` };
}

/** The Istio echo client's output per request: `[i] Field=value` and `[i body] Field=value` lines. */
export function echoClientResponses(stdout: string): Map<number, Map<string, string[]>> {
  const out = new Map<number, Map<string, string[]>>();
  for (const line of stdout.split('\n')) {
    const match = /^\[(\d+)(?: body)?\] ([A-Za-z-]+)=(.*)$/.exec(line);
    if (!match?.[1] || !match[2]) continue;
    const fieldsOf = out.get(Number(match[1])) ?? new Map<string, string[]>();
    out.set(Number(match[1]), fieldsOf);
    fieldsOf.set(match[2], [...(fieldsOf.get(match[2]) ?? []), match[3] ?? '']);
  }
  return out;
}

/** The tallies in a few lines, each disagreement with its request, response and explain's summary. */
export function explainTally(tally: ExplainTally): string {
  const lines = [
    `explain: ${String(tally.requests)} requests, ${String(tally.agreed + tally.disagreed)} checked: ${String(tally.agreed)} agreed, ${String(tally.disagreed)} disagreed; ${String(tally.converging)} converging (excluded)`,
    ...Object.entries(tally.convergingBy).map(([why, count]) => `  converging ${String(count)}: ${why}`),
    `  agreed: ${Object.entries(tally.agreedBy).map(([how, count]) => `${how} ${String(count)}`).join(', ')}`,
    ...Object.entries(tally.notChecked).map(([reason, count]) => `  not checked ${String(count)}: ${reason}`),
    ...tally.disagreements.map((d) => `  DISAGREES ${d.request.via} ${d.request.method} ${d.request.scheme}://${d.request.authority}${d.request.path} via ${d.request.proxy}: ${d.why}\n    response ${JSON.stringify(d.response)}\n    explain ${d.explain.outcome}: ${d.explain.summary}`),
  ];
  return lines.join('\n');
}

export class ExplainCheck {
  #requests = 0;
  #agreed = 0;
  readonly #agreedBy = new Map<string, number>();
  #converging = 0;
  readonly #convergingBy = new Map<string, number>();
  readonly #notChecked = new Map<string, number>();
  readonly #disagreements: Disagreement[] = [];
  #server: Server | undefined;

  constructor(
    readonly admin: (path: string) => Promise<Response>,
    readonly api: FakeKubeApi,
    readonly workloads: KubeWorkloads,
    readonly gateways: GatewayDeployer,
  ) {}

  /** Where the round tripper posts its reports; each is checked before the post is answered. */
  async serve(): Promise<string> {
    const server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        void this.#gateway(JSON.parse(Buffer.concat(chunks).toString('utf8')) as GatewayReport)
          .catch((error: unknown) => { this.#skip(`the check failed: ${String(error)}`); })
          .finally(() => response.writeHead(204).end());
      });
    });
    this.#server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${String((server.address() as AddressInfo).port)}/`;
  }

  async close(): Promise<void> {
    const server = this.#server;
    if (server) await new Promise((resolve) => server.close(resolve));
  }

  tally(): ExplainTally {
    return {
      requests: this.#requests,
      agreed: this.#agreed,
      disagreed: this.#disagreements.length,
      agreedBy: Object.fromEntries([...this.#agreedBy].sort()),
      converging: this.#converging,
      convergingBy: Object.fromEntries([...this.#convergingBy].sort()),
      notChecked: Object.fromEntries([...this.#notChecked].sort()),
      disagreements: [...this.#disagreements],
    };
  }

  #skip(reason: string, count = 1): void {
    this.#requests += count;
    this.#notChecked.set(reason, (this.#notChecked.get(reason) ?? 0) + count);
  }

  async #gateway(report: GatewayReport): Promise<void> {
    const url = splitUrl(report.url);
    const gateway = [...this.gateways.gateways.values()].find((running) => running.pod.ip === url?.host);
    if (!url || !gateway) { this.#skip('not sent to a gateway pod'); return; }
    const scheme = url.scheme === 'https' ? 'https' : 'http';
    const host = splitUrl(`x://${report.host || url.host}`)?.host ?? url.host;
    // The Host header names the virtual host, the dialed port the listener (gateways ignore the Host's port).
    const authority = `${host}:${String(url.port ?? (scheme === 'https' ? 443 : 80))}`;
    if (scheme === 'https' && report.serverName !== '' && report.serverName.toLowerCase() !== host) { this.#skip('TLS with an SNI other than the Host (explain takes the host as SNI)'); return; }
    const headers = Object.fromEntries(Object.entries(report.headers ?? {}).map(([name, values]) => [name.toLowerCase(), values[0] ?? '']));
    const request: CheckedRequest = { via: 'gateway', proxy: gateway.nodeId, authority, path: url.path, method: report.method || 'GET', scheme, headers, startMs: report.startMs };
    const observed: ObservedResponse = {
      ...(report.error !== undefined ? { error: report.error } : {}),
      ...(report.status !== undefined ? { status: report.status } : {}),
      ...(report.location ? { location: report.location } : {}),
      ...(report.pod ? { pod: report.pod, namespace: report.namespace ?? '' } : {}),
      followedRedirects: !report.unfollowRedirect,
    };
    await this.#check(request, observed);
  }

  /** An exec of Istio's echo `client` in a mesh pod: each of its requests, through that pod's sidecar. */
  async mesh(exec: ExecRequest, startMs: number, result: ExecResult): Promise<void> {
    await this.#mesh(exec, startMs, result).catch((error: unknown) => { this.#skip(`the check failed: ${String(error)}`); });
  }

  async #mesh(exec: ExecRequest, startMs: number, result: ExecResult): Promise<void> {
    const [program, target, ...flags] = exec.command;
    if (program !== 'client') return;
    const pod = this.workloads.pods.get(`${exec.namespace}/${exec.pod}`);
    const url = target !== undefined ? splitUrl(target) : undefined;
    const responses = echoClientResponses(result.stdout);
    const count = Math.max(1, responses.size, Number(flags.find((f) => f.startsWith('--count='))?.slice('--count='.length) ?? 1));
    if (!pod?.sidecar || !url) { this.#skip('an echo client without a sidecar or a URL', count); return; }
    let method = 'GET';
    const headers: Record<string, string> = {};
    for (let i = 0; i < flags.length; i++) {
      const flag = flags[i] ?? '';
      if (flag.startsWith('--method=')) method = flag.slice('--method='.length);
      else if (flag === '-H') {
        const [name = '', ...value] = (flags[++i] ?? '').split(':');
        headers[name.toLowerCase()] = value.join(':');
      } else if (!flag.startsWith('--count=')) { this.#skip(`an echo client flag explain does not model (${flag})`, count); return; }
    }
    let path = url.path;
    let scheme: 'http' | 'https' = 'http';
    if (url.scheme === 'grpc') {
      // The echo client calls the echo server's Echo method; -H headers go as metadata.
      [path, method] = ['/proto.EchoTestService/Echo', 'POST'];
      headers['content-type'] = 'application/grpc';
    } else if (url.scheme === 'https') scheme = 'https';
    else if (url.scheme !== 'http') { this.#skip(`${url.scheme} from a mesh pod (explain models HTTP and gRPC)`, count); return; }
    const port = url.port ?? (url.scheme === 'https' ? 443 : 80);
    const request: CheckedRequest = {
      via: 'mesh',
      proxy: pod.sidecar.nodeId,
      authority: url.port === undefined ? url.host : `${url.host}:${String(port)}`,
      path,
      method,
      scheme,
      headers,
      startMs,
    };
    for (let i = 0; i < count; i++) {
      const fieldsOf = responses.get(i);
      const status = Number(fieldsOf?.get('StatusCode')?.[0]);
      const location = fieldsOf?.get('ResponseHeader')?.find((h) => /^location:/i.test(h))?.replace(/^location:/i, '');
      const observed: ObservedResponse = Number.isFinite(status) && status > 0
        ? { status, ...(fieldsOf?.get('Hostname')?.[0] ? { pod: fieldsOf.get('Hostname')?.[0] ?? '' } : {}), ...(location !== undefined ? { location } : {}), followedRedirects: false }
        : { error: result.stderr.trim().slice(0, 200) || `exit ${String(result.exitCode)}` };
      await this.#check(request, observed);
    }
  }

  /**
   * What the proxy holds, per type: whether it ACKed the last response it was sent (no NACK, none
   * in flight), and when it ACKed the newest; undefined when not connected. A change meshpilot has
   * yet to send does not matter here: explain reads what was sent.
   */
  async #syncOf(proxy: string): Promise<{ nonces: string; ackedBy: number; synced: boolean; unacked: string[] } | undefined> {
    const body = fields(await (await this.admin('/debug/syncz')).json());
    const entries = (Array.isArray(body['proxies']) ? body['proxies'] : []).map(fields).filter((p) => p['proxy'] === proxy);
    const entry = entries.sort((a, b) => String(b['connectedAt']).localeCompare(String(a['connectedAt'])))[0];
    if (!entry) return undefined;
    let ackedBy = 0;
    const nonces: string[] = [];
    const unacked: string[] = [];
    for (const [type, state] of Object.entries(fields(entry['types']))) {
      const view = fields(state);
      if (view['subscribed'] === null || view['sent'] === null) continue;
      const [sent, acked] = [fields(view['sent']), fields(view['acked'])];
      if (acked['nonce'] !== sent['nonce']) unacked.push(type);
      nonces.push(`${type}:${String(sent['nonce'])}`);
      ackedBy = Math.max(ackedBy, Date.parse(String(acked['at'])) || 0);
    }
    return { nonces: nonces.join(','), ackedBy, synced: unacked.length === 0, unacked };
  }

  async #explain(request: CheckedRequest): Promise<Explanation | string> {
    const query = new URLSearchParams({ proxyID: request.proxy, authority: request.authority, path: request.path, method: request.method, scheme: request.scheme });
    for (const [name, value] of Object.entries(request.headers)) query.append('header', `${name}:${value}`);
    const response = await this.admin(`/debug/explain?${query.toString()}`);
    return response.ok ? ((await response.json()) as Explanation) : `explain answered ${String(response.status)}: ${await response.text()}`;
  }

  /** The pod addresses behind a cluster: explain's endpoints (EDS), else the EndpointSlices of its Service. */
  #backing(cluster: Explanation['clusters'][number]): readonly string[] | undefined {
    if (cluster.endpoints.length > 0 || cluster.type === 'EDS') return cluster.endpoints.map((e) => e.address);
    const key = parseClusterName(cluster.name);
    const service = key && /^([^.]+)\.([^.]+)\.svc\.cluster\.local$/.exec(key.host);
    if (!service?.[1] || !service[2]) return undefined;
    const slices = this.api.list('EndpointSlice', service[2]).filter((s) => fields(fields(s['metadata'])['labels'])['kubernetes.io/service-name'] === service[1]);
    return slices.flatMap((s) => (Array.isArray(s['endpoints']) ? s['endpoints'] : []).flatMap((e) => fields(e)['addresses'] as string[]));
  }

  #podAddress(observed: ObservedResponse): string | undefined {
    const pods = [...this.workloads.pods.values()].filter((p) => p.name === observed.pod && (observed.namespace === undefined || observed.namespace === p.namespace));
    return pods.length === 1 ? pods[0]?.ip : undefined;
  }

  async #check(request: CheckedRequest, observed: ObservedResponse): Promise<void> {
    const before = await this.#syncOf(request.proxy);
    const explanation = await this.#explain(request);
    const after = await this.#syncOf(request.proxy);
    if (typeof explanation === 'string') { this.#skip(before ? 'explain failed' : 'the proxy is not connected'); return; }
    // What explain read is what the proxy held when the request went out: all ACKed before it, nothing sent since.
    const converging = !before?.synced || !after?.synced
      ? `a response to the proxy not ACKed (${[...new Set([...(before?.unacked ?? []), ...(after?.unacked ?? [])])].join(', ')})`
      : before.nonces !== after.nonces ? 'a response sent while explaining' : before.ackedBy > request.startMs ? 'ACKed after the request went out' : undefined;
    if (converging !== undefined) {
      this.#requests++;
      this.#converging++;
      this.#convergingBy.set(converging, (this.#convergingBy.get(converging) ?? 0) + 1);
      return;
    }
    const verdict = judge(explanation, observed, (c) => this.#backing(c), this.#podAddress(observed));
    if (verdict.kind === 'not checked') { this.#skip(verdict.reason); return; }
    this.#requests++;
    if (verdict.kind === 'agreed') {
      this.#agreed++;
      const key = `${request.via} ${request.scheme} ${explanation.outcome}`;
      this.#agreedBy.set(key, (this.#agreedBy.get(key) ?? 0) + 1);
    }
    else this.#disagreements.push({ request, response: observed, why: verdict.why, explain: explanation });
  }
}
