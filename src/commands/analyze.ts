// `meshpilot analyze DIR`: every problem in a config directory (and a MeshConfig file), each with
// its code, file, object and field; exits non-zero when any is an error.
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { parse } from 'yaml';
import { MeshpilotError } from '../errors.ts';
import { buildPushContext } from '../model/push-context.ts';
import type { ValidationIssue } from '../model/rules.ts';
import { ruleLabel } from '../model/rules.ts';
import { loadDirectory } from '../sources/config-dir.ts';
import type { ConvertedObjects } from '../sources/kube-objects.ts';
import { readMeshConfig } from '../sources/mesh-config-file.ts';
import { requireDirectory } from './render.ts';
import type { ErrorCode } from '../errors.ts';

export interface Finding {
  readonly severity: 'error' | 'warning';
  readonly code: ErrorCode;
  readonly file: string;
  readonly object: string;
  readonly path: string;
  readonly message: string;
}

function finding(issue: ValidationIssue, file: string, object: string): Finding {
  return { severity: issue.severity, code: issue.code, file, object, path: issue.path, message: issue.message };
}

async function meshConfigFindings(file: string): Promise<Finding[]> {
  let document: unknown;
  try {
    document = parse(await readFile(file, 'utf8'));
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return [{ severity: 'error', code: 'MP_MESH_CONFIG_INVALID', file, object: 'MeshConfig', path: '', message: `cannot be read as YAML (${reason})` }];
  }
  return readMeshConfig(document, file).issues.map((issue) => finding(issue, file, 'MeshConfig'));
}

/** Everything wrong in a directory: objects left out, rule problems, and what rules refer to but nothing defines. */
export async function analyzeDirectory(dir: string, meshConfigFile?: string): Promise<Finding[]> {
  await requireDirectory(dir, 'analyze');
  const findings = analyzeObjects(await loadDirectory(dir));
  if (meshConfigFile) findings.push(...(await meshConfigFindings(meshConfigFile)));
  return findings.sort((a, b) => (a.severity === b.severity ? 0 : a.severity === 'error' ? -1 : 1));
}

/** What analyze reports for objects already read: their own problems, then their rules' against the whole set. */
export function analyzeObjects(converted: ConvertedObjects): Finding[] {
  const push = buildPushContext(converted);
  const findings: Finding[] = [...converted.rejected, ...converted.warnings].flatMap((r) => r.issues.map((issue) => finding(issue, r.source.location, r.object)));
  for (const { rule, issues } of push.ruleStatus.values()) {
    const object = ruleLabel(rule.meta);
    for (const issue of [...(rule.meta.warnings ?? []), ...issues]) findings.push(finding(issue, rule.meta.source.location, object));
  }
  return findings;
}

export function formatFinding(f: Finding): string {
  return `${f.severity === 'error' ? 'Error' : 'Warning'} [${f.code}] ${f.file}: ${f.object}: ${f.path ? `${f.path}: ` : ''}${f.message}`;
}

export function registerAnalyzeCommand(program: Command): void {
  program
    .command('analyze')
    .description('validate a directory of Kubernetes and Istio YAML; exits 1 and lists every error')
    .argument('<dir>', 'directory to check')
    .option('--mesh-config <file>', 'also check this Istio MeshConfig YAML')
    .option('--output <format>', 'text or json', 'text')
    .action(async (dir: string, flags: { meshConfig?: string; output: string }) => {
      try {
        const findings = await analyzeDirectory(dir, flags.meshConfig);
        const errors = findings.filter((f) => f.severity === 'error').length;
        if (flags.output === 'json') process.stdout.write(`${JSON.stringify({ errors, warnings: findings.length - errors, findings }, null, 2)}\n`);
        else {
          for (const f of findings) process.stdout.write(`${formatFinding(f)}\n`);
          process.stdout.write(`${errors} error(s), ${findings.length - errors} warning(s) in ${dir}\n`);
        }
        if (errors > 0) {
          process.stderr.write(`${new MeshpilotError('MP_ANALYZE_FAILED', `${errors} error(s) in ${dir}: fix each one listed above`).message}\n`);
          process.exitCode = 1;
        }
      } catch (error) {
        process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
        process.exitCode = 1;
      }
    });
}
