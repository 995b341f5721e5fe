// Strict conversion between proto3 JSON (what Envoy's docs and config_dump show, and what
// the generators write) and protobufjs messages. Unknown fields are errors, never dropped.
import protobuf from 'protobufjs';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };
/** JSON as the generated message types describe it: arrays may be read-only, fields may be left undefined. */
export type ReadonlyJson = null | boolean | number | string | readonly ReadonlyJson[] | { readonly [key: string]: ReadonlyJson | undefined };

/**
 * A message built to its generated type (envoy-types.generated.ts), as plain JSON for code that
 * reads resources field by field. The types are JSON by construction (the parameter checks it);
 * only read-only arrays are widened, and no reader writes to what it is given.
 */
export function protoJson(message: { readonly [key: string]: ReadonlyJson | undefined }): JsonObject {
  return message as JsonObject;
}

export class ProtoJsonError extends Error {
  readonly path: string;
  constructor(path: string, reason: string) {
    super(`${path || '<root>'}: ${reason}`);
    this.name = 'ProtoJsonError';
    this.path = path;
  }
}

const WRAPPERS = new Set([
  '.google.protobuf.DoubleValue', '.google.protobuf.FloatValue', '.google.protobuf.Int64Value',
  '.google.protobuf.UInt64Value', '.google.protobuf.Int32Value', '.google.protobuf.UInt32Value',
  '.google.protobuf.BoolValue', '.google.protobuf.StringValue', '.google.protobuf.BytesValue',
]);
const SPECIAL_JSON = new Set([
  ...WRAPPERS, '.google.protobuf.Duration', '.google.protobuf.Timestamp', '.google.protobuf.Struct',
  '.google.protobuf.Value', '.google.protobuf.ListValue',
]);

const LONG_TYPES = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);
const INT32_RANGES: Readonly<Record<string, readonly [number, number]>> = {
  int32: [-2_147_483_648, 2_147_483_647], sint32: [-2_147_483_648, 2_147_483_647], sfixed32: [-2_147_483_648, 2_147_483_647],
  uint32: [0, 4_294_967_295], fixed32: [0, 4_294_967_295],
};

/** protobufjs joins a type's full name anew on every read; every message converted reads it. */
const fullNames = new WeakMap<protobuf.ReflectionObject, string>();

