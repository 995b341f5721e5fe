// The TypeScript types of the proto3 JSON the generators write, from the vendored protos: the
// messages of every type URL in src/xds/type-urls.ts and what their fields reach.
//   npm run protos:types               write src/xds/envoy-types.generated.ts
//   npm run protos:types -- --check    exit 1 when the committed file is not what proto/ gives
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { envoyRoot } from '../src/xds/protos.ts';
import * as typeUrls from '../src/xds/type-urls.ts';

export const ENVOY_TYPES_FILE = fileURLToPath(new URL('../src/xds/envoy-types.generated.ts', import.meta.url));

const TYPE_URL_PREFIX = 'type.googleapis.com/';

/** Well-known types as proto3 JSON writes them (and src/xds/proto-json.ts reads them). */
const WELL_KNOWN: Readonly<Record<string, string>> = {
  '.google.protobuf.Any': 'Any',
  '.google.protobuf.Duration': 'string',
  '.google.protobuf.Timestamp': 'string',
  '.google.protobuf.Struct': 'ProtoStruct',
  '.google.protobuf.Value': 'Json',
  '.google.protobuf.ListValue': 'Json[]',
  '.google.protobuf.DoubleValue': 'number',
  '.google.protobuf.FloatValue': 'number',
  '.google.protobuf.Int32Value': 'number',
  '.google.protobuf.UInt32Value': 'number',
  '.google.protobuf.Int64Value': 'Int64',
  '.google.protobuf.UInt64Value': 'Int64',
  '.google.protobuf.BoolValue': 'boolean',
  '.google.protobuf.StringValue': 'string',
  '.google.protobuf.BytesValue': 'string',
};

const SCALARS: Readonly<Record<string, string>> = {
  double: 'number', float: 'number', int32: 'number', uint32: 'number', sint32: 'number', fixed32: 'number', sfixed32: 'number',
  int64: 'Int64', uint64: 'Int64', sint64: 'Int64', fixed64: 'Int64', sfixed64: 'Int64',
  bool: 'boolean', string: 'string', bytes: 'string',
};

/** Names the file defines itself; a proto type may not take them. */
const RESERVED = new Set(['Any', 'TypedAny', 'Int64', 'Json', 'ProtoStruct', 'NoFields', 'MessageByTypeUrl']);

type Reflected = protobuf.Type | protobuf.Enum;

/** The message names the type URLs of type-urls.ts carry, sorted. */
function typeUrlsSpoken(): string[] {
  const exported: readonly unknown[] = Object.values(typeUrls);
  const urls = exported.filter((v): v is string => typeof v === 'string' && v.startsWith(TYPE_URL_PREFIX));
  return [...new Set(urls)].map(typeUrls.messageNameOf).sort();
}

/** The types `roots` reach through their fields, well-known types aside. */
function closure(roots: readonly protobuf.Type[]): Reflected[] {
  const seen = new Map<string, Reflected>();
  const queue: Reflected[] = [...roots];
  for (let next = queue.pop(); next; next = queue.pop()) {
    if (seen.has(next.fullName) || next.fullName in WELL_KNOWN) continue;
    seen.set(next.fullName, next);
    if (!(next instanceof protobuf.Type)) continue;
    for (const field of next.fieldsArray) {
      field.resolve();
      const resolved = field.resolvedType;
      if (resolved instanceof protobuf.Type || resolved instanceof protobuf.Enum) queue.push(resolved);
    }
  }
  return [...seen.values()].sort((a, b) => (a.fullName < b.fullName ? -1 : 1));
}

/** `Cluster.LbPolicy` -> ['Cluster', 'LbPolicy'] and its package's segments. */
function split(type: Reflected): { local: string[]; pkg: string[] } {
  const local: string[] = [];
  for (let at: protobuf.ReflectionObject | null = type; at instanceof protobuf.Type || at instanceof protobuf.Enum; at = at.parent) local.unshift(at.name);
  return { local, pkg: type.fullName.slice(1).split('.').slice(0, -local.length) };
}

