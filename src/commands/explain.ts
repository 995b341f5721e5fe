// `meshpilot explain PROXY URL [-H k:v]`: why does this request go there?
import type { Command } from 'commander';
import { Option } from 'commander';
import { MeshpilotError } from '../errors.ts';
import type { AdminFlags, RuleRefView } from './admin-client.ts';
import { callAdmin, print, printJson, ruleText, runCommand, withAdminOptions } from './admin-client.ts';

interface ExplainAnswer {
  outcome: string;
  summary: string;
  request: { authority: string; path: string; method: string; headers: Record<string, string> };
  listener: { name: string; kind: string } | null;
  routeConfig: { name: string; sent: boolean } | null;
  virtualHost: { name: string; domain: string; match: string; service: RuleRefView | null } | null;
  route: { name: string; index: number; rule: RuleRefView | null } | null;
  skipped: { name: string; index: number; reason: string; rule: RuleRefView | null }[];
  clusters: { name: string; percent: number; rules: RuleRefView[]; endpoints: { address: string; port: number; healthStatus: string; locality: string }[] }[];
  policy: { timeout: string | null; retries: unknown; fault: unknown; mirrors: unknown[] } | null;
}

/** `http://reviews:9080/path?q` or `reviews:9080/path` -> authority and path; `https://` also says so (`:scheme`). */
export function splitTarget(target: string): { authority: string; path: string; https?: true } {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(target) ? target : `http://${target}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new MeshpilotError('MP_BAD_REQUEST', `"${target}" is not a URL: write e.g. http://reviews:9080/api or reviews:9080`);
  }
  // URL drops a scheme's default port, but the authority the proxy matches keeps what was written.
  const written = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]+)/i.exec(withScheme)?.[1] ?? url.host;
  return { authority: written, path: `${url.pathname}${url.search}`, ...(url.protocol === 'https:' ? { https: true as const } : {}) };
}

const withRule = (rule: RuleRefView | null | undefined): string => (rule ? `   [${ruleText(rule)}]` : '');

function render(a: ExplainAnswer): string {
  const headers = Object.entries(a.request.headers).map(([k, v]) => `${k}: ${v}`).join(', ');
  const lines = [`request    ${a.request.method} ${a.request.authority}${a.request.path}${headers ? `  (${headers})` : ''}`];
  if (a.listener) lines.push(`listener   ${a.listener.name} (${a.listener.kind})`);
  if (a.routeConfig) lines.push(`routes     ${a.routeConfig.name}${a.routeConfig.sent ? '' : ' (not sent to the proxy)'}`);
  if (a.virtualHost) lines.push(`vhost      ${a.virtualHost.name}, domain "${a.virtualHost.domain}" (${a.virtualHost.match})${withRule(a.virtualHost.service)}`);
  for (const s of a.skipped) lines.push(`skipped    #${s.index} ${s.name}: ${s.reason}${withRule(s.rule)}`);
  if (a.route) lines.push(`route      #${a.route.index} ${a.route.name}${withRule(a.route.rule)}`);
  for (const c of a.clusters) {
    lines.push(`cluster    ${String(c.percent).padStart(3)}%  ${c.name}${c.rules.length > 0 ? `   [${c.rules.map(ruleText).join(', ')}]` : ''}`);
    for (const e of c.endpoints) lines.push(`             ${e.address}:${e.port}  ${e.healthStatus}  ${e.locality}`);
    if (c.endpoints.length === 0) lines.push('             (no endpoints: requests get 503)');
  }
  if (a.policy) {
    const part = (label: string, value: unknown): string => `${label} ${value === null || value === undefined ? 'none' : JSON.stringify(value)}`;
    lines.push(`policy     timeout ${a.policy.timeout ?? 'none'}, ${part('retries', a.policy.retries)}, ${part('fault', a.policy.fault)}${a.policy.mirrors.length > 0 ? `, mirrors ${JSON.stringify(a.policy.mirrors)}` : ''}`);
  }
  lines.push('', `=> ${a.summary}`);
  return lines.join('\n');
}

export function registerExplainCommand(program: Command): void {
  withAdminOptions(
    program
      .command('explain')
      .argument('<proxy>', 'node id of the calling proxy (see proxy-status)')
      .argument('<url>', 'the request, e.g. http://reviews:9080/api (for gRPC: reviews:9080/pkg.Service/Method)')
      .option('-H, --header <name:value>', 'a request header (repeatable)', (value: string, previous: string[]) => [...previous, value], [])
      .addOption(new Option('-X, --method <method>', 'request method').default('GET'))
      .description('which listener, route, cluster and endpoints a request from a proxy takes, and which rule made each step'),
  ).action((proxy: string, target: string, flags: AdminFlags & { header: string[]; method: string }) =>
    runCommand(async () => {
      const { authority, path, https } = splitTarget(target);
      const query = new URLSearchParams({ proxyID: proxy, authority, path, method: flags.method });
      // A gateway picks the HTTPS server's port (443 unless written) and its filter chain by SNI.
      if (https) query.append('header', ':scheme:https');
      for (const header of flags.header) query.append('header', header);
      const answer = await callAdmin<ExplainAnswer>(flags, `/debug/explain?${query.toString()}`);
      if (flags.output === 'json') printJson(answer);
      else print(render(answer));
      return 0;
    }),
  );
}
