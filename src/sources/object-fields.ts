// Typed reads of untyped parsed objects (YAML, JSON, API responses), shared by the converters.
import { isIP } from 'node:net';

export type Fields = Readonly<Record<string, unknown>>;

export function isFields(value: unknown): value is Fields {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function fieldsOf(value: unknown): Fields {
  return isFields(value) ? value : {};
}

export function stringField(fields: Fields, key: string): string | undefined {
  const value = fields[key];
  return typeof value === 'string' ? value : undefined;
}

export function arrayField(fields: Fields, key: string): readonly unknown[] {
  const value = fields[key];
  return Array.isArray(value) ? (value as unknown[]) : [];
}

/** Keeps only string values: Kubernetes labels are `map[string]string`, anything else is noise. */
export function stringMap(value: unknown): Record<string, string> {
  if (!isFields(value)) return {};
  const out: Record<string, string> = {};
  for (const [key, entry] of Object.entries(value)) if (typeof entry === 'string') out[key] = entry;
  return out;
}

export function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a map';
  if (typeof value === 'string' && value.length > MAX_ECHOED) return `a string of ${value.length} characters starting ${JSON.stringify(value.slice(0, MAX_ECHOED))}`;
  return `${typeof value} ${JSON.stringify(value)}`;
}

/** Errors quote at most this much of what a user wrote, so a misplaced file is never echoed whole. */
const MAX_ECHOED = 32;

export interface ObjectMeta {
  readonly name?: string;
  /** Defaults to `default`, as `kubectl apply` does for an object without one. */
  readonly namespace: string;
  readonly labels: Record<string, string>;
  readonly creationTimestamp?: string;
}

export const DEFAULT_NAMESPACE = 'default';

export function readMeta(object: Fields): ObjectMeta {
  const metadata = fieldsOf(object['metadata']);
  const name = stringField(metadata, 'name');
  const namespace = stringField(metadata, 'namespace');
  const creationTimestamp = stringField(metadata, 'creationTimestamp');
  return {
    ...(name !== undefined && name !== '' ? { name } : {}),
    namespace: namespace !== undefined && namespace !== '' ? namespace : DEFAULT_NAMESPACE,
    labels: stringMap(metadata['labels']),
    ...(creationTimestamp !== undefined ? { creationTimestamp } : {}),
  };
}

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function isDns1123Label(value: string): boolean {
  return value.length <= 63 && DNS1123_LABEL.test(value);
}

/** Istio's host rule: DNS labels, optionally behind a leading `*` or `*.` wildcard. */
export function isWildcardDomain(host: string): boolean {
  if (host === '*') return true;
  if (host.length === 0 || host.length > 255) return false;
  const rest = host.startsWith('*.') ? host.slice(2) : host.startsWith('*') ? host.slice(1) : host;
  const trimmed = rest.endsWith('.') ? rest.slice(0, -1) : rest;
  return trimmed.split('.').every(isDns1123Label);
}

export function isIpAddress(value: string): boolean {
  return isIP(value) !== 0;
}

export function isPortNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 65535;
}

/** An address block, e.g. 10.1.0.0/16 or 2001:db8::/32 (at most 32 bits for IPv4, 128 for IPv6). */
export function isCidr(value: string): boolean {
  const slash = value.indexOf('/');
  if (slash < 0) return false;
  const address = value.slice(0, slash);
  const bits = Number(value.slice(slash + 1));
  return isIpAddress(address) && value.slice(slash + 1) !== '' && Number.isInteger(bits) && bits >= 0 && bits <= (address.includes(':') ? 128 : 32);
}