/** Package segments without the API version (`v3`, `v1alpha`). */
const unversioned = (pkg: readonly string[]): string[] => pkg.filter((s) => !/^v\d+(alpha\d*|beta\d*)?$/.test(s));

const isEnvoy = (name: string): boolean => name.startsWith('envoy.');

const pascal = (segment: string): string => segment.split('_').map((s) => (s[0]?.toUpperCase() ?? '') + s.slice(1)).join('');

/**
 * TypeScript names: `Cluster`, `Cluster_LbPolicy`; where two Envoy packages share a name, the
 * package segments that tell them apart lead (`HttpRbac_RBAC`, `NetworkRbac_RBAC`), and a
 * non-Envoy type that shares an Envoy name takes its whole package (`XdsTypeMatcher_StringMatcher`).
 */
function assignNames(types: readonly Reflected[]): Map<string, string> {
  const parts = new Map(types.map((t) => [t.fullName, split(t)]));
  // Qualifiers go on top-level messages; their nested types carry the same.
  const topOf = (fullName: string): string => {
    const { local, pkg } = parts.get(fullName) ?? { local: [], pkg: [] };
    return [...pkg, local[0] ?? ''].join('.');
  };
  const packageOf = (top: string): string[] => unversioned(top.split('.').slice(0, -1));
  const depth = new Map<string, number>();
  const nameOf = (fullName: string): string => {
    const n = depth.get(topOf(fullName)) ?? 0;
    const prefix = n === 0 ? '' : packageOf(topOf(fullName)).slice(-n).map(pascal).join('');
    return (prefix ? `${prefix}_` : '') + (parts.get(fullName)?.local ?? []).join('_');
  };
  for (;;) {
    const byName = new Map<string, Set<string>>();
    for (const t of types) {
      const name = nameOf(t.fullName);
      byName.set(name, (byName.get(name) ?? new Set()).add(topOf(t.fullName)));
    }
    const clashing = [...byName.entries()].filter(([name, tops]) => tops.size > 1 || RESERVED.has(name));
    if (clashing.length === 0) return new Map(types.map((t) => [t.fullName, nameOf(t.fullName)]));
    const deepened = new Set<string>();
    for (const [name, tops] of clashing) {
      const envoy = [...tops].filter(isEnvoy);
      for (const top of tops) {
        if (deepened.has(top)) continue;
        // Envoy's own type keeps the short name against xds/udpa/google ones, which take their whole package.
        if (envoy.length === 1 && envoy[0] === top && !RESERVED.has(name)) continue;
        const next = isEnvoy(top) ? (depth.get(top) ?? 0) + 1 : packageOf(top).length;
        if (next > packageOf(top).length) throw new Error(`${top}: no name left for ${name}`);
        depth.set(top, next);
        deepened.add(top);
      }
    }
  }
}

function fieldType(field: protobuf.Field, names: ReadonlyMap<string, string>): string {
  field.resolve();
  const resolved = field.resolvedType;
  let value: string;
  if (resolved) value = WELL_KNOWN[resolved.fullName] ?? names.get(resolved.fullName) ?? 'never';
  else value = SCALARS[field.type] ?? 'never';
  if (value === 'never') throw new Error(`${field.fullName}: no TypeScript type for ${field.type}`);
  if (field instanceof protobuf.MapField) return `Record<string, ${value}>`;
  return field.repeated ? `readonly ${value.endsWith('[]') ? `(${value})` : value}[]` : value;
}

/** Field names as the protos spell them (keepCase), quoted where they are not identifiers. */
const key = (name: string): string => (/^[A-Za-z_$][\w$]*$/.test(name) ? name : `'${name}'`);

