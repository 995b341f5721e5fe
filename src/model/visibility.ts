// Istio's exportTo: which namespaces see a Service, ServiceEntry, VirtualService or
// DestinationRule. `*` is every namespace, `.` the object's own, `~` none, else a namespace name;
// an object without exportTo takes MeshConfig's default for its kind (`*` unless set).
import type { MeshConfig } from './mesh-config.ts';

export const EXPORT_PUBLIC = '*';
export const EXPORT_PRIVATE = '.';
export const EXPORT_NONE = '~';

/** The Kubernetes Service annotation Istio reads as the Service's exportTo (comma-separated). */
export const EXPORT_TO_ANNOTATION = 'networking.istio.io/exportTo';

export type ExportedKind = 'service' | 'virtualService' | 'destinationRule';

/** Where an object is visible: every namespace, or the listed ones (empty: none). */
export interface Visibility {
  readonly public: boolean;
  readonly namespaces: ReadonlySet<string>;
}

export const PUBLIC_VISIBILITY: Visibility = { public: true, namespaces: new Set() };

/** The exportTo in force: the object's own, else the mesh default for its kind. */
export function effectiveExportTo(exportTo: readonly string[] | undefined, mesh: MeshConfig, kind: ExportedKind): readonly string[] {
  if (exportTo && exportTo.length > 0) return exportTo;
  return mesh.defaultExportTo?.[kind] ?? [EXPORT_PUBLIC];
}

/**
 * Istio's reading for VirtualServices and Services: `*` wins over everything, `.` is the owner's
 * namespace, names are namespaces, and `~` is nobody: a VirtualService with `~` among other
 * entries is hidden from all, a Service's other entries still count (as in Istio's push context).
 */
export function visibilityOf(exportTo: readonly string[], ownerNamespace: string, kind: ExportedKind = 'virtualService'): Visibility {
  if (exportTo.includes(EXPORT_PUBLIC)) return PUBLIC_VISIBILITY;
  const namespaces = new Set<string>();
  if (kind !== 'service' && exportTo.includes(EXPORT_NONE)) return { public: false, namespaces };
  for (const to of exportTo) if (to !== EXPORT_NONE) namespaces.add(to === EXPORT_PRIVATE ? ownerNamespace : to);
  return { public: false, namespaces };
}

export function isVisibleTo(visibility: Visibility, namespace: string): boolean {
  return visibility.public || visibility.namespaces.has(namespace);
}

/** Reads the Service annotation `networking.istio.io/exportTo: ".,shop"` as Istio does. */
export function parseExportToAnnotation(value: string | undefined): string[] | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  return value.split(',').map((part) => part.trim()).filter((part) => part !== '');
}

/** Istio's exportTo validation (pkg/config/validation validateExportTo): one message per problem. */
export function exportToProblems(exportTo: readonly string[], namespace: string, allowNone: boolean, isNamespaceName: (value: string) => boolean): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const entry of exportTo) {
    const key = entry === EXPORT_PRIVATE ? namespace : entry;
    if (seen.has(key)) {
      problems.push(key !== entry ? `"." and the namespace ${namespace} are the same namespace: keep one` : `"${entry}" is listed twice: keep one`);
      continue;
    }
    if (entry === EXPORT_NONE && !allowNone) {
      problems.push('"~" (visible to no namespace) is only allowed for ServiceEntries: remove the object, or name the namespaces that may see it');
      continue;
    }
    if (entry !== EXPORT_PUBLIC && entry !== EXPORT_PRIVATE && entry !== EXPORT_NONE && !isNamespaceName(entry)) {
      problems.push(`"${entry}" is not ".", "*", "~" or a namespace name (a DNS label)`);
      continue;
    }
    seen.add(key);
  }
  if (seen.has(EXPORT_PUBLIC) && exportTo.length > 1) problems.push('"*" already exports to every namespace: it cannot be listed with other entries');
  if (seen.has(EXPORT_NONE) && exportTo.length > 1) problems.push('"~" (visible to no namespace) cannot be listed with other entries');
  return problems;
}
