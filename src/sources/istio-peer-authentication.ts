// Istio's PeerAuthentication, validated as Istio's admission webhook would (ValidatePeerAuthentication):
// a mode from the enum, portLevelMtls only on a workload policy, ports 1..65535, string labels.
import type { ValidationIssue } from '../model/rules.ts';
import { describeType, isFields, isPortNumber } from './object-fields.ts';
import { checkEnum, IssueList, mapAt } from './istio-fields.ts';
import { checkIstioFields } from './istio-schema.ts';

const MODES = ['UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT'];

function checkMode(value: unknown, path: string, issues: IssueList): void {
  const mtls = mapAt(value, path, 'mtls: { mode: STRICT }', issues);
  if (mtls) checkEnum(mtls['mode'], MODES, `${path}.mode`, issues);
}

export function validatePeerAuthenticationSpec(spec: unknown): ValidationIssue[] {
  const issues = new IssueList('MP_RULE_INVALID');
  // An empty spec is valid in Istio: a policy that inherits everything.
  if (spec === undefined || spec === null) return issues.issues;
  if (!isFields(spec)) {
    issues.error('spec', `must be a map, got ${describeType(spec)}: write e.g. spec: { mtls: { mode: STRICT } }`);
    return issues.issues;
  }
  issues.issues.push(...checkIstioFields(spec, 'PeerAuthentication', 'spec', 'MP_RULE_INVALID'));
  const selector = mapAt(spec['selector'], 'spec.selector', 'selector: { matchLabels: { app: reviews } }', issues);
  const labels = selector ? mapAt(selector['matchLabels'], 'spec.selector.matchLabels', 'matchLabels: { app: reviews }', issues) : undefined;
  for (const [key, label] of Object.entries(labels ?? {})) {
    if (key === '') issues.error('spec.selector.matchLabels', 'has an empty label name: name the label, e.g. app: reviews');
    if (typeof label !== 'string') issues.error(`spec.selector.matchLabels.${key}`, `must be a string, got ${describeType(label)}: quote it`);
  }
  checkMode(spec['mtls'], 'spec.mtls', issues);
  const portLevel = spec['portLevelMtls'];
  if (portLevel === undefined || portLevel === null) return issues.issues;
  const ports = mapAt(portLevel, 'spec.portLevelMtls', 'portLevelMtls: { 8080: { mode: DISABLE } }', issues);
  if (!ports) return issues.issues;
  if (Object.keys(labels ?? {}).length === 0) {
    issues.error('spec.portLevelMtls', 'a mesh-wide or namespace-wide policy (no selector.matchLabels) cannot have port-level mTLS: add a selector, or move the ports to a workload policy');
  }
  if (Object.keys(ports).length === 0) issues.error('spec.portLevelMtls', 'is empty: list at least one port, or remove portLevelMtls');
  for (const [port, mtls] of Object.entries(ports)) {
    const number = /^\d+$/.test(port) ? Number(port) : undefined;
    if (!isPortNumber(number)) issues.error(`spec.portLevelMtls.${port}`, `"${port}" is not a port number 1..65535: key each entry by the workload's port, e.g. 8080`);
    checkMode(mtls, `spec.portLevelMtls.${port}`, issues);
  }
  return issues.issues;
}
