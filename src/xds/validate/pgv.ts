// Checks messages against the protoc-gen-validate rules written in Envoy's own .proto files.
// Rules are read from protobufjs reflection (field.parsedOptions), never from a table here,
// so a refreshed proto tree brings its new rules with it.
import protobuf from 'protobufjs';
import { fromProtoJson, ProtoJsonError } from '../proto-json.ts';
import { envoyRoot } from '../protos.ts';
import { messageNameOf } from '../type-urls.ts';
import {
  checkAnyRules, checkBoolRules, checkBytesRules, checkEnumRules, checkNumberRules, checkStringRules,
  checkTimeRules, isRules, KNOWN_RULE_KEYS, toBigInt, toNanos, type Report, type Rules,
} from './pgv-rules.ts';

/** One broken rule: where (proto3 JSON field path), which rule ("string.min_len"), and why. */
export interface RuleViolation {
  path: string;
  rule: string;
  message: string;
}

type Slot =
  | { kind: 'message'; type: protobuf.Type }
  | { kind: 'enum'; type: protobuf.Enum }
  | { kind: 'scalar'; scalar: string };

interface Walk {
  readonly root: protobuf.Root;
  readonly out: RuleViolation[];
}

const WRAPPER_FAMILY: Readonly<Record<string, string>> = {
  '.google.protobuf.DoubleValue': 'double', '.google.protobuf.FloatValue': 'float',
  '.google.protobuf.Int64Value': 'int64', '.google.protobuf.UInt64Value': 'uint64',
  '.google.protobuf.Int32Value': 'int32', '.google.protobuf.UInt32Value': 'uint32',
  '.google.protobuf.BoolValue': 'bool', '.google.protobuf.StringValue': 'string',
  '.google.protobuf.BytesValue': 'bytes',
};
const FLOAT_TYPES = new Set(['double', 'float']);
const MAX_ENVOY_DURATION_SECONDS = 9_223_372_036n;
const MAX_ENVOY_DURATION_NANOS = (MAX_ENVOY_DURATION_SECONDS + 1n) * 1_000_000_000n - 1n;
const LONG_KEY_TYPES = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);

function mergeRules(into: Record<string, unknown>, from: Rules): void {
  for (const [key, value] of Object.entries(from)) {
    const existing = into[key];
    if (isRules(existing) && isRules(value)) {
      const nested = { ...existing };
      mergeRules(nested, value);
      into[key] = nested;
    } else if (existing !== undefined) {
      into[key] = [existing, value].flat();
    } else {
      into[key] = value;
    }
  }
}

/** Rebuilds nested rules from flattened option keys, for types loaded from JSON descriptors without parsedOptions. */
function rulesFromFlatOptions(options: Readonly<Record<string, unknown>>): Rules | undefined {
  const prefix = '(validate.rules).';
  const rules: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(options)) {
    if (!key.startsWith(prefix)) continue;
    const parts = key.slice(prefix.length).split('.');
    const last = parts.pop();
    if (last === undefined) continue;
    let node = rules;
    for (const part of parts) {
      const next = node[part];
      const child: Record<string, unknown> = isRules(next) ? { ...next } : {};
      node[part] = child;
      node = child;
    }
    node[last] = value;
  }
  return Object.keys(rules).length > 0 ? rules : undefined;
}

const rulesCache = new WeakMap<protobuf.FieldBase, Rules | null>();

/** The `(validate.rules)` of a field as one object, e.g. `{ string: { min_len: 1 } }`. */
export function fieldRules(field: protobuf.FieldBase): Rules | undefined {
  const cached = rulesCache.get(field);
  if (cached !== undefined) return cached ?? undefined;
  let rules: Rules | undefined;
  const parsed = (field.parsedOptions ?? []) as unknown[];
  const entries = parsed.filter(isRules).map((o) => o['(validate.rules)']).filter(isRules);
  if (entries.length > 0) {
    const merged: Record<string, unknown> = {};
    for (const entry of entries) mergeRules(merged, entry);
    rules = merged;
  } else if (field.options) {
    rules = rulesFromFlatOptions(field.options);
  }
  rulesCache.set(field, rules ?? null);
  return rules;
}

