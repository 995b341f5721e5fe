// `meshpilot explain PROXY URL [-H k:v]`: why does this request go there?
import type { Command } from 'commander';
import { Option } from 'commander';
import { MeshpilotError } from '../errors.ts';
import type { AdminFlags, RuleRefView } from './admin-client.ts';
import { callAdmin, print, printJson, ruleText, runCommand, withAdminOptions } from './admin-client.ts';

interface ExplainAnswer {
  outcome: string;
  summary: string;
  request: { authority: string; path: string; method: string; scheme?: string; headers: Record<string, string> };
  listener: { name: string; kind: string; filterChain?: { index: number; serverNames: string[]; terminatesTls: boolean } } | null;
  gateway: { rule: RuleRefView; server: number; port: number; protocol: string; hosts: string[]; tlsMode: string | null; credentialName: string | null; httpsRedirect: boolean } | null;
  routeConfig: { name: string; sent: boolean } | null;
  virtualHost: { name: string; domain: string; match: string; service: RuleRefView | null } | null;
  route: { name: string; index: number; rule: RuleRefView | null } | null;
  skipped: { name: string; index: number; reason: string; rule: RuleRefView | null }[];
  clusters: { name: string; percent: number; rules: RuleRefView[]; endpoints: { address: string; port: number; healthStatus: string; locality: string }[] }[];
  policy: { timeout: string | null; retries: unknown; fault: unknown; mirrors: unknown[] } | null;
  answer?: { kind: string; status: number; location: Record<string, string | number> | null };
}

/** `http://reviews:9080/path?q` or `reviews:9080/path` -> authority and path. */
export function splitTarget(target: string): { authority: string; path: string; scheme: string } {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(target) ? target : `http://${target}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new MeshpilotError('MP_BAD_REQUEST', `"${target}" is not a URL: write e.g. http://reviews:9080/api or reviews:9080`);
  }
  // URL drops a scheme's default port, but the authority the proxy matches keeps what was written.
  const written = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]+)/i.exec(withScheme)?.[1] ?? url.host;
  return { authority: written, path: `${url.pathname}${url.search}`, scheme: url.protocol.replace(/:$/, '') };
}

const withRule = (rule: RuleRefView | null | undefined): string => (rule ? `   [${ruleText(rule)}]` : '');

function render(a: ExplainAnswer): string {
  const headers = Object.entries(a.request.headers).map(([k, v]) => `${k}: ${v}`).join(', ');
  const lines = [`request    ${a.request.method} ${a.request.scheme === 'https' ? 'https://' : ''}${a.request.authority}${a.request.path}${headers ? `  (${headers})` : ''}`];
  if (a.listener) lines.push(`listener   ${a.listener.name} (${a.listener.kind})`);
  const chain = a.listener?.filterChain;
  if (chain) lines.push(`chain      #${chain.index} ${chain.serverNames.length > 0 ? `SNI ${chain.serverNames.join(', ')}` : 'any SNI'}, ${chain.terminatesTls ? 'TLS terminated' : chain.serverNames.length > 0 ? 'TLS passed through' : 'plaintext'}`);
  const g = a.gateway;
  if (g) {
    const tls = g.tlsMode ? `, TLS ${g.tlsMode}${g.credentialName ? ` with ${g.credentialName}` : ''}` : g.httpsRedirect ? ', httpsRedirect' : '';
    lines.push(`gateway    servers[${g.server}] ${g.protocol} ${g.port}, hosts ${g.hosts.join(' ')}${tls}   [${ruleText(g.rule)}]`);
  }
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
  if (a.answer) {
    const location = Object.entries(a.answer.location ?? {}).map(([part, value]) => `${part} ${String(value)}`).join(', ');
    lines.push(`answer     ${String(a.answer.status)} (${a.answer.kind === 'redirect' ? 'redirect' : 'direct response'})${location ? `, Location with ${location}` : ''}`);
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
      const { authority, path, scheme } = splitTarget(target);
      const query = new URLSearchParams({ proxyID: proxy, authority, path, method: flags.method, ...(scheme === 'https' ? { scheme } : {}) });
      for (const header of flags.header) query.append('header', header);
      const answer = await callAdmin<ExplainAnswer>(flags, `/debug/explain?${query.toString()}`);
      if (flags.output === 'json') printJson(answer);
      else print(render(answer));
      return 0;
    }),
  );
}