function fullNameOf(type: protobuf.ReflectionObject): string {
  let name = fullNames.get(type);
  if (name === undefined) {
    name = type.fullName;
    fullNames.set(type, name);
  }
  return name;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Parses a proto3 JSON duration ("1.5s", "0.250s") into seconds and nanos. */
export function parseDurationJson(text: string, path = ''): { seconds: number; nanos: number } {
  const match = /^(-)?(\d+)(?:\.(\d{1,9}))?s$/.exec(text);
  if (!match) throw new ProtoJsonError(path, `"${text}" is not a proto3 duration like "1.5s"`);
  const sign = match[1] ? -1 : 1;
  const seconds = Number(match[2]);
  const nanos = Number((match[3] ?? '').padEnd(9, '0'));
  return { seconds: sign * seconds, nanos: sign * nanos };
}

/** Formats seconds + nanos as Envoy prints them: "5s", "0.250s", "1.000001s". */
export function formatDurationJson(seconds: number, nanos: number): string {
  const negative = seconds < 0 || nanos < 0;
  const s = Math.abs(seconds);
  const n = Math.abs(nanos);
  let frac = '';
  if (n !== 0) {
    const digits = n.toString().padStart(9, '0');
    frac = '.' + (n % 1_000_000 === 0 ? digits.slice(0, 3) : n % 1000 === 0 ? digits.slice(0, 6) : digits);
  }
  return `${negative ? '-' : ''}${s}${frac}s`;
}

function wellKnownFromJson(typeName: string, json: unknown, path: string, root: protobuf.Root): Record<string, unknown> {
  if (typeName === '.google.protobuf.Duration') {
    if (typeof json !== 'string') throw new ProtoJsonError(path, 'a duration must be a string like "1s"');
    return parseDurationJson(json, path);
  }
  if (typeName === '.google.protobuf.Timestamp') {
    if (typeof json !== 'string' || Number.isNaN(Date.parse(json))) throw new ProtoJsonError(path, 'a timestamp must be RFC 3339');
    const ms = Date.parse(json);
    return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
  }
  if (WRAPPERS.has(typeName)) {
    const inner = root.lookupType(typeName).fields['value'];
    if (!inner) throw new ProtoJsonError(path, `${typeName} has no value field`);
    return { value: scalarFromJson(inner, json, path) };
  }
  if (typeName === '.google.protobuf.Struct') {
    if (!isPlainObject(json)) throw new ProtoJsonError(path, 'a Struct must be a JSON object');
    return { fields: Object.fromEntries(Object.entries(json).map(([k, v]) => [k, structValueFromJson(v, root)])) };
  }
  if (typeName === '.google.protobuf.ListValue') {
    if (!Array.isArray(json)) throw new ProtoJsonError(path, 'a ListValue must be a JSON array');
    return { values: json.map((v) => structValueFromJson(v, root)) };
  }
  return structValueFromJson(json, root);
}

// google.protobuf.Value's fields by number: protobufjs' built-in copy names them in camelCase.
const VALUE_FIELD_IDS = { null: 1, number: 2, string: 3, bool: 4, struct: 5, list: 6 } as const;
let valueFieldNames: Record<keyof typeof VALUE_FIELD_IDS, string> | undefined;

function valueFields(root: protobuf.Root): Record<keyof typeof VALUE_FIELD_IDS, string> {
  if (valueFieldNames) return valueFieldNames;
  const byId = new Map(root.lookupType('google.protobuf.Value').fieldsArray.map((f) => [f.id, f.name]));
  const names = Object.fromEntries(
    Object.entries(VALUE_FIELD_IDS).map(([kind, id]) => [kind, byId.get(id) ?? `${kind}_value`]),
  ) as Record<keyof typeof VALUE_FIELD_IDS, string>;
  valueFieldNames = names;
  return names;
}

function structValueFromJson(json: unknown, root: protobuf.Root): Record<string, unknown> {
  const f = valueFields(root);
  if (json === null || json === undefined) return { [f.null]: 'NULL_VALUE' };
  if (typeof json === 'number') return { [f.number]: json };
  if (typeof json === 'string') return { [f.string]: json };
  if (typeof json === 'boolean') return { [f.bool]: json };
  if (Array.isArray(json)) return { [f.list]: { values: json.map((v) => structValueFromJson(v, root)) } };
  const fields = Object.fromEntries(Object.entries(json).map(([k, v]) => [k, structValueFromJson(v, root)]));
  return { [f.struct]: { fields } };
}

function scalarFromJson(field: protobuf.Field, json: unknown, path: string): unknown {
  const type = field.type;
  if (field.resolvedType instanceof protobuf.Enum) {
    if (typeof json === 'string') {
      if (!(json in field.resolvedType.values)) {
        throw new ProtoJsonError(path, `"${json}" is not a value of ${field.resolvedType.fullName.slice(1)}`);
      }
      return json;
    }
    if (typeof json === 'number' && Number.isInteger(json)) return json;
    throw new ProtoJsonError(path, 'an enum must be a name or a number');
  }
  switch (type) {
    case 'string':
      if (typeof json !== 'string') throw new ProtoJsonError(path, 'expected a string');
      return json;
    case 'bool':
      if (typeof json !== 'boolean') throw new ProtoJsonError(path, 'expected a boolean');
      return json;
    case 'bytes':
      if (typeof json !== 'string') throw new ProtoJsonError(path, 'bytes must be base64 text');
      return Buffer.from(json, 'base64');
    case 'double':
    case 'float':
      if (typeof json !== 'number') throw new ProtoJsonError(path, 'expected a number');
      return json;
    default: {
      const n = typeof json === 'string' && LONG_TYPES.has(type) ? Number(json) : json;
      if (typeof n !== 'number' || !Number.isInteger(n)) throw new ProtoJsonError(path, `expected an integer (${type})`);
      if (type.startsWith('uint') || type.startsWith('fixed')) {
        if (n < 0) throw new ProtoJsonError(path, `${type} cannot be negative`);
      }
      // protobufjs would wrap a 32-bit value that does not fit; Envoy refuses it.
      const range = INT32_RANGES[type];
      if (range && (n < range[0] || n > range[1])) throw new ProtoJsonError(path, `${n} is out of range for ${type} (${range[0]}..${range[1]})`);
      return LONG_TYPES.has(type) ? String(n) : n;
    }
  }
}

function valueFromJson(field: protobuf.Field, json: unknown, path: string, root: protobuf.Root): unknown {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Type) return messageFromJson(resolved, json, path, root);
  return scalarFromJson(field, json, path);
}