function optionIsTrue(object: protobuf.ReflectionObject | protobuf.OneOf, name: string): boolean {
  if (object.options?.[name] === true) return true;
  const parsed = (object as { parsedOptions?: unknown }).parsedOptions;
  return Array.isArray(parsed) && parsed.some((o) => isRules(o) && o[name] === true);
}

function slotOf(field: protobuf.FieldBase): Slot {
  field.resolve();
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Type) return { kind: 'message', type: resolved };
  if (resolved instanceof protobuf.Enum) return { kind: 'enum', type: resolved };
  return { kind: 'scalar', scalar: field.type };
}

function sub(rules: Rules | undefined, key: string): Rules | undefined {
  const value = rules?.[key];
  return isRules(value) ? value : undefined;
}

function reporter(walk: Walk, path: string, rulePrefix: string): Report {
  return (rule, message) => walk.out.push({ path, rule: `${rulePrefix}.${rule}`, message });
}

function zeroOf(scalar: string): unknown {
  if (scalar === 'string') return '';
  if (scalar === 'bool') return false;
  if (scalar === 'bytes') return new Uint8Array();
  return 0;
}

function checkScalar(family: string, value: unknown, rules: Rules | undefined, report: Report, enumType?: protobuf.Enum): void {
  const r = sub(rules, enumType ? 'enum' : family);
  if (!r) return;
  if (enumType) {
    checkEnumRules(Number(value ?? 0), enumType, r, report);
  } else if (family === 'string') {
    checkStringRules(typeof value === 'string' ? value : '', r, report);
  } else if (family === 'bytes') {
    checkBytesRules(value instanceof Uint8Array ? value : new Uint8Array(), r, report);
  } else if (family === 'bool') {
    checkBoolRules(value === true, r, report);
  } else {
    checkNumberRules(value ?? 0, r, FLOAT_TYPES.has(family), report);
  }
}

function isRequired(rules: Rules | undefined): boolean {
  return ['message', 'duration', 'timestamp', 'any'].some((family) => sub(rules, family)?.['required'] === true);
}

function checkAny(any: Record<string, unknown>, rules: Rules | undefined, path: string, walk: Walk, prefix: string): void {
  const typeUrl = typeof any['type_url'] === 'string' ? any['type_url'] : '';
  const anyRules = sub(rules, 'any');
  if (anyRules) checkAnyRules(typeUrl, anyRules, reporter(walk, path, `${prefix}any`));
  let inner: protobuf.Type;
  try {
    inner = walk.root.lookupType(messageNameOf(typeUrl));
  } catch {
    walk.out.push({ path, rule: 'any.type_url', message: `"${typeUrl}" is not a type in the loaded protos, so its rules cannot be checked` });
    return;
  }
  const bytes = any['value'] instanceof Uint8Array ? any['value'] : new Uint8Array();
  let decoded: protobuf.Message;
  try {
    decoded = inner.decode(bytes);
  } catch (error) {
    walk.out.push({ path, rule: 'any.value', message: `cannot decode as ${typeUrl}: ${String(error)}` });
    return;
  }
  checkValue({ kind: 'message', type: inner }, decoded, true, undefined, path, walk, '');
}

/** One value of a field (or one item / map key / map value) against its rules; `prefix` names the container rule. */
function checkValue(slot: Slot, value: unknown, present: boolean, rules: Rules | undefined, path: string, walk: Walk, prefix: string): void {
  if (slot.kind === 'scalar') {
    checkScalar(slot.scalar, present ? value : zeroOf(slot.scalar), rules, reporter(walk, path, `${prefix}${slot.scalar}`));
    return;
  }
  if (slot.kind === 'enum') {
    checkScalar('enum', present ? value : 0, rules, reporter(walk, path, `${prefix}enum`), slot.type);
    return;
  }
  if (!present || typeof value !== 'object' || value === null) {
    if (isRequired(rules)) {
      const family = ['message', 'duration', 'timestamp', 'any'].find((f) => sub(rules, f)?.['required'] === true) ?? 'message';
      walk.out.push({ path, rule: `${prefix}${family}.required`, message: 'is required' });
    }
    return;
  }
  const message = value as Record<string, unknown>;
  const name = slot.type.fullName;
  const wrapperFamily = WRAPPER_FAMILY[name];
  if (wrapperFamily) {
    const inner = message['value'] ?? zeroOf(wrapperFamily);
    checkScalar(wrapperFamily, inner, rules, reporter(walk, path, `${prefix}${wrapperFamily}`));
    return;
  }
  if (name === '.google.protobuf.Duration' || name === '.google.protobuf.Timestamp') {
    const family = name === '.google.protobuf.Duration' ? 'duration' : 'timestamp';
    const r = sub(rules, family);
    const nanos = toNanos(message);
    if (r && nanos !== undefined) checkTimeRules(nanos, r, reporter(walk, path, `${prefix}${family}`), family === 'timestamp');
    // Not a validate.rules rule: Envoy converts durations to int64 nanoseconds and refuses larger ones.
    if (family === 'duration' && nanos !== undefined && nanos > MAX_ENVOY_DURATION_NANOS) {
      walk.out.push({ path, rule: 'envoy.duration', message: `Duration out-of-range: Envoy holds durations as int64 nanoseconds, at most ${MAX_ENVOY_DURATION_SECONDS}s` });
    }
    return;
  }
  if (sub(rules, 'message')?.['skip'] === true) return;
  if (name === '.google.protobuf.Any') {
    checkAny(message, rules, path, walk, prefix);
    return;
  }
  checkMessage(slot.type, message, path, walk);
}

