// The `--mesh-config` file: Istio's MeshConfig fields (the `mesh` key of the `istio` ConfigMap),
// validated field by field. Accepts the MeshConfig itself, `meshConfig:` around it, or the ConfigMap.
import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { MeshpilotError } from '../errors.ts';
import type { AccessLogConfig, MeshConfig, OutboundTrafficMode } from '../model/mesh-config.ts';
import { DEFAULT_JSON_ACCESS_LOG_FORMAT, DEFAULT_MESH_CONFIG, DEFAULT_TEXT_ACCESS_LOG_FORMAT } from '../model/mesh-config.ts';
import type { ValidationIssue } from '../model/rules.ts';
import type { Fields } from './object-fields.ts';
import { describeType, fieldsOf, isDns1123Label, isFields, stringField } from './object-fields.ts';
import { MAX_DURATION_SECONDS } from './istio-fields.ts';
import { durationJson, parseDuration } from '../model/duration.ts';
import { exportToProblems, type ExportedKind } from '../model/visibility.ts';

class MeshIssues {
  readonly issues: ValidationIssue[] = [];
  error(path: string, message: string): void {
    this.issues.push({ code: 'MP_MESH_CONFIG_INVALID', severity: 'error', path, message });
  }
}

function readAccessLog(mesh: Fields, issues: MeshIssues): AccessLogConfig | undefined {
  const file = mesh['accessLogFile'];
  if (file !== undefined && typeof file !== 'string') issues.error('accessLogFile', `must be a path, got ${describeType(file)}: e.g. accessLogFile: /dev/stdout`);
  const encodingValue = mesh['accessLogEncoding'] ?? 'TEXT';
  const encoding = encodingValue === 'TEXT' || encodingValue === 'JSON' ? encodingValue : undefined;
  if (!encoding) issues.error('accessLogEncoding', `must be TEXT or JSON, got ${describeType(encodingValue)}`);
  const format = mesh['accessLogFormat'];
  if (format !== undefined && typeof format !== 'string') issues.error('accessLogFormat', `must be a string, got ${describeType(format)}: quote it`);
  if (typeof file !== 'string' || file === '' || !encoding) return undefined;
  const text = typeof format === 'string' ? format : '';
  if (encoding === 'TEXT') return { path: file, encoding, format: text === '' ? DEFAULT_TEXT_ACCESS_LOG_FORMAT : text };
  if (text === '') return { path: file, encoding, format: DEFAULT_JSON_ACCESS_LOG_FORMAT };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    issues.error('accessLogFormat', `is not a JSON object (${reason}): with accessLogEncoding JSON write e.g. '{"code":"%RESPONSE_CODE%"}'`);
    return undefined;
  }
  if (!isFields(parsed) || !Object.values(parsed).every((v) => typeof v === 'string')) {
    issues.error('accessLogFormat', 'must be a JSON object of string values, each an Envoy command operator such as "%RESPONSE_CODE%"');
    return undefined;
  }
  return { path: file, encoding, format: parsed as Record<string, string> };
}

function readSampling(mesh: Fields, issues: MeshIssues): number {
  const tracing = fieldsOf(fieldsOf(mesh['defaultConfig'])['tracing']);
  const sampling = tracing['sampling'];
  if (sampling === undefined) return DEFAULT_MESH_CONFIG.tracingSampling;
  if (typeof sampling !== 'number' || !Number.isFinite(sampling) || sampling < 0 || sampling > 100) {
    issues.error('defaultConfig.tracing.sampling', `must be a percentage from 0 to 100, got ${describeType(sampling)}`);
    return DEFAULT_MESH_CONFIG.tracingSampling;
  }
  return sampling;
}

function readOutboundPolicy(mesh: Fields, issues: MeshIssues): OutboundTrafficMode {
  const mode = fieldsOf(mesh['outboundTrafficPolicy'])['mode'];
  if (mode === undefined) return DEFAULT_MESH_CONFIG.outboundTrafficPolicy;
  if (mode === 'ALLOW_ANY' || mode === 'REGISTRY_ONLY') return mode;
  issues.error('outboundTrafficPolicy.mode', `must be ALLOW_ANY or REGISTRY_ONLY, got ${describeType(mode)}`);
  return DEFAULT_MESH_CONFIG.outboundTrafficPolicy;
}

function readConnectTimeout(mesh: Fields, issues: MeshIssues): string {
  const value = mesh['connectTimeout'];
  if (value === undefined) return DEFAULT_MESH_CONFIG.connectTimeout;
  const nanos = typeof value === 'string' ? parseDuration(value.trim()) : undefined;
  if (nanos === undefined || nanos <= 0n) {
    issues.error('connectTimeout', `must be a positive duration such as 10s or 500ms, got ${describeType(value)}`);
    return DEFAULT_MESH_CONFIG.connectTimeout;
  }
  if (nanos > BigInt(MAX_DURATION_SECONDS) * 1_000_000_000n) {
    issues.error('connectTimeout', `${describeType(value)} is longer than Envoy accepts (at most ${MAX_DURATION_SECONDS}s): use a shorter duration`);
    return DEFAULT_MESH_CONFIG.connectTimeout;
  }
  return durationJson(nanos);
}

function readRootNamespace(mesh: Fields, issues: MeshIssues): string | undefined {
  const value = mesh['rootNamespace'];
  if (value === undefined || value === '') return undefined;
  if (typeof value !== 'string' || !isDns1123Label(value)) {
    issues.error('rootNamespace', `must be a namespace name (a DNS label), got ${describeType(value)}: e.g. rootNamespace: istio-system`);
    return undefined;
  }
  return value;
}

