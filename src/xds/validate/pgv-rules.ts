// The per-family checks of protoc-gen-validate (validate.proto): given one value and the
// rule object protobufjs parsed from `(validate.rules).<family>`, report what breaks.
import { isIP, isIPv4, isIPv6 } from 'node:net';
import protobuf from 'protobufjs';

/** One rule family as protobufjs parsed it, e.g. `{ min_len: 1, well_known_regex: 'HTTP_HEADER_NAME' }`. */
export type Rules = Readonly<Record<string, unknown>>;
/** Receives the rule's key inside its family ("min_len") and a sentence saying what is wrong. */
export type Report = (rule: string, message: string) => void;
type Num = number | bigint;

/** Every key each family's checker evaluates; anything else in a proto is reported by unsupportedRulesIn. */
export const KNOWN_RULE_KEYS: Readonly<Record<string, ReadonlySet<string>>> = {
  message: new Set(['required', 'skip']),
  string: new Set(['const', 'len', 'min_len', 'max_len', 'len_bytes', 'min_bytes', 'max_bytes', 'pattern',
    'prefix', 'suffix', 'contains', 'not_contains', 'in', 'not_in', 'hostname', 'ip', 'ipv4', 'ipv6',
    'address', 'uuid', 'well_known_regex', 'strict', 'ignore_empty']),
  bytes: new Set(['const', 'len', 'min_len', 'max_len', 'pattern', 'prefix', 'suffix', 'contains', 'in',
    'not_in', 'ip', 'ipv4', 'ipv6', 'ignore_empty']),
  bool: new Set(['const']),
  enum: new Set(['const', 'defined_only', 'in', 'not_in']),
  duration: new Set(['required', 'const', 'lt', 'lte', 'gt', 'gte', 'in', 'not_in']),
  timestamp: new Set(['required', 'const', 'lt', 'lte', 'gt', 'gte', 'lt_now', 'gt_now', 'within']),
  any: new Set(['required', 'in', 'not_in']),
  repeated: new Set(['min_items', 'max_items', 'unique', 'items', 'ignore_empty']),
  map: new Set(['min_pairs', 'max_pairs', 'no_sparse', 'keys', 'values', 'ignore_empty']),
  ...Object.fromEntries(
    ['int32', 'int64', 'uint32', 'uint64', 'sint32', 'sint64', 'fixed32', 'fixed64', 'sfixed32', 'sfixed64', 'float', 'double']
      .map((family) => [family, new Set(['const', 'lt', 'lte', 'gt', 'gte', 'in', 'not_in', 'ignore_empty'])]),
  ),
};

