// Field-level checks shared by the Istio rule validators: each problem gets the path of its
// field and a message that says how to fix it.
import { parseDuration } from '../model/duration.ts';
import { checkRe2Regex } from '../model/re2.ts';
import type { ErrorCode } from '../errors.ts';
import type { ValidationIssue } from '../model/rules.ts';
import type { Fields } from './object-fields.ts';
import { describeType, isDns1123Label, isFields } from './object-fields.ts';
import { exportToProblems } from '../model/visibility.ts';

const STRING_MATCH_FIELDS = ['exact', 'prefix', 'regex'];

/** Collects issues for one object; `error`/`warn` take a field path and a message with its fix. */
export class IssueList {
  readonly issues: ValidationIssue[] = [];
  constructor(private readonly code: ErrorCode) {}

  error(path: string, message: string): void {
    this.issues.push({ code: this.code, severity: 'error', path, message });
  }

  warn(path: string, message: string, code: ErrorCode = this.code): void {
    this.issues.push({ code, severity: 'warning', path, message });
  }
}

/** Lists of maps: reports non-map entries, returns the maps with their index. */
export function mapsIn(value: unknown, path: string, what: string, issues: IssueList): [number, Fields][] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    issues.error(path, `must be a list of ${what}, got ${describeType(value)}: write it as a YAML list ("- ...")`);
    return [];
  }
  const out: [number, Fields][] = [];
  value.forEach((entry: unknown, index) => {
    if (isFields(entry)) out.push([index, entry]);
    else issues.error(`${path}[${index}]`, `must be a ${what}, got ${describeType(entry)}: write it as a map of fields`);
  });
  return out;
}

export function stringsIn(value: unknown, path: string, issues: IssueList): [number, string][] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    issues.error(path, `must be a list of strings, got ${describeType(value)}: write it as a YAML list ("- ...")`);
    return [];
  }
  const out: [number, string][] = [];
  value.forEach((entry: unknown, index) => {
    if (typeof entry === 'string') out.push([index, entry]);
    else issues.error(`${path}[${index}]`, `must be a string, got ${describeType(entry)}: quote it`);
  });
  return out;
}

/** Istio's exportTo rules for the entries of a list already read as strings (`~` only for ServiceEntries). */
export function checkExportTo(entries: readonly string[], path: string, namespace: string, allowNone: boolean, error: (path: string, message: string) => void): void {
  for (const problem of exportToProblems(entries, namespace, allowNone, isDns1123Label)) error(path, problem);
}

/** `exactlyOne` for uri; headers allow `{}`, Istio's way of saying "the header is present". */
export function checkStringMatch(value: unknown, path: string, exactlyOne: boolean, issues: IssueList): void {
  if (value === null || value === undefined) {
    issues.error(path, `is empty: give it one of exact, prefix or regex, e.g. { exact: "jason" }`);
    return;
  }
  if (!isFields(value)) {
    issues.error(path, `must be a map with one of exact, prefix or regex, got ${describeType(value)}: write e.g. { exact: ${JSON.stringify(value)} }`);
    return;
  }
  const present = STRING_MATCH_FIELDS.filter((key) => value[key] !== undefined);
  if (present.length > 1) {
    issues.error(path, `has ${present.join(' and ')}, but a match takes exactly one: keep one of exact, prefix or regex`);
  } else if (present.length === 0 && exactlyOne) {
    issues.error(path, `has none of exact, prefix or regex: add exactly one, e.g. { prefix: "/" }`);
  }
  for (const key of present) {
    const operand = value[key];
    if (typeof operand !== 'string') {
      issues.error(`${path}.${key}`, `must be a string, got ${describeType(operand)}: quote it`);
    } else if (key === 'regex') {
      checkRegex(operand, `${path}.regex`, issues);
    } else if (key === 'prefix' && operand === '') {
      issues.error(`${path}.prefix`, 'is empty, which Istio refuses: write prefix: "/" to match everything, or remove the match');
    }
  }
}

/** Istio's regex rules: not empty, at most 1024 characters, and RE2 (as Envoy compiles it). */
export function checkRegex(pattern: string, path: string, issues: IssueList): void {
  if (pattern === '') {
    issues.error(path, 'is empty, which Istio refuses: write a pattern, or use prefix: "/" to match everything');
    return;
  }
  if (pattern.length > 1024) {
    issues.error(path, `is ${pattern.length} characters, over the 1024 Istio allows: shorten the pattern`);
    return;
  }
  const problem = checkRe2Regex(pattern);
  if (problem) issues.error(path, `does not compile as an RE2 regex (${problem}): fix the pattern (see https://github.com/google/re2/wiki/Syntax)`);
}


