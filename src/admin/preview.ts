// Preview: what applying YAML would do, without applying it. The YAML is overlaid on the
// current snapshot, a PushContext is built from it (not published), and each connected proxy's
// config is rendered with the same generators and diffed against what it was last sent.
import type { PushContext } from '../model/push-context.ts';
import { buildPushContext } from '../model/push-context.ts';
import type { Rule, ValidationIssue } from '../model/rules.ts';
import { ruleKey } from '../model/rules.ts';
import type { Endpoint, Service } from '../model/service.ts';
import type { RejectedObject, SourceSnapshot } from '../model/store.ts';
import { readObjectsFromText } from '../sources/config-dir.ts';
import { assembleObjects, isAccepted, parseObject } from '../sources/kube-objects.ts';
import { renderForProxy } from '../xds/render.ts';
import type { EnvoyResource } from '../xds/resource.ts';
import type { ResourceChanges } from '../xds/resource-diff.ts';
import { diffResources, isEmptyChange } from '../xds/resource-diff.ts';
import type { XdsConnection } from '../xds/server/connection.ts';
import type { ResourceTypeUrl, ShortType } from '../xds/type-urls.ts';
import { LISTENER_TYPE, PUSH_ORDER, SHORT_TYPE } from '../xds/type-urls.ts';

export interface PreviewObject {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly change: 'added' | 'changed' | 'unchanged';
}

export interface PreviewProblem extends ValidationIssue {
  readonly object: string;
}

export interface ProxyPreview {
  readonly proxy: string;
  readonly connectionId: string;
  readonly types: Partial<Record<ShortType, ResourceChanges>>;
}

export interface PreviewResult {
  readonly valid: boolean;
  readonly objects: readonly PreviewObject[];
  readonly errors: readonly PreviewProblem[];
  readonly warnings: readonly PreviewProblem[];
  readonly proxies: readonly ProxyPreview[];
  readonly unaffectedProxies: number;
}

const PREVIEW_LOCATION = 'preview';
/** A preview is a change someone is about to apply: rules, not a cluster dump. */
export const MAX_PREVIEW_BYTES = 1024 * 1024;
export const MAX_PREVIEW_OBJECTS = 1000;
/** Proxies rendered between two turns of the event loop, so pushes and ACKs keep flowing. */
const PROXIES_PER_TURN = 20;

/** Why a preview body is refused before any work, or undefined. */
export function previewTooLarge(yaml: string): string | undefined {
  const bytes = Buffer.byteLength(yaml, 'utf8');
  if (bytes > MAX_PREVIEW_BYTES) return `the YAML is ${bytes} bytes; preview takes at most ${MAX_PREVIEW_BYTES}: preview the objects you change, not a whole dump`;
  const documents = (yaml.match(/^---/gm) ?? []).length + 1;
  if (documents > MAX_PREVIEW_OBJECTS) return `the YAML has ${documents} documents; preview takes at most ${MAX_PREVIEW_OBJECTS}: preview the objects you change`;
  return undefined;
}

function keyedRules(rules: readonly Rule[]): Map<string, Rule> {
  return new Map(rules.map((r) => [ruleKey(r.meta), r]));
}

/** The current snapshot with the YAML's objects added or replacing theirs. */
export function overlaySnapshot(current: SourceSnapshot, yaml: string): { snapshot: SourceSnapshot; objects: PreviewObject[]; rejected: readonly RejectedObject[] } {
  const read = readObjectsFromText(yaml, PREVIEW_LOCATION);
  if (!read.ok) return { snapshot: current, objects: [], rejected: [read.rejected] };
  const parsed = read.objects.map(parseObject);
  const overlay = assembleObjects(parsed);
  const rules = keyedRules(current.rules);
  const services = new Map<string, Service>(current.services.map((s) => [s.hostname, s]));
  const objects: PreviewObject[] = [];
  for (const object of parsed.filter(isAccepted)) {
    const [kind = '', namespace = '', name = ''] = object.key.split('/');
    let before: unknown;
    let after: unknown;
    if (object.type === 'rule') {
      before = rules.get(object.key)?.spec;
      after = object.rule.spec;
    } else if (object.type === 'service') {
      const existing = services.get(object.service.hostname);
      before = existing && { ...existing, source: undefined };
      after = { ...object.service, source: undefined };
    }
    const change = before === undefined && object.type !== 'pod' && object.type !== 'endpointSlice' && object.type !== 'endpoints' ? 'added' : JSON.stringify(before) === JSON.stringify(after) ? 'unchanged' : 'changed';
    objects.push({ kind, namespace, name, change });
  }
  for (const rule of overlay.rules) rules.set(ruleKey(rule.meta), rule);
  for (const service of overlay.services) services.set(service.hostname, service);
  const replaced = new Set(overlay.endpoints.map((e) => e.serviceHostname));
  const endpoints: Endpoint[] = [...current.endpoints.filter((e) => !replaced.has(e.serviceHostname)), ...overlay.endpoints];
  return {
    snapshot: { services: [...services.values()], endpoints, rules: [...rules.values()], rejected: current.rejected },
    objects,
    rejected: overlay.rejected,
  };
}