/** What the type cannot say: the oneof a field belongs to (one member at most), and deprecation. */
function fieldNote(field: protobuf.Field): string {
  // proto3 `optional` fields sit in a synthetic oneof named after them.
  const oneof = field.partOf && !field.partOf.name.startsWith('_') ? `oneof ${field.partOf.name}` : undefined;
  const deprecated = field.options?.['deprecated'] === true ? 'deprecated' : undefined;
  const notes = [oneof, deprecated].filter((n) => n !== undefined);
  return notes.length > 0 ? ` // ${notes.join('; ')}` : '';
}

function renderType(type: Reflected, names: ReadonlyMap<string, string>): string {
  const name = names.get(type.fullName) ?? '';
  const doc = `/** ${type.fullName.slice(1)} */\n`;
  if (type instanceof protobuf.Enum) {
    // The converter takes an enum's number as well as its name.
    return `${doc}export type ${name} = ${Object.keys(type.values).map((v) => `'${v}'`).join(' | ')} | number;\n`;
  }
  if (type.fieldsArray.length === 0) return `${doc}export type ${name} = NoFields;\n`;
  const fields = type.fieldsArray.map((f) => `  ${key(f.name)}?: ${fieldType(f, names)};${fieldNote(f)}\n`).join('');
  return `${doc}export type ${name} = {\n${fields}};\n`;
}

const PRELUDE = `// Generated by scripts/gen-envoy-types.ts from proto/ and src/xds/type-urls.ts: do not edit.
// Regenerate with \`npm run protos:types\` (test/envoy-types.test.ts fails while this file is stale).
// Proto3 JSON as the generators write it and proto-json.ts converts it: field names as in the
// protos, every field optional, oneof members as plain fields, well-known types in their JSON form.
import type { Json } from './proto-json.ts';

/** int64 and uint64: proto3 JSON writes them as strings; the converter takes numbers too. */
export type Int64 = number | string;
/** google.protobuf.Struct: a JSON object. */
export type ProtoStruct = { [key: string]: Json };

declare const noFields: unique symbol;
/** A message without fields: \`{}\` fits, an object literal with any field does not. */
export type NoFields = { readonly [noFields]?: never };
`;

const EPILOGUE = `
/** A message packed in a google.protobuf.Any, in proto3 JSON: its type URL and its fields side by side. */
export type TypedAny<U extends keyof MessageByTypeUrl> = { readonly '@type': U } & MessageByTypeUrl[U];
/** google.protobuf.Any: one of the messages meshpilot packs (every type URL of type-urls.ts). */
export type Any = { [U in keyof MessageByTypeUrl]: TypedAny<U> }[keyof MessageByTypeUrl];
`;

/** The whole generated file. */
export function renderEnvoyTypes(): string {
  const root = envoyRoot();
  const spoken = typeUrlsSpoken();
  const roots = spoken.map((name) => root.lookupType(name));
  const types = closure(roots);
  const names = assignNames(types);
  const byUrl = roots
    .map((t) => `  '${TYPE_URL_PREFIX}${t.fullName.slice(1)}': ${names.get(t.fullName) ?? 'never'};\n`)
    .join('');
  return [
    PRELUDE,
    ...types.map((t) => `\n${renderType(t, names)}`),
    `\n/** The message of every type URL meshpilot speaks (src/xds/type-urls.ts). */\nexport type MessageByTypeUrl = {\n${byUrl}};\n`,
    EPILOGUE,
  ].join('');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const text = renderEnvoyTypes();
  if (process.argv[2] === '--check') {
    if (readFileSync(ENVOY_TYPES_FILE, 'utf8') !== text) {
      process.stderr.write(`${ENVOY_TYPES_FILE} is stale: run npm run protos:types\n`);
      process.exitCode = 1;
    }
  } else {
    writeFileSync(ENVOY_TYPES_FILE, text);
    process.stdout.write(`${ENVOY_TYPES_FILE}: ${String(text.length)} bytes\n`);
  }
}
