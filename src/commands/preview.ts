// `meshpilot preview FILE`: what will this change do, before it is applied?
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { MeshpilotError } from '../errors.ts';
import type { AdminFlags } from './admin-client.ts';
import { callAdmin, print, printJson, runCommand, withAdminOptions } from './admin-client.ts';

interface Changes {
  added: string[];
  removed: string[];
  changed: { name: string; fields: { path: string; before?: unknown; after?: unknown }[] }[];
}

interface PreviewAnswer {
  valid: boolean;
  objects: { kind: string; namespace: string; name: string; change: string }[];
  errors: { code: string; object: string; path: string; message: string }[];
  warnings: { code: string; object: string; path: string; message: string }[];
  proxies: { proxy: string; types: Partial<Record<'cds' | 'eds' | 'lds' | 'rds', Changes>> }[];
  unaffectedProxies: number;
}

const show = (value: unknown): string => (value === undefined ? '(none)' : JSON.stringify(value));

function render(p: PreviewAnswer): string {
  const lines: string[] = [];
  for (const o of p.objects) lines.push(`${o.change.padEnd(9)} ${o.kind} ${o.namespace}/${o.name}`);
  for (const e of p.errors) lines.push(`ERROR   ${e.code}: ${e.object}: ${e.path ? `${e.path}: ` : ''}${e.message}`);
  for (const w of p.warnings) lines.push(`WARNING ${w.code}: ${w.object}: ${w.path ? `${w.path}: ` : ''}${w.message}`);
  lines.push(p.valid ? 'valid: applying it would change the proxies below' : 'invalid: fix the errors above; nothing would be applied');
  for (const proxy of p.proxies) {
    lines.push('', proxy.proxy);
    for (const [type, changes] of Object.entries(proxy.types)) {
      for (const name of changes.added) lines.push(`  ${type.toUpperCase()} + ${name}`);
      for (const name of changes.removed) lines.push(`  ${type.toUpperCase()} - ${name}`);
      for (const c of changes.changed) {
        lines.push(`  ${type.toUpperCase()} ~ ${c.name}`);
        for (const f of c.fields) lines.push(`      ${f.path}: ${show(f.before)} -> ${show(f.after)}`);
      }
    }
  }
  if (p.valid) lines.push('', `${p.proxies.length} proxies affected, ${p.unaffectedProxies} unaffected`);
  return lines.join('\n');
}

export function registerPreviewCommand(program: Command): void {
  withAdminOptions(
    program
      .command('preview')
      .argument('<file>', 'YAML of new or changed objects ("-" reads stdin)')
      .description('validate YAML and show, per connected proxy, the xDS changes applying it would cause; applies nothing'),
  ).action((file: string, flags: AdminFlags) =>
    runCommand(async () => {
      let yaml: string;
      try {
        yaml = file === '-' ? await readStdin() : await readFile(file, 'utf8');
      } catch (error) {
        throw new MeshpilotError('MP_CONFIG', `cannot read ${file} (${error instanceof Error ? error.message : String(error)}): pass a YAML file`);
      }
      const answer = await callAdmin<PreviewAnswer>(flags, '/debug/preview', { method: 'POST', headers: { 'content-type': 'text/yaml' }, body: yaml });
      if (flags.output === 'json') printJson(answer);
      else print(render(answer));
      return answer.valid ? 0 : 1;
    }),
  );
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
