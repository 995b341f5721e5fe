// `meshpilot authz PROXY [--port N --principal ID ...]`: which policies guard a workload, and would this caller be allowed?
import type { Command } from 'commander';
import { Option } from 'commander';
import type { AdminFlags } from './admin-client.ts';
import { callAdmin, print, printJson, runCommand, withAdminOptions } from './admin-client.ts';

interface AuthzAnswer {
  policies: { namespace: string; name: string; action: string; scope: string; rules: number }[];
  defaultDecision: string;
  ports: { chain: string; port: number | null; protocol: string; filters: { action: string; policies: string[] }[] }[];
  explain: { allowed: boolean; chain: string | null; steps: { action: string; matched: string | null; outcome: string }[]; summary: string } | null;
}

interface AuthzFlags extends AdminFlags {
  port?: string;
  principal?: string;
  namespace?: string;
  ip?: string;
  method?: string;
  path?: string;
  host?: string;
  header: string[];
}

function render(a: AuthzAnswer): string {
  const lines = a.policies.map((p) => `policy     ${p.action.padEnd(6)} ${p.namespace}/${p.name} (${p.scope}, ${String(p.rules)} rules)`);
  if (lines.length === 0) lines.push('policy     none: every request is allowed');
  lines.push(`default    ${a.defaultDecision}`);
  for (const chain of a.ports) {
    for (const filter of chain.filters) lines.push(`chain      ${chain.chain} (${chain.protocol}): ${filter.action} ${filter.policies.join(', ') || '(no policy: matches nothing)'}`);
  }
  if (a.explain) {
    for (const step of a.explain.steps) lines.push(`step       ${step.action}: ${step.outcome}${step.matched ? ` by ${step.matched}` : ''}`);
    lines.push('', `=> ${a.explain.summary}`);
  }
  return lines.join('\n');
}

export function registerAuthzCommand(program: Command): void {
  withAdminOptions(
    program
      .command('authz')
      .argument('<proxy>', 'node id of the workload proxy (see proxy-status)')
      .option('--port <port>', 'the workload port a caller connects to: explain that caller')
      .option('--principal <id>', 'the caller identity, e.g. cluster.local/ns/default/sa/productpage')
      .option('--namespace <ns>', 'the caller namespace (its default service account)')
      .option('--ip <address>', "the caller's address")
      .addOption(new Option('-X, --method <method>', 'request method'))
      .option('--path <path>', 'request path')
      .option('--host <host>', 'the :authority the caller sends')
      .option('-H, --header <name:value>', 'a request header (repeatable)', (value: string, previous: string[]) => [...previous, value], [])
      .description("the AuthorizationPolicies guarding a workload, its RBAC filters, and whether a caller would be allowed, by which policy"),
  ).action((proxy: string, flags: AuthzFlags) =>
    runCommand(async () => {
      const query = new URLSearchParams({ proxyID: proxy });
      for (const key of ['port', 'principal', 'namespace', 'ip', 'method', 'path', 'host'] as const) {
        const value = flags[key];
        if (value !== undefined) query.append(key, value);
      }
      for (const header of flags.header) query.append('header', header);
      const answer = await callAdmin<AuthzAnswer>(flags, `/debug/authz?${query.toString()}`);
      if (flags.output === 'json') printJson(answer);
      else print(render(answer));
      return answer.explain && !answer.explain.allowed ? 1 : 0;
    }),
  );
}