function messageFromJson(type: protobuf.Type, json: unknown, path: string, root: protobuf.Root): Record<string, unknown> {
  const fullName = fullNameOf(type);
  if (SPECIAL_JSON.has(fullName)) return wellKnownFromJson(fullName, json, path, root);
  if (fullName === '.google.protobuf.Any') return anyFromJson(json, path, root);
  if (!isPlainObject(json)) throw new ProtoJsonError(path, `expected an object (${type.fullName.slice(1)})`);
  const out: Record<string, unknown> = {};
  const oneofSeen = new Map<string, string>();
  for (const [key, value] of Object.entries(json)) {
    const fieldPath = path ? `${path}.${key}` : key;
    const field = type.fields[key];
    if (!field) throw new ProtoJsonError(fieldPath, `unknown field of ${type.fullName.slice(1)}`);
    if (value === null || value === undefined) continue;
    const oneof = field.partOf;
    if (oneof) {
      const other = oneofSeen.get(oneof.name);
      if (other) throw new ProtoJsonError(fieldPath, `oneof ${oneof.name} already set by ${other}`);
      oneofSeen.set(oneof.name, key);
    }
    field.resolve();
    if (field.map) {
      if (!isPlainObject(value)) throw new ProtoJsonError(fieldPath, 'expected a map object');
      out[key] = Object.fromEntries(
        Object.entries(value).map(([k, v]) => [k, valueFromJson(field, v, `${fieldPath}[${JSON.stringify(k)}]`, root)]),
      );
    } else if (field.repeated) {
      if (!Array.isArray(value)) throw new ProtoJsonError(fieldPath, 'expected an array');
      out[key] = value.map((item, i) => valueFromJson(field, item, `${fieldPath}[${i}]`, root));
    } else {
      out[key] = valueFromJson(field, value, fieldPath, root);
    }
  }
  return out;
}

function anyFromJson(json: unknown, path: string, root: protobuf.Root): Record<string, unknown> {
  if (!isPlainObject(json) || typeof json['@type'] !== 'string') {
    throw new ProtoJsonError(path, 'an Any needs "@type"');
  }
  const typeUrl = json['@type'];
  const inner = lookupTypeOrNull(root, typeUrl.slice(typeUrl.lastIndexOf('/') + 1));
  if (!inner) throw new ProtoJsonError(`${path}.@type`, `${typeUrl} is not a known message type`);
  const rest = Object.fromEntries(Object.entries(json).filter(([k]) => k !== '@type'));
  const body = SPECIAL_JSON.has(fullNameOf(inner)) ? rest['value'] : rest;
  const object = messageFromJson(inner, body, path, root);
  return { type_url: typeUrl, value: inner.encode(inner.fromObject(object)).finish() };
}

function lookupTypeOrNull(root: protobuf.Root, name: string): protobuf.Type | null {
  try {
    return root.lookupType(name);
  } catch {
    return null;
  }
}

/** Proto3 JSON -> protobufjs message of `type`; throws ProtoJsonError naming the field on any mismatch. */
export function fromProtoJson(type: protobuf.Type, json: unknown): protobuf.Message {
  const root = type.root;
  return type.fromObject(messageFromJson(type, json, '', root));
}

export function encodeProtoJson(type: protobuf.Type, json: unknown): Uint8Array {
  return type.encode(fromProtoJson(type, json)).finish();
}

// ---- decoding side: wire message -> proto3 JSON (as Envoy's config_dump prints it) ----

function longToJson(value: unknown): string {
  if (typeof value === 'object' && value !== null && 'low' in value) {
    return protobuf.util.LongBits.from(value as protobuf.Long).toNumber().toString();
  }
  return String(value);
}

function scalarToJson(field: protobuf.Field, value: unknown): Json {
  if (field.resolvedType instanceof protobuf.Enum) {
    const name = field.resolvedType.valuesById[value as number];
    return name ?? (value as number);
  }
  if (LONG_TYPES.has(field.type)) return longToJson(value);
  if (field.type === 'bytes') return Buffer.from(value as Uint8Array).toString('base64');
  return value as Json;
}

