// What the operator commands share: options to reach the admin API, its errors, and tables.
import { Command, Option } from 'commander';
import { MeshpilotError } from '../errors.ts';

export interface AdminFlags {
  readonly admin: string;
  readonly adminToken?: string;
  readonly output: 'table' | 'json';
}

/** Adds --admin, --admin-token and -o to a command. */
export function withAdminOptions(command: Command): Command {
  return command
    .addOption(new Option('--admin <url>', 'admin API of the meshpilot to ask').default('http://127.0.0.1:15014').env('MESHPILOT_ADMIN_URL'))
    .addOption(new Option('--admin-token <token>', 'bearer token, when meshpilot runs with --admin-token').env('MESHPILOT_ADMIN_TOKEN'))
    .addOption(new Option('-o, --output <format>', 'table for people, json for scripts').choices(['table', 'json']).default('table'));
}

/** Calls the admin API; an API error or an unreachable server becomes a MeshpilotError. */
export async function callAdmin<T>(flags: AdminFlags, path: string, init: RequestInit = {}): Promise<T> {
  const url = `${flags.admin.replace(/\/+$/, '')}${path}`;
  const headers = new Headers(init.headers);
  if (flags.adminToken) headers.set('authorization', `Bearer ${flags.adminToken}`);
  let response: Response;
  try {
    response = await fetch(url, { ...init, headers });
  } catch (error) {
    const cause = error instanceof Error && error.cause instanceof Error ? error.cause.message : String(error);
    throw new MeshpilotError('MP_ADMIN_UNREACHABLE', `cannot reach the admin API at ${flags.admin} (${cause}): start meshpilot or pass --admin http://HOST:15014`);
  }
  const body: unknown = await response.json().catch(() => undefined);
  if (!response.ok) {
    const error = (body as { error?: { code?: string; message?: string } } | undefined)?.error;
    if (error?.code === 'MP_NOT_FOUND' || error?.code === 'MP_BAD_REQUEST' || error?.code === 'MP_UNAUTHORIZED') throw new MeshpilotError(error.code, error.message ?? '');
    throw new MeshpilotError('MP_INTERNAL', `${url} answered ${response.status}: ${error?.message ?? JSON.stringify(body)}`);
  }
  return body as T;
}

export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('   ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

export function age(since: string, now = Date.now()): string {
  const seconds = Math.max(0, Math.floor((now - Date.parse(since)) / 1000));
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${seconds % 60}s`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h${Math.floor((seconds % 3600) / 60)}m`;
  return `${Math.floor(seconds / 86400)}d${Math.floor((seconds % 86400) / 3600)}h`;
}

export function print(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

export function printJson(value: unknown): void {
  print(JSON.stringify(value, null, 2));
}

/** Runs a command body; a MeshpilotError prints as `CODE: message` on stderr with exit code 1. */
export async function runCommand(body: () => Promise<number | undefined>): Promise<void> {
  try {
    process.exitCode = (await body()) ?? 0;
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  }
}

export interface RuleRefView {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly httpRoute?: number;
}

export function ruleText(rule: RuleRefView | null | undefined): string {
  if (!rule) return '';
  return `${rule.kind} ${rule.namespace}/${rule.name}${rule.httpRoute !== undefined ? ` http[${rule.httpRoute}]` : ''}`;
}