export function isRules(value: unknown): value is Rules {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** protobufjs keeps a rule given once as a scalar and a repeated one (`in: "a" in: "b"`) as an array. */
export function ruleList(value: unknown): unknown[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

function isLongLike(value: unknown): value is { low: number; high: number; unsigned?: boolean } {
  return typeof value === 'object' && value !== null && 'low' in value && 'high' in value;
}

/** Any integer protobufjs may hand us (number, decimal string, Long) as an exact bigint. */
export function toBigInt(value: unknown): bigint | undefined {
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? BigInt(Math.trunc(value)) : undefined;
  if (typeof value === 'string' && /^-?\d+$/.test(value)) return BigInt(value);
  if (isLongLike(value)) {
    const bits = (BigInt(value.high >>> 0) << 32n) | BigInt(value.low >>> 0);
    return value.unsigned ? bits : BigInt.asIntN(64, bits);
  }
  return undefined;
}

function toFloat(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && value.trim() !== '' && !Number.isNaN(Number(value))) return Number(value);
  return undefined;
}

/** Duration/Timestamp (`{seconds, nanos}`, either may be missing: `gt {}` means zero) as total nanoseconds. */
export function toNanos(value: unknown): bigint | undefined {
  if (!isRules(value)) return undefined;
  const seconds = toBigInt(value['seconds'] ?? 0);
  const nanos = toBigInt(value['nanos'] ?? 0);
  return seconds === undefined || nanos === undefined ? undefined : seconds * 1_000_000_000n + nanos;
}

export function formatNanos(nanos: bigint): string {
  const sign = nanos < 0n ? '-' : '';
  const abs = nanos < 0n ? -nanos : nanos;
  const whole = abs / 1_000_000_000n;
  const frac = (abs % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  return `${sign}${whole}${frac ? '.' + frac : ''}s`;
}

function sameNum(a: Num, b: Num): boolean {
  return typeof a === typeof b ? a === b : Number(a) === Number(b);
}

/** lt/lte/gt/gte with PGV's meaning: a lower bound above the upper one means "outside the range". */
function checkRange(value: Num, r: Rules, convert: (x: unknown) => Num | undefined, format: (x: Num) => string, report: Report): void {
  const upperKey = r['lt'] !== undefined ? 'lt' : r['lte'] !== undefined ? 'lte' : undefined;
  const lowerKey = r['gt'] !== undefined ? 'gt' : r['gte'] !== undefined ? 'gte' : undefined;
  const upper = upperKey ? convert(r[upperKey]) : undefined;
  const lower = lowerKey ? convert(r[lowerKey]) : undefined;
  const underUpper = upper === undefined || (upperKey === 'lt' ? value < upper : value <= upper);
  const overLower = lower === undefined || (lowerKey === 'gt' ? value > lower : value >= lower);
  if (upper !== undefined && lower !== undefined && upperKey && lowerKey) {
    const bothInclusive = upperKey === 'lte' && lowerKey === 'gte';
    // Equal inclusive bounds are the one-point range [x, x], not an empty "outside" range.
    const inside = upper > lower || (bothInclusive && sameNum(upper, lower));
    const open = lowerKey === 'gt' ? '(' : '[';
    const close = upperKey === 'lt' ? ')' : ']';
    if (inside && !(underUpper && overLower)) {
      report(overLower ? upperKey : lowerKey, `must be inside range ${open}${format(lower)}, ${format(upper)}${close}, got ${format(value)}`);
    } else if (!inside && !underUpper && !overLower) {
      const outOpen = upperKey === 'lt' ? '[' : '(';
      const outClose = lowerKey === 'gt' ? ']' : ')';
      report(lowerKey, `must be outside range ${outOpen}${format(upper)}, ${format(lower)}${outClose}, got ${format(value)}`);
    }
    return;
  }
  if (upper !== undefined && !underUpper) report(upperKey ?? 'lt', `must be ${upperKey === 'lt' ? 'less than' : 'at most'} ${format(upper)}, got ${format(value)}`);
  if (lower !== undefined && !overLower) report(lowerKey ?? 'gt', `must be ${lowerKey === 'gt' ? 'greater than' : 'at least'} ${format(lower)}, got ${format(value)}`);
}

function checkConstInNotIn<T>(value: T, r: Rules, convert: (x: unknown) => T | undefined, same: (a: T, b: T) => boolean,
  format: (x: T) => string, report: Report): void {
  const constant = r['const'] === undefined ? undefined : convert(r['const']);
  if (constant !== undefined && !same(value, constant)) report('const', `must equal ${format(constant)}, got ${format(value)}`);
  const allowed = ruleList(r['in']).map(convert).filter((x): x is T => x !== undefined);
  if (allowed.length > 0 && !allowed.some((x) => same(value, x))) {
    report('in', `must be one of [${allowed.map(format).join(', ')}], got ${format(value)}`);
  }
  const banned = ruleList(r['not_in']).map(convert).filter((x): x is T => x !== undefined);
  if (banned.some((x) => same(value, x))) report('not_in', `must not be one of [${banned.map(format).join(', ')}]`);
}

/** Integer and floating-point families, also used for the inner value of the wrapper types. */
export function checkNumberRules(value: unknown, r: Rules, floating: boolean, report: Report): void {
  const convert = floating ? toFloat : toBigInt;
  const v = convert(value);
  if (v === undefined) return;
  if (r['ignore_empty'] === true && sameNum(v, 0)) return;
  const format = (x: Num): string => x.toString();
  checkConstInNotIn<Num>(v, r, convert, sameNum, format, report);
  checkRange(v, r, convert, format, report);
}

export function checkBoolRules(value: boolean, r: Rules, report: Report): void {
  if (typeof r['const'] === 'boolean' && value !== r['const']) report('const', `must be ${r['const']}`);
}

export function checkEnumRules(value: number, type: protobuf.Enum, r: Rules, report: Report): void {
  const convert = (x: unknown): number | undefined =>
    typeof x === 'number' ? x : typeof x === 'string' ? type.values[x] : undefined;
  const format = (x: number): string => type.valuesById[x] ?? String(x);
  checkConstInNotIn(value, r, convert, (a, b) => a === b, format, report);
  if (r['defined_only'] === true && type.valuesById[value] === undefined) {
    report('defined_only', `${value} is not a defined value of ${type.fullName.slice(1)}`);
  }
}

/** Duration and Timestamp share PGV's comparison rules; both arrive here as total nanoseconds. */
export function checkTimeRules(nanos: bigint, r: Rules, report: Report, timestamp: boolean): void {
  const format = (x: Num): string => (timestamp ? new Date(Number(BigInt(x) / 1_000_000n)).toISOString() : formatNanos(BigInt(x)));
  checkConstInNotIn<Num>(nanos, r, toNanos, sameNum, format, report);
  checkRange(nanos, r, toNanos, format, report);
  if (!timestamp) return;
  const now = BigInt(Date.now()) * 1_000_000n;
  if (r['lt_now'] === true && nanos >= now) report('lt_now', 'must be in the past');
  if (r['gt_now'] === true && nanos <= now) report('gt_now', 'must be in the future');
  const within = toNanos(r['within']);
  if (within !== undefined && (nanos - now > within || now - nanos > within)) {
    report('within', `must be within ${formatNanos(within)} of now`);
  }
}

export function checkAnyRules(typeUrl: string, r: Rules, report: Report): void {
  const allowed = ruleList(r['in']).map(String);
  if (allowed.length > 0 && !allowed.includes(typeUrl)) report('in', `type URL must be one of [${allowed.join(', ')}], got ${typeUrl}`);
  if (ruleList(r['not_in']).map(String).includes(typeUrl)) report('not_in', `type URL ${typeUrl} is not allowed`);
}

// PGV's well-known header patterns (validate.proto KnownRegex); `strict: false` swaps both for a
// loose one that only forbids NUL, CR and LF. The `+-.` range in the name class is PGV's own.
const HEADER_NAME = /^:?[0-9a-zA-Z!#$%&'*+-.^_|~`]+$/;
// eslint-disable-next-line no-control-regex -- control characters are exactly what these rules forbid
const HEADER_VALUE = /^[^\u0000-\u0008\u000A-\u001F\u007F]*$/;
// eslint-disable-next-line no-control-regex -- see above
const HEADER_LOOSE = /^[^\u0000\u000A\u000D]*$/;
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

const patternCache = new Map<string, RegExp | null>();

/** RE2 approximated by a JS RegExp with the 'u' flag: the syntax shared by the two covers Envoy's patterns. */
function compilePattern(pattern: string): RegExp | null {
  let compiled = patternCache.get(pattern);
  if (compiled !== undefined) return compiled;
  try {
    compiled = new RegExp(pattern, 'u');
  } catch {
    // Some RE2-valid escapes are syntax errors under 'u'; retry without it before giving up.
    try { compiled = new RegExp(pattern); } catch { compiled = null; }
  }
  patternCache.set(pattern, compiled);
  return compiled;
}

function checkPattern(text: string, r: Rules, report: Report): void {
  if (typeof r['pattern'] !== 'string') return;
  const regex = compilePattern(r['pattern']);
  if (!regex) report('pattern', `pattern ${r['pattern']} cannot be compiled, so nothing can match it`);
  else if (!regex.test(text)) report('pattern', `must match ${r['pattern']}`);
}

function isHostname(text: string): boolean {
  const host = text.endsWith('.') ? text.slice(0, -1) : text;
  if (host.length === 0 || host.length > 253) return false;
  return host.split('.').every((label) => /^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$/.test(label));
}

function checkWellKnownString(value: string, r: Rules, report: Report): void {
  if (r['hostname'] === true && !isHostname(value)) report('hostname', `"${value}" is not a valid hostname`);
  if (r['ip'] === true && isIP(value) === 0) report('ip', `"${value}" is not an IP address`);
  if (r['ipv4'] === true && !isIPv4(value)) report('ipv4', `"${value}" is not an IPv4 address`);
  if (r['ipv6'] === true && !isIPv6(value)) report('ipv6', `"${value}" is not an IPv6 address`);
  if (r['address'] === true && isIP(value) === 0 && !isHostname(value)) report('address', `"${value}" is neither a hostname nor an IP address`);
  if (r['uuid'] === true && !UUID.test(value)) report('uuid', `"${value}" is not a UUID`);
  const known = r['well_known_regex'];
  if (known === 'HTTP_HEADER_NAME' || known === 'HTTP_HEADER_VALUE' || known === 1 || known === 2) {
    const isName = known === 'HTTP_HEADER_NAME' || known === 1;
    const strict = r['strict'] !== false;
    const regex = !strict ? HEADER_LOOSE : isName ? HEADER_NAME : HEADER_VALUE;
    const what = isName ? 'HTTP header name' : 'HTTP header value';
    if (!regex.test(value)) report('well_known_regex', `${JSON.stringify(value)} is not a valid ${strict ? 'strict' : 'loose'} ${what}`);
  }
}

/** PGV measures string length in Unicode code points (Go runes), not UTF-16 units. */
function codePoints(text: string): number {
  let count = 0;
  for (const _ of text) count++;
  return count;
}

export function checkStringRules(value: string, r: Rules, report: Report): void {
  if (r['ignore_empty'] === true && value === '') return;
  const chars = codePoints(value);
  const bytes = Buffer.byteLength(value, 'utf8');
  const num = (key: string): number | undefined => {
    const n = toBigInt(r[key]);
    return n === undefined ? undefined : Number(n);
  };
  const checkCount = (key: string, actual: number, unit: string, ok: (limit: number) => boolean, words: string): void => {
    const limit = num(key);
    if (limit !== undefined && !ok(limit)) report(key, `must be ${words} ${limit} ${unit}, got ${actual}`);
  };
  checkCount('len', chars, 'characters', (n) => chars === n, 'exactly');
  checkCount('min_len', chars, 'characters', (n) => chars >= n, 'at least');
  checkCount('max_len', chars, 'characters', (n) => chars <= n, 'at most');
  checkCount('len_bytes', bytes, 'bytes', (n) => bytes === n, 'exactly');
  checkCount('min_bytes', bytes, 'bytes', (n) => bytes >= n, 'at least');
  checkCount('max_bytes', bytes, 'bytes', (n) => bytes <= n, 'at most');
  const text = (key: string): string | undefined => (typeof r[key] === 'string' ? r[key] : undefined);
  const prefix = text('prefix');
  if (prefix !== undefined && !value.startsWith(prefix)) report('prefix', `must start with "${prefix}"`);
  const suffix = text('suffix');
  if (suffix !== undefined && !value.endsWith(suffix)) report('suffix', `must end with "${suffix}"`);
  const contains = text('contains');
  if (contains !== undefined && !value.includes(contains)) report('contains', `must contain "${contains}"`);
  const notContains = text('not_contains');
  if (notContains !== undefined && value.includes(notContains)) report('not_contains', `must not contain "${notContains}"`);
  const quote = (x: string): string => JSON.stringify(x);
  checkConstInNotIn(value, r, (x) => (typeof x === 'string' ? x : undefined), (a, b) => a === b, quote, report);
  checkPattern(value, r, report);
  checkWellKnownString(value, r, report);
}

export function checkBytesRules(value: Uint8Array, r: Rules, report: Report): void {
  if (r['ignore_empty'] === true && value.length === 0) return;
  const buf = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  // protobufjs parses a bytes literal in an option into a string of one char per byte.
  const literal = (x: unknown): Buffer | undefined => (typeof x === 'string' ? Buffer.from(x, 'latin1') : undefined);
  const limit = (key: string): number | undefined => {
    const n = toBigInt(r[key]);
    return n === undefined ? undefined : Number(n);
  };
  const len = limit('len');
  if (len !== undefined && buf.length !== len) report('len', `must be exactly ${len} bytes, got ${buf.length}`);
  const min = limit('min_len');
  if (min !== undefined && buf.length < min) report('min_len', `must be at least ${min} bytes, got ${buf.length}`);
  const max = limit('max_len');
  if (max !== undefined && buf.length > max) report('max_len', `must be at most ${max} bytes, got ${buf.length}`);
  const prefix = literal(r['prefix']);
  if (prefix && !buf.subarray(0, prefix.length).equals(prefix)) report('prefix', 'must start with the given bytes');
  const suffix = literal(r['suffix']);
  if (suffix && (suffix.length > buf.length || !buf.subarray(buf.length - suffix.length).equals(suffix))) {
    report('suffix', 'must end with the given bytes');
  }
  const contains = literal(r['contains']);
  if (contains && !buf.includes(contains)) report('contains', 'must contain the given bytes');
  const hex = (x: Buffer): string => x.toString('hex');
  checkConstInNotIn(buf, r, literal, (a, b) => a.equals(b), hex, report);
  checkPattern(buf.toString('utf8'), r, report);
  if (r['ip'] === true && buf.length !== 4 && buf.length !== 16) report('ip', `must be 4 or 16 bytes, got ${buf.length}`);
  if (r['ipv4'] === true && buf.length !== 4) report('ipv4', `must be 4 bytes, got ${buf.length}`);
  if (r['ipv6'] === true && buf.length !== 16) report('ipv6', `must be 16 bytes, got ${buf.length}`);
}