/** What the connection would hold under `push`: the subscription closure a client walks from its listeners. */
function renderFor(connection: XdsConnection, push: PushContext): Map<ResourceTypeUrl, readonly EnvoyResource[]> {
  const out = new Map<ResourceTypeUrl, readonly EnvoyResource[]>();
  const proxy = connection.proxy;
  if (!proxy) return out;
  const lds = connection.watches.get(LISTENER_TYPE);
  const rendered = lds ? renderForProxy(push, proxy, lds.names) : undefined;
  for (const typeUrl of PUSH_ORDER) {
    if (!connection.watches.has(typeUrl)) continue;
    // A client without listeners (a raw subscription) keeps exactly the names it asked for.
    out.set(typeUrl, rendered ? rendered[typeUrl] : connection.resourcesFor(typeUrl, push));
  }
  return out;
}

export async function previewYaml(current: SourceSnapshot, connections: readonly XdsConnection[], yaml: string): Promise<PreviewResult> {
  const { snapshot, objects, rejected } = overlaySnapshot(current, yaml);
  if (objects.length > MAX_PREVIEW_OBJECTS) {
    const message = `the YAML holds ${objects.length} objects; preview takes at most ${MAX_PREVIEW_OBJECTS}: preview the objects you change`;
    return { valid: false, objects: [], errors: [{ code: 'MP_BAD_REQUEST', severity: 'error', path: '', message, object: 'preview' }], warnings: [], proxies: [], unaffectedProxies: connections.length };
  }
  const errors: PreviewProblem[] = [];
  const warnings: PreviewProblem[] = [];
  for (const r of rejected) {
    for (const issue of r.issues) (issue.severity === 'error' ? errors : warnings).push({ ...issue, object: r.object });
  }
  if (rejected.length > 0 || objects.length === 0) {
    if (objects.length === 0 && rejected.length === 0) {
      errors.push({ code: 'MP_OBJECT_INVALID', severity: 'error', path: '', message: 'the YAML holds no object meshpilot reads: send Kubernetes or Istio objects', object: 'preview' });
    }
    return { valid: false, objects, errors, warnings, proxies: [], unaffectedProxies: connections.length };
  }
  const push = buildPushContext(snapshot);
  const touched = new Set(objects.map((o) => `${o.kind}/${o.namespace}/${o.name}`));
  for (const status of push.ruleStatus.values()) {
    if (!touched.has(ruleKey(status.rule.meta))) continue;
    const object = `${status.rule.meta.kind} ${status.rule.meta.namespace}/${status.rule.meta.name}`;
    for (const issue of [...(status.rule.meta.warnings ?? []), ...status.issues]) (issue.severity === 'error' ? errors : warnings).push({ ...issue, object });
  }
  const proxies: ProxyPreview[] = [];
  for (const [index, connection] of connections.entries()) {
    if (index > 0 && index % PROXIES_PER_TURN === 0) await new Promise((resolve) => setImmediate(resolve));
    if (!connection.proxy) continue;
    const types: Partial<Record<ShortType, ResourceChanges>> = {};
    for (const [typeUrl, after] of renderFor(connection, push)) {
      const changes = diffResources(connection.watches.get(typeUrl)?.sent?.resources ?? [], after);
      if (!isEmptyChange(changes)) types[SHORT_TYPE[typeUrl]] = changes;
    }
    if (Object.keys(types).length > 0) proxies.push({ proxy: connection.proxy.id, connectionId: connection.id, types });
  }
  return { valid: errors.length === 0, objects, errors, warnings, proxies, unaffectedProxies: connections.length - proxies.length };
}