/** google.protobuf.Duration's range, which Envoy's durations share. */
const MAX_DURATION_NANOS = 315_576_000_000n * 1_000_000_000n;

/** A Go-style duration ("1s", "100ms"); Istio refuses anything under a millisecond where a time is required. */
/** Envoy holds durations as int64 nanoseconds; a longer one is refused ("Duration out-of-range"). */
export const MAX_DURATION_SECONDS = 9_223_372_036;

export function checkDuration(value: unknown, path: string, issues: IssueList, options: { allowZero?: boolean; maxSeconds?: number } = {}): void {
  if (value === undefined) return;
  const text = typeof value === 'string' ? value : undefined;
  const nanos = text === undefined ? undefined : parseDuration(text);
  const maxSeconds = options.maxSeconds ?? MAX_DURATION_SECONDS;
  if (nanos === undefined) {
    issues.error(path, `${describeType(value)} is not a duration: write a number with a unit, e.g. "1s", "250ms" or "1m"`);
  } else if (nanos > MAX_DURATION_NANOS) {
    issues.error(path, `"${text ?? ''}" is longer than protobuf's largest duration (315576000000s, about 10,000 years): use a shorter one`);
  } else if (nanos < 1_000_000n && !(options.allowZero && nanos === 0n)) {
    issues.error(path, `"${text ?? ''}" is shorter than 1ms: use a duration of at least 1ms`);
  } else if (nanos % 1_000_000n !== 0n) {
    issues.error(path, `"${text ?? ''}" is finer than a millisecond, which Istio refuses: round it to whole milliseconds`);
  } else if (nanos >= (BigInt(maxSeconds) + 1n) * 1_000_000_000n) {
    issues.error(path, `"${text ?? ''}" is longer than Envoy accepts here (at most ${maxSeconds}s): use a shorter duration`);
  }
}

/** A whole number within [min, max]. */
export function checkInteger(value: unknown, path: string, issues: IssueList, min: number, max = 4_294_967_295): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    issues.error(path, `must be a whole number from ${min} to ${max}, got ${describeType(value)}: fix the number`);
  }
}

/** Istio's Percent message: `{ value: 0..100 }`. */
export function checkPercent(value: unknown, path: string, issues: IssueList): void {
  if (value === undefined) return;
  if (!isFields(value)) {
    issues.error(path, `must be a map like { value: 50 }, got ${describeType(value)}: wrap the number in value`);
    return;
  }
  const number = value['value'];
  if (typeof number !== 'number' || number < 0 || number > 100) {
    issues.error(`${path}.value`, `must be a number from 0 to 100, got ${describeType(number)}: give the percentage of requests`);
  }
}

export function checkEnum(value: unknown, allowed: readonly string[], path: string, issues: IssueList): void {
  if (value === undefined) return;
  if (typeof value !== 'string' || !allowed.includes(value)) {
    issues.error(path, `${describeType(value)} is not one of ${allowed.join(', ')}: use one of them`);
  }
}

export function checkBoolean(value: unknown, path: string, issues: IssueList): void {
  if (value !== undefined && typeof value !== 'boolean') issues.error(path, `must be true or false, got ${describeType(value)}`);
}

/** The map at `path`, or undefined (reporting a non-map). */
export function mapAt(value: unknown, path: string, example: string, issues: IssueList): Fields | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isFields(value)) {
    issues.error(path, `must be a map, got ${describeType(value)}: write e.g. ${example}`);
    return undefined;
  }
  return value;
}

const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

export function isHeaderName(name: string): boolean {
  return HEADER_NAME.test(name);
}

/** Kubernetes' label value: at most 63 characters, alphanumerics with "-", "_" and "." inside. */
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

export function checkLabels(value: unknown, path: string, issues: IssueList): void {
  const labels = mapAt(value, path, 'labels: { version: v1 }', issues);
  for (const [key, label] of Object.entries(labels ?? {})) {
    if (typeof label !== 'string') issues.error(`${path}.${key}`, `must be a string, got ${describeType(label)}: quote it, e.g. ${key}: "${String(label)}"`);
    else if (!LABEL_VALUE.test(label)) issues.error(`${path}.${key}`, `"${label}" is not a label value: at most 63 letters, digits, "-", "_" and ".", starting and ending with a letter or digit`);
  }
}