function fieldValueToJson(field: protobuf.Field, value: unknown): Json {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Type) return messageToJson(resolved, value as protobuf.Message);
  return scalarToJson(field, value);
}

function structValueToJson(value: Record<string, unknown>, root: protobuf.Root): Json {
  const f = valueFields(root);
  const has = (name: string): boolean => Object.prototype.hasOwnProperty.call(value, name) && value[name] != null;
  if (has(f.struct)) {
    const fields = (value[f.struct] as { fields?: Record<string, Record<string, unknown>> }).fields ?? {};
    return Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, structValueToJson(v, root)]));
  }
  if (has(f.list)) {
    const values = (value[f.list] as { values?: Record<string, unknown>[] }).values ?? [];
    return values.map((v) => structValueToJson(v, root));
  }
  if (has(f.number)) return value[f.number] as number;
  if (has(f.string)) return value[f.string] as string;
  if (has(f.bool)) return value[f.bool] as boolean;
  return null;
}

function wellKnownToJson(type: protobuf.Type, message: protobuf.Message): Json {
  const m = message as unknown as Record<string, unknown>;
  const root = type.root;
  switch (fullNameOf(type)) {
    case '.google.protobuf.Duration':
      return formatDurationJson(Number(longToJson(m['seconds'] ?? 0)), Number(m['nanos'] ?? 0));
    case '.google.protobuf.Timestamp':
      return new Date(Number(longToJson(m['seconds'] ?? 0)) * 1000 + Number(m['nanos'] ?? 0) / 1e6).toISOString();
    case '.google.protobuf.Struct': {
      const fields = (m['fields'] ?? {}) as Record<string, Record<string, unknown>>;
      return Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, structValueToJson(v, root)]));
    }
    case '.google.protobuf.ListValue':
      return ((m['values'] ?? []) as Record<string, unknown>[]).map((v) => structValueToJson(v, root));
    case '.google.protobuf.Value':
      return structValueToJson(m, root);
    default: {
      const field = type.fields['value'];
      if (!field) return null;
      const value = m['value'] ?? (field.type === 'string' ? '' : field.type === 'bool' ? false : 0);
      return scalarToJson(field, value);
    }
  }
}

export function messageToJson(type: protobuf.Type, message: protobuf.Message): Json {
  if (SPECIAL_JSON.has(fullNameOf(type))) return wellKnownToJson(type, message);
  const m = message as unknown as Record<string, unknown>;
  if (fullNameOf(type) === '.google.protobuf.Any') {
    const typeUrl = typeof m['type_url'] === 'string' ? m['type_url'] : '';
    const inner = lookupTypeOrNull(type.root, typeUrl.slice(typeUrl.lastIndexOf('/') + 1));
    if (!inner) return { '@type': typeUrl, value: Buffer.from((m['value'] as Uint8Array | undefined) ?? []).toString('base64') };
    const decoded = inner.decode((m['value'] as Uint8Array | undefined) ?? new Uint8Array());
    const body = messageToJson(inner, decoded);
    return SPECIAL_JSON.has(fullNameOf(inner)) ? { '@type': typeUrl, value: body } : { '@type': typeUrl, ...(body as JsonObject) };
  }
  const out: JsonObject = {};
  for (const field of type.fieldsArray) {
    if (!Object.prototype.hasOwnProperty.call(m, field.name)) continue;
    const value = m[field.name];
    if (value === null || value === undefined) continue;
    field.resolve();
    if (field.map) {
      const entries = Object.entries(value as Record<string, unknown>);
      if (entries.length === 0) continue;
      out[field.name] = Object.fromEntries(entries.map(([k, v]) => [k, fieldValueToJson(field, v)]));
    } else if (field.repeated) {
      const items = value as unknown[];
      if (items.length === 0) continue;
      out[field.name] = items.map((item) => fieldValueToJson(field, item));
    } else {
      out[field.name] = fieldValueToJson(field, value);
    }
  }
  return out;
}

export function decodeToProtoJson(type: protobuf.Type, bytes: Uint8Array): Json {
  return messageToJson(type, type.decode(bytes));
}
