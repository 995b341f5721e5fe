// CustomResourceDefinitions as the API server treats them: creating one serves its kind at its
// served versions (with the status subresource it declares), and writes get the structural
// schema's defaults filled in, as the real server does on create and update.
import type { KubeObject, ResourceType } from './fake-kube-api.ts';

interface Schema {
  readonly type?: string;
  readonly default?: unknown;
  readonly properties?: Readonly<Record<string, Schema>>;
  readonly items?: Schema;
  readonly additionalProperties?: Schema | boolean;
}

interface CrdVersion {
  readonly name: string;
  readonly served?: boolean;
  readonly storage?: boolean;
  readonly subresources?: { status?: unknown };
  readonly schema?: { openAPIV3Schema?: Schema };
}

export type ResourceTypeWithSchemas = ResourceType & { readonly schemas: Readonly<Record<string, Schema>> };

/** The resource a CRD object defines (served versions, the storage version first). */
export function resourceTypeOfCrd(crd: KubeObject): ResourceTypeWithSchemas {
  const spec = (crd['spec'] ?? {}) as { group?: string; scope?: string; names?: { plural?: string; kind?: string }; versions?: CrdVersion[] };
  const versions = (spec.versions ?? []).filter((v) => v.served !== false).sort((a, b) => Number(Boolean(b.storage)) - Number(Boolean(a.storage)));
  const schemas: Record<string, Schema> = {};
  for (const v of versions) if (v.schema?.openAPIV3Schema) schemas[v.name] = v.schema.openAPIV3Schema;
  return {
    group: spec.group ?? '',
    versions: versions.map((v) => v.name),
    plural: spec.names?.plural ?? '',
    kind: spec.names?.kind ?? '',
    namespaced: spec.scope !== 'Cluster',
    statusSubresource: versions.some((v) => v.subresources?.status !== undefined),
    schemas,
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Fills in schema defaults of absent fields, depth first, as structural-schema defaulting does. */
export function applySchemaDefaults(schema: Schema | undefined, value: unknown): unknown {
  if (!schema) return value;
  if (Array.isArray(value)) return schema.items ? value.map((item) => applySchemaDefaults(schema.items, item)) : value;
  if (!isRecord(value)) return value;
  const out: Record<string, unknown> = { ...value };
  for (const [key, property] of Object.entries(schema.properties ?? {})) {
    if (out[key] === undefined && property.default !== undefined) out[key] = structuredClone(property.default);
    if (out[key] !== undefined) out[key] = applySchemaDefaults(property, out[key]);
  }
  if (isRecord(schema.additionalProperties)) {
    const additional = schema.additionalProperties;
    for (const key of Object.keys(out)) if (!(key in (schema.properties ?? {}))) out[key] = applySchemaDefaults(additional, out[key]);
  }
  return out;
}
