// `meshpilot proxy-status [PROXY]`: is every proxy in sync? (like istioctl proxy-status)
import type { Command } from 'commander';
import type { AdminFlags, RuleRefView } from './admin-client.ts';
import { age, callAdmin, print, printJson, ruleText, runCommand, table, withAdminOptions } from './admin-client.ts';

interface TypeSync {
  status: string;
  sent: { version: string; at: string; resources: number; pushSequence: number } | null;
  acked: { version: string } | null;
  nack: { message: string; version: string; rejected: { resources: { name: string; rules: RuleRefView[] }[] } | null } | null;
}

interface ProxySync {
  proxy: string | null;
  connectionId: string;
  connectedAt: string;
  generator: string | null;
  kind: string | null;
  types: Record<'cds' | 'eds' | 'lds' | 'rds', TypeSync>;
}

const TYPES = ['cds', 'lds', 'eds', 'rds'] as const;

/** How the TYPE column names each kind of proxy. */
const KIND_TEXT: Readonly<Record<string, string>> = { sidecar: 'sidecar', router: 'router', 'proxyless-grpc': 'proxyless gRPC', unknown: 'unknown' };

function latestPush(p: ProxySync): string {
  const sequences = TYPES.map((t) => p.types[t].sent?.pushSequence ?? 0);
  const max = Math.max(...sequences);
  return max > 0 ? `push ${max}` : '-';
}

function detail(p: ProxySync): string {
  const lines = [`proxy:      ${p.proxy ?? `connection ${p.connectionId}`}`, `type:       ${KIND_TEXT[p.kind ?? ''] ?? '-'}`, `generator:  ${p.generator ?? '-'}`, `connected:  ${p.connectedAt} (${age(p.connectedAt)} ago)`, ''];
  for (const type of TYPES) {
    const t = p.types[type];
    lines.push(`${type.toUpperCase()}  ${t.status}${t.sent ? `  sent ${t.sent.version} (${t.sent.resources} resources, push ${t.sent.pushSequence})` : ''}${t.acked ? `  acked ${t.acked.version}` : ''}`);
    if (t.nack) {
      lines.push(`     rejected version ${t.nack.version}: ${t.nack.message}`);
      for (const r of t.nack.rejected?.resources ?? []) lines.push(`     - ${r.name}${r.rules.length > 0 ? `  from ${r.rules.map(ruleText).join(', ')}` : ''}`);
    }
  }
  return lines.join('\n');
}

export function registerProxyStatusCommand(program: Command): void {
  withAdminOptions(
    program
      .command('proxy-status')
      .argument('[proxy]', 'one proxy (node id, or a unique part of it) for its details')
      .description('sync state of every connected proxy (sidecar, router, proxyless gRPC) per xDS type (SYNCED, STALE, NOT SENT, ERROR)'),
  ).action((proxy: string | undefined, flags: AdminFlags) =>
    runCommand(async () => {
      const { proxies } = await callAdmin<{ proxies: ProxySync[] }>(flags, '/debug/syncz');
      if (proxy !== undefined) {
        const matches = proxies.filter((p) => p.proxy === proxy || (p.proxy ?? '').includes(proxy));
        const exact = matches.find((p) => p.proxy === proxy);
        const one = exact ?? (matches.length === 1 ? matches[0] : undefined);
        if (!one) {
          process.stderr.write(`MP_NOT_FOUND: ${matches.length === 0 ? `no connected proxy matches "${proxy}"` : `"${proxy}" matches ${matches.length} proxies: give more of the node id`}\n`);
          return 1;
        }
        if (flags.output === 'json') printJson(one);
        else print(detail(one));
        return 0;
      }
      if (flags.output === 'json') {
        printJson({ proxies });
        return 0;
      }
      const rows = proxies.map((p) => [p.proxy ?? `connection ${p.connectionId}`, KIND_TEXT[p.kind ?? ''] ?? '-', ...TYPES.map((t) => p.types[t].status), latestPush(p), age(p.connectedAt)]);
      print(table(['NAME', 'TYPE', 'CDS', 'LDS', 'EDS', 'RDS', 'VERSION', 'AGE'], rows));
      return 0;
    }),
  );
}
