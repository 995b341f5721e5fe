// Istio's AuthorizationPolicy, validated as Istio's admission webhook would, plus an MP_UNSUPPORTED
// warning for each part meshpilot cannot enforce, saying how it fails closed instead.
import type { ValidationIssue } from '../model/rules.ts';
import { AUTHORIZATION_ACTIONS, conditionKeyProblem, UNENFORCEABLE_CONDITIONS, UNENFORCEABLE_SOURCE_FIELDS } from '../model/authorization.ts';
import { parseCidr } from '../model/address.ts';
import type { Fields } from './object-fields.ts';
import { describeType, isFields } from './object-fields.ts';
import { checkEnum, IssueList, mapAt, mapsIn, stringsIn } from './istio-fields.ts';
import { checkIstioFields } from './istio-schema.ts';

const SOURCE_FIELDS = [
  'principals', 'notPrincipals', 'requestPrincipals', 'notRequestPrincipals', 'namespaces', 'notNamespaces',
  'serviceAccounts', 'notServiceAccounts', 'trustDomains', 'notTrustDomains', 'ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks',
] as const;
const OPERATION_FIELDS = ['hosts', 'notHosts', 'ports', 'notPorts', 'methods', 'notMethods', 'paths', 'notPaths'] as const;
const IP_KEYS = new Set(['source.ip', 'remote.ip', 'destination.ip']);
const FAILS_CLOSED = 'an ALLOW rule using it never matches, and a DENY rule ignores it (so it denies more): the rule fails closed';

function checkIp(value: string, path: string, issues: IssueList): void {
  if (parseCidr(value) === undefined) issues.error(path, `"${value}" is not an IP address or CIDR block: write e.g. 10.1.0.0/16 or 10.1.2.3`);
}

function checkPort(value: string, path: string, issues: IssueList): void {
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) issues.error(path, `"${value}" is not a port number: write a number from 0 to 65535, as a string ("9080")`);
}

/** A path with `{` is one of Istio's path templates (`{*}`, `{**}`), which meshpilot does not translate. */
function checkPath(value: string, path: string, issues: IssueList): void {
  if (value.includes('{') || value.includes('}')) {
    issues.warn(path, `"${value}" is a path template, which meshpilot does not implement: ${FAILS_CLOSED}`, 'MP_UNSUPPORTED');
  }
}

/** The values of one list field: strings, none empty (Istio: "empty value not allowed"). */
function checkValues(value: unknown, path: string, issues: IssueList, each?: (item: string, itemPath: string) => void): number {
  const items = stringsIn(value, path, issues);
  for (const [index, item] of items) {
    const itemPath = `${path}[${index}]`;
    if (item === '') issues.error(itemPath, 'is empty: an empty value is not allowed; remove it, or use "*" for any value');
    else each?.(item, itemPath);
  }
  return items.length;
}

type ValueCheck = (item: string, itemPath: string, issues: IssueList) => void;

interface EntryShape {
  readonly fields: readonly string[];
  readonly checks: Readonly<Record<string, ValueCheck>>;
  readonly example: string;
  readonly names: string;
}

const SOURCE_SHAPE: EntryShape = {
  fields: SOURCE_FIELDS,
  checks: Object.fromEntries(['ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks'].map((field) => [field, checkIp])),
  example: 'source: { principals: ["cluster.local/ns/default/sa/productpage"] }',
  names: 'principals, namespaces, ipBlocks (or their not- forms), or remove this entry of from',
};

const OPERATION_SHAPE: EntryShape = {
  fields: OPERATION_FIELDS,
  checks: { ports: checkPort, notPorts: checkPort, paths: checkPath, notPaths: checkPath },
  example: 'operation: { methods: ["GET"], paths: ["/api/*"] }',
  names: 'hosts, ports, methods, paths (or their not- forms), or remove this entry of to',
};

/** A from.source or to.operation: lists of non-empty values, at least one set. */
function checkEntry(entry: unknown, path: string, shape: EntryShape, issues: IssueList): void {
  if (!isFields(entry)) {
    issues.error(path, entry === undefined || entry === null ? `is missing: give one, e.g. ${shape.example}` : `must be a map, got ${describeType(entry)}`);
    return;
  }
  let set = 0;
  for (const field of shape.fields) {
    const fieldPath = `${path}.${field}`;
    const check = shape.checks[field];
    set += checkValues(entry[field], fieldPath, issues, check ? (item, itemPath) => { check(item, itemPath, issues); } : undefined);
    const reason = UNENFORCEABLE_SOURCE_FIELDS[field];
    if (shape === SOURCE_SHAPE && reason !== undefined && entry[field] !== undefined) issues.warn(fieldPath, `${reason}: ${FAILS_CLOSED}`, 'MP_UNSUPPORTED');
  }
  if (set === 0) issues.error(path, `is empty: name at least one of ${shape.names}`);
  // As Istio: a service account already names its namespace and principal.
  const accounts = ['serviceAccounts', 'notServiceAccounts'].find((field) => entry[field] !== undefined);
  const other = ['principals', 'notPrincipals', 'namespaces', 'notNamespaces'].find((field) => entry[field] !== undefined);
  if (shape === SOURCE_SHAPE && accounts !== undefined && other !== undefined) {
    issues.error(`${path}.${accounts}`, `cannot be set with ${other}: a service account names its namespace and principal already; keep one of them`);
  }
}