function join(path: string, name: string): string {
  return path ? `${path}.${name}` : name;
}

function isPresent(message: Record<string, unknown>, name: string): boolean {
  return Object.prototype.hasOwnProperty.call(message, name) && message[name] !== null && message[name] !== undefined;
}

function checkRepeated(field: protobuf.FieldBase, message: Record<string, unknown>, rules: Rules | undefined, path: string, walk: Walk): void {
  const raw = message[field.name];
  const items = Array.isArray(raw) ? (raw as unknown[]) : [];
  const r = sub(rules, 'repeated');
  if (r && !(r['ignore_empty'] === true && items.length === 0)) {
    const report = reporter(walk, path, 'repeated');
    const min = toBigInt(r['min_items']);
    if (min !== undefined && BigInt(items.length) < min) report('min_items', `must have at least ${min} items, got ${items.length}`);
    const max = toBigInt(r['max_items']);
    if (max !== undefined && BigInt(items.length) > max) report('max_items', `must have at most ${max} items, got ${items.length}`);
    if (r['unique'] === true) {
      const keys = items.map((item) => (item instanceof Uint8Array ? Buffer.from(item).toString('hex') : String(toBigInt(item) ?? item)));
      const duplicate = keys.find((key, i) => keys.indexOf(key) !== i);
      if (duplicate !== undefined) report('unique', `items must be unique; ${duplicate} appears more than once`);
    }
  }
  const slot = slotOf(field);
  const itemRules = sub(r, 'items');
  items.forEach((item, i) => {
    checkValue(slot, item, true, itemRules, `${path}[${i}]`, walk, 'repeated.items.');
  });
}

function mapKey(keyType: string, key: string): unknown {
  if (keyType === 'bool') return key === 'true';
  if (keyType === 'string') return key;
  // protobufjs decodes 64-bit map keys into 8-char hash strings rather than numbers.
  if (LONG_KEY_TYPES.has(keyType) && !/^-?\d+$/.test(key)) return protobuf.util.LongBits.fromHash(key).toLong(keyType.startsWith('u'));
  return Number(key);
}

function checkMap(field: protobuf.MapField, message: Record<string, unknown>, rules: Rules | undefined, path: string, walk: Walk): void {
  const raw = message[field.name];
  const entries = typeof raw === 'object' && raw !== null ? Object.entries(raw as Record<string, unknown>) : [];
  const r = sub(rules, 'map');
  const empty = entries.length === 0;
  if (r && !(r['ignore_empty'] === true && empty)) {
    const report = reporter(walk, path, 'map');
    const min = toBigInt(r['min_pairs']);
    if (min !== undefined && BigInt(entries.length) < min) report('min_pairs', `must have at least ${min} entries, got ${entries.length}`);
    const max = toBigInt(r['max_pairs']);
    if (max !== undefined && BigInt(entries.length) > max) report('max_pairs', `must have at most ${max} entries, got ${entries.length}`);
    if (r['no_sparse'] === true && entries.some(([, v]) => v === null || v === undefined)) report('no_sparse', 'map values must all be set');
  }
  const valueSlot = slotOf(field);
  const keySlot: Slot = { kind: 'scalar', scalar: field.keyType };
  for (const [key, value] of entries) {
    const entryPath = `${path}[${JSON.stringify(key)}]`;
    checkValue(keySlot, mapKey(field.keyType, key), true, sub(r, 'keys'), entryPath, walk, 'map.keys.');
    checkValue(valueSlot, value, value !== null && value !== undefined, sub(r, 'values'), entryPath, walk, 'map.values.');
  }
}