function readTrustDomain(mesh: Fields, issues: MeshIssues): string {
  const value = mesh['trustDomain'];
  if (value === undefined || value === '') return DEFAULT_MESH_CONFIG.trustDomain;
  if (typeof value !== 'string' || value.length > 255 || !/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/.test(value)) {
    issues.error('trustDomain', `must be a lower-case DNS name such as cluster.local (it is the host of every SPIFFE ID), got ${describeType(value)}`);
    return DEFAULT_MESH_CONFIG.trustDomain;
  }
  return value;
}

function readEnableAutoMtls(mesh: Fields, issues: MeshIssues): boolean {
  const value = mesh['enableAutoMtls'];
  if (value === undefined || value === null) return DEFAULT_MESH_CONFIG.enableAutoMtls;
  if (typeof value !== 'boolean') {
    issues.error('enableAutoMtls', `must be true or false, got ${describeType(value)}`);
    return DEFAULT_MESH_CONFIG.enableAutoMtls;
  }
  return value;
}

const EXPORT_DEFAULT_FIELDS: readonly (readonly [ExportedKind, string])[] = [
  ['service', 'defaultServiceExportTo'],
  ['virtualService', 'defaultVirtualServiceExportTo'],
  ['destinationRule', 'defaultDestinationRuleExportTo'],
];

/** Istio's default exportTo per kind; a field left out keeps Istio's `*`. */
function readDefaultExportTo(mesh: Fields, issues: MeshIssues): MeshConfig['defaultExportTo'] {
  const out: Record<string, readonly string[]> = {};
  for (const [kind, field] of EXPORT_DEFAULT_FIELDS) {
    const value = mesh[field];
    if (value === undefined || value === null) continue;
    if (!Array.isArray(value) || !value.every((v): v is string => typeof v === 'string')) {
      issues.error(field, `must be a list of ".", "*" or namespace names, got ${describeType(value)}: e.g. ${field}: ["."]`);
      continue;
    }
    if (value.length === 0) continue;
    const problems = exportToProblems(value, '', kind === 'service', isDns1123Label);
    for (const problem of problems) issues.error(field, problem);
    if (problems.length === 0) out[kind] = value;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/** The MeshConfig inside whatever wrapper the file uses. */
function unwrap(document: unknown): { mesh: unknown; prefix: string } {
  if (!isFields(document)) return { mesh: document, prefix: '' };
  if (document['kind'] === 'ConfigMap') {
    const text = stringField(fieldsOf(document['data']), 'mesh');
    return { mesh: text === undefined ? undefined : parse(text) as unknown, prefix: 'data.mesh.' };
  }
  if (isFields(document['meshConfig'])) return { mesh: document['meshConfig'], prefix: 'meshConfig.' };
  return { mesh: document, prefix: '' };
}

export interface MeshConfigRead {
  readonly meshConfig?: MeshConfig;
  readonly issues: readonly ValidationIssue[];
}

/** Validates a parsed MeshConfig document; other MeshConfig fields are Istio's and left alone. */
export function readMeshConfig(document: unknown, source: string): MeshConfigRead {
  const { mesh, prefix } = unwrap(document);
  const issues = new MeshIssues();
  if (mesh !== undefined && mesh !== null && !isFields(mesh)) {
    issues.error(prefix.replace(/\.$/, ''), `must be a map of MeshConfig fields, got ${describeType(mesh)}`);
    return { issues: issues.issues };
  }
  const fields = fieldsOf(mesh);
  const accessLog = readAccessLog(fields, issues);
  const rootNamespace = readRootNamespace(fields, issues);
  const defaultExportTo = readDefaultExportTo(fields, issues);
  const meshConfig: MeshConfig = {
    ...(accessLog ? { accessLog } : {}),
    tracingSampling: readSampling(fields, issues),
    outboundTrafficPolicy: readOutboundPolicy(fields, issues),
    connectTimeout: readConnectTimeout(fields, issues),
    trustDomain: readTrustDomain(fields, issues),
    enableAutoMtls: readEnableAutoMtls(fields, issues),
    ...(rootNamespace ? { rootNamespace } : {}),
    ...(defaultExportTo ? { defaultExportTo } : {}),
    source,
  };
  const found = issues.issues.map((issue) => ({ ...issue, path: prefix + issue.path }));
  return found.length > 0 ? { issues: found } : { meshConfig, issues: [] };
}

/** Reads `--mesh-config`; any problem is a startup error listing every field to fix. */
export async function loadMeshConfigFile(file: string): Promise<MeshConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const reason = error instanceof Error && 'code' in error ? String(error.code) : String(error);
    throw new MeshpilotError('MP_CONFIG', `--mesh-config ${file} cannot be read (${reason}): point it at a MeshConfig YAML file`, { cause: error });
  }
  let document: unknown;
  try {
    document = parse(text);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new MeshpilotError('MP_MESH_CONFIG_INVALID', `${file}: not valid YAML (${reason}): fix the syntax`, { cause: error });
  }
  const { meshConfig, issues } = readMeshConfig(document, file);
  if (!meshConfig) {
    throw new MeshpilotError('MP_MESH_CONFIG_INVALID', `${file}: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`);
  }
  return meshConfig;
}