function checkCondition(condition: Fields, path: string, issues: IssueList): void {
  const key = condition['key'];
  if (typeof key !== 'string' || key === '') {
    issues.error(`${path}.key`, key === undefined || key === '' ? 'is missing: name an attribute, e.g. key: source.ip or key: request.headers[x-user]' : `must be a string, got ${describeType(key)}`);
    return;
  }
  const problem = conditionKeyProblem(key);
  if (problem) {
    issues.error(`${path}.key`, problem);
    return;
  }
  const check = IP_KEYS.has(key) ? checkIp : key === 'destination.port' ? checkPort : undefined;
  const each = check ? (item: string, itemPath: string) => { check(item, itemPath, issues); } : undefined;
  const count = checkValues(condition['values'], `${path}.values`, issues, each) + checkValues(condition['notValues'], `${path}.notValues`, issues, each);
  if (count === 0) issues.error(`${path}.values`, `is empty: give values or notValues for ${key}`);
  const reason = UNENFORCEABLE_CONDITIONS.find(([prefix]) => key.startsWith(prefix))?.[1];
  if (reason !== undefined) issues.warn(`${path}.key`, `${key}: ${reason}: ${FAILS_CLOSED}`, 'MP_UNSUPPORTED');
}

function checkRule(rule: Fields, path: string, issues: IssueList): void {
  for (const [part, what, shape] of [
    ['from', 'source', SOURCE_SHAPE],
    ['to', 'operation', OPERATION_SHAPE],
  ] as const) {
    const value = rule[part];
    if (Array.isArray(value) && value.length === 0) issues.error(`${path}.${part}`, `is empty: remove ${part}, or add an entry with a ${what}`);
    for (const [index, entry] of mapsIn(value, `${path}.${part}`, `${part} entry`, issues)) checkEntry(entry[what], `${path}.${part}[${index}].${what}`, shape, issues);
  }
  for (const [index, condition] of mapsIn(rule['when'], `${path}.when`, 'condition', issues)) checkCondition(condition, `${path}.when[${index}]`, issues);
}

function checkSelector(spec: Fields, issues: IssueList): void {
  const targets = ['selector', 'targetRef', 'targetRefs'].filter((key) => spec[key] !== undefined && spec[key] !== null);
  if (targets.length > 1) issues.error(`spec.${targets[1] ?? ''}`, `only one of selector, targetRef and targetRefs may be set, got ${targets.join(' and ')}: keep one`);
  const selector = mapAt(spec['selector'], 'spec.selector', 'selector: { matchLabels: { app: reviews } }', issues);
  const labels = selector ? mapAt(selector['matchLabels'], 'spec.selector.matchLabels', 'matchLabels: { app: reviews }', issues) : undefined;
  for (const [key, label] of Object.entries(labels ?? {})) {
    if (typeof label !== 'string') issues.error(`spec.selector.matchLabels.${key}`, `must be a string, got ${describeType(label)}: quote it`);
  }
  for (const key of ['targetRef', 'targetRefs']) {
    if (spec[key] !== undefined && spec[key] !== null) {
      issues.warn(`spec.${key}`, 'policies attached to a Service or Gateway apply to waypoints and gateways, which meshpilot does not build: this policy is not applied to any sidecar, as in Istio', 'MP_UNSUPPORTED');
    }
  }
}

export function validateAuthorizationPolicySpec(spec: unknown): ValidationIssue[] {
  const issues = new IssueList('MP_RULE_INVALID');
  // An AuthorizationPolicy without spec is Istio's "allow nothing": it denies every request to the workloads it applies to.
  if (spec === undefined || spec === null) return issues.issues;
  if (!isFields(spec)) {
    issues.error('spec', `must be a map, got ${describeType(spec)}: write spec: { action: ALLOW, rules: [...] }, or spec: {} to deny everything`);
    return issues.issues;
  }
  issues.issues.push(...checkIstioFields(spec, 'AuthorizationPolicy', 'spec', 'MP_RULE_INVALID'));
  checkSelector(spec, issues);
  const action = spec['action'];
  checkEnum(action, AUTHORIZATION_ACTIONS, 'spec.action', issues);
  if (action === 'CUSTOM') {
    if (spec['provider'] === undefined) issues.error('spec.provider', 'is required with action CUSTOM: name the extension provider, e.g. provider: { name: my-ext-authz }');
    issues.warn('spec.action', 'CUSTOM (external authorization) is not implemented by meshpilot: as Istio does for a provider it cannot use, requests this policy\'s rules match are denied', 'MP_UNSUPPORTED');
  } else if (spec['provider'] !== undefined) {
    issues.error('spec.provider', 'is only allowed with action CUSTOM: remove it, or set action: CUSTOM');
  }
  const rules = mapsIn(spec['rules'], 'spec.rules', 'rule', issues);
  for (const [index, rule] of rules) checkRule(rule, `spec.rules[${index}]`, issues);
  if (rules.length === 0 && (action === 'DENY' || action === 'AUDIT')) {
    issues.warn('spec.rules', `is empty, so this ${action} policy matches no request: add rules, e.g. rules: [{}] to match every request`, 'MP_RULE_INEFFECTIVE');
  }
  return issues.issues;
}