function checkMessage(type: protobuf.Type, message: Record<string, unknown>, path: string, walk: Walk): void {
  if (optionIsTrue(type, '(validate.disabled)') || optionIsTrue(type, '(validate.ignored)')) return;
  for (const oneof of type.oneofsArray) {
    if (!optionIsTrue(oneof, '(validate.required)')) continue;
    if (!oneof.fieldsArray.some((f) => isPresent(message, f.name))) {
      walk.out.push({ path: join(path, oneof.name), rule: 'oneof.required', message: `one of ${oneof.oneof.join(', ')} must be set` });
    }
  }
  for (const field of type.fieldsArray) {
    const rules = fieldRules(field);
    const fieldPath = join(path, field.name);
    if (field instanceof protobuf.MapField) {
      checkMap(field, message, rules, fieldPath, walk);
    } else if (field.repeated) {
      checkRepeated(field, message, rules, fieldPath, walk);
    } else {
      const present = isPresent(message, field.name);
      // Rules on a oneof member (or proto3 `optional`) apply only when that field is the one set.
      if (field.partOf && !present) continue;
      const slot = slotOf(field);
      if (!rules && slot.kind !== 'message') continue;
      checkValue(slot, message[field.name], present, rules, fieldPath, walk, '');
    }
  }
}

/** Every `(validate.rules)` violation in `message` (or its wire bytes), recursing into Any values. */
export function checkValidateRules(type: protobuf.Type, message: protobuf.Message | Uint8Array): RuleViolation[] {
  const decoded = message instanceof Uint8Array ? type.decode(message) : message;
  const walk: Walk = { root: type.root, out: [] };
  checkValue({ kind: 'message', type }, decoded, true, undefined, '', walk, '');
  return walk.out;
}

/** Converts proto3 JSON of `typeUrl` (strictly, via proto-json) and checks it; JSON that does not convert is a violation too. */
export function checkResourceJson(typeUrl: string, json: unknown): RuleViolation[] {
  let type: protobuf.Type;
  try {
    type = envoyRoot().lookupType(messageNameOf(typeUrl));
  } catch {
    return [{ path: '', rule: 'type_url', message: `${typeUrl} is not a message type in the loaded Envoy protos` }];
  }
  let message: protobuf.Message;
  try {
    message = fromProtoJson(type, json);
  } catch (error) {
    if (!(error instanceof ProtoJsonError)) throw error;
    return [{ path: error.path, rule: 'proto3_json', message: error.message }];
  }
  return checkValidateRules(type, message);
}

function unknownKeys(rules: Rules, where: string, out: Set<string>): void {
  for (const [family, body] of Object.entries(rules)) {
    const known = KNOWN_RULE_KEYS[family];
    if (!known) {
      out.add(`${where}: ${family}`);
      continue;
    }
    if (!isRules(body)) continue;
    for (const [key, value] of Object.entries(body)) {
      if (!known.has(key)) out.add(`${where}: ${family}.${key}`);
      else if ((key === 'items' || key === 'keys' || key === 'values') && isRules(value)) unknownKeys(value, where, out);
    }
  }
}

/** Rules used somewhere in `root` that this checker cannot evaluate, as "Type.field: family.rule"; empty means full coverage. */
export function unsupportedRulesIn(root: protobuf.Root): string[] {
  const out = new Set<string>();
  const visit = (namespace: protobuf.NamespaceBase): void => {
    for (const nested of namespace.nestedArray) {
      if (nested instanceof protobuf.Type) {
        for (const field of nested.fieldsArray) {
          const rules = fieldRules(field);
          if (rules) unknownKeys(rules, `${nested.fullName.slice(1)}.${field.name}`, out);
        }
      }
      if (nested instanceof protobuf.Namespace) visit(nested);
    }
  };
  visit(root);
  return [...out].sort();
}
