// Kubernetes Gateway API GatewayClass, Gateway and XMesh objects, read as the API server's schema admits
// them (with its defaults applied); which Gateways meshpilot serves is decided when they are joined.
import { GATEWAY_CONTROLLER_NAME, MESH_CONTROLLER_NAME } from '../model/route-status.ts';
import type { SourceRef } from '../model/service.ts';
import type { Fields, ObjectMeta } from './object-fields.ts';
import { describeType, isFields, isIpAddress, isPortNumber } from './object-fields.ts';
import type { GatewayObjectRef } from './gateway-api-objects.ts';
import { GATEWAY_API_GROUP, generationOf, Reader } from './gateway-api-objects.ts';
import type { ParsedObject, SourcedObject } from './parsed-object.ts';
import { objectKey, ObjectProblems, rejectedObject, requireName } from './parsed-object.ts';

/** The key kind of a Gateway API Gateway: Istio's `Gateway` kind holds the plain name. */
export const GATEWAY_API_GATEWAY_KEY = `Gateway.${GATEWAY_API_GROUP}`;

/** A GatewayClass, or an XMesh (the same shape: a cluster-scoped object naming its controller). */
export interface GatewayClassInfo {
  readonly name: string;
  readonly source: SourceRef;
  readonly generation?: number;
  readonly controllerName: string;
}

/** A Kubernetes label selector (matchLabels and matchExpressions). */
export interface LabelSelector {
  readonly matchLabels: Readonly<Record<string, string>>;
  readonly matchExpressions: readonly { readonly key: string; readonly operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; readonly values: readonly string[] }[];
}

export interface RouteGroupKind {
  readonly group: string;
  readonly kind: string;
}

export interface ListenerInfo {
  readonly name: string;
  readonly hostname?: string;
  readonly port: number;
  /** As written: HTTP, HTTPS, TLS, TCP, UDP or a domain-prefixed protocol. */
  readonly protocol: string;
  readonly tls?: {
    readonly mode: 'Terminate' | 'Passthrough';
    /** Group '' and kind Secret when unset, as the API defaults them. */
    readonly certificateRefs: readonly GatewayObjectRef[];
  };
  readonly allowedRoutes: {
    readonly from: 'Same' | 'All' | 'Selector';
    readonly selector?: LabelSelector;
    /** Absent: the kinds the protocol takes. */
    readonly kinds?: readonly RouteGroupKind[];
  };
}

export interface GatewayInfo {
  readonly namespace: string;
  readonly name: string;
  readonly source: SourceRef;
  readonly generation?: number;
  readonly creationTimestamp?: string;
  readonly className: string;
  readonly listeners: readonly ListenerInfo[];
  readonly addresses: readonly { readonly type: string; readonly value: string }[];
}

/** The API's hostname pattern: a lowercase DNS name, optionally with one leading `*.` label. */
const LISTENER_HOSTNAME = /^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const SECTION_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export function isListenerHostname(value: string): boolean {
  return value.length <= 253 && LISTENER_HOSTNAME.test(value) && !isIpAddress(value);
}

function readSelector(r: Reader, value: unknown, path: string): LabelSelector | undefined {
  const fields = r.struct(value, path, ['matchLabels', 'matchExpressions'], '{ matchLabels: { shared-gateway-access: "true" } }');
  if (!fields) return undefined;
  const labels = r.struct(fields['matchLabels'], `${path}.matchLabels`, Object.keys(isFields(fields['matchLabels']) ? fields['matchLabels'] : {}), '{ team: shop }');
  const matchLabels: Record<string, string> = {};
  for (const [key, label] of Object.entries(labels ?? {})) {
    if (typeof label === 'string') matchLabels[key] = label;
    else r.problems.error(`${path}.matchLabels.${key}`, `must be a string, got ${describeType(label)}: quote it`);
  }
  const matchExpressions = r.list(fields['matchExpressions'], `${path}.matchExpressions`, 32).flatMap((entry, i) => {
    const p = `${path}.matchExpressions[${i}]`;
    const e = r.struct(entry, p, ['key', 'operator', 'values'], '{ key: team, operator: In, values: [shop] }');
    const key = r.string(e, 'key', p, true);
    const operator = r.oneOf(e, 'operator', p, ['In', 'NotIn', 'Exists', 'DoesNotExist'] as const, 'In');
    const values = r.list(e?.['values'], `${p}.values`, 64).flatMap((v, j) => {
      if (typeof v === 'string') return [v];
      r.problems.error(`${p}.values[${j}]`, `must be a string, got ${describeType(v)}: quote it`);
      return [];
    });
    if ((operator === 'In' || operator === 'NotIn') && values.length === 0) r.problems.error(`${p}.values`, `must not be empty for ${operator}`);
    return key === undefined ? [] : [{ key, operator, values }];
  });
  return { matchLabels, matchExpressions };
}

/** Whether `labels` satisfy a Kubernetes label selector. */
export function selectorMatches(selector: LabelSelector, labels: Readonly<Record<string, string>>): boolean {
  if (!Object.entries(selector.matchLabels).every(([key, value]) => labels[key] === value)) return false;
  return selector.matchExpressions.every(({ key, operator, values }) => {
    const value = labels[key];
    switch (operator) {
      case 'In':
        return value !== undefined && values.includes(value);
      case 'NotIn':
        return value === undefined || !values.includes(value);
      case 'Exists':
        return value !== undefined;
      case 'DoesNotExist':
        return value === undefined;
    }
  });
}

function readListener(r: Reader, value: unknown, path: string): ListenerInfo | undefined {
  const fields = r.struct(value, path, ['name', 'hostname', 'port', 'protocol', 'tls', 'allowedRoutes'], '{ name: http, port: 80, protocol: HTTP }');
  if (!fields) return undefined;
  const name = r.string(fields, 'name', path, true);
  if (name !== undefined && name !== '' && !SECTION_NAME.test(name)) r.problems.error(`${path}.name`, `"${name}" is not a section name: use lowercase letters, digits, "-" and "."`);
  const hostname = r.string(fields, 'hostname', path);
  if (hostname !== undefined && !isListenerHostname(hostname)) r.problems.error(`${path}.hostname`, `"${hostname}" is not a hostname a listener takes: a lowercase DNS name, optionally starting with "*." (no IP addresses)`);
  const port = fields['port'];
  if (!isPortNumber(port)) r.problems.error(`${path}.port`, `must be a port number 1..65535, got ${describeType(port)}`);
  const protocol = r.string(fields, 'protocol', path, true);
  const tlsFields = r.struct(fields['tls'], `${path}.tls`, ['mode', 'certificateRefs', 'options', 'frontendValidation'], '{ mode: Terminate, certificateRefs: [{ name: shop-cert }] }');
  const mode = r.oneOf(tlsFields, 'mode', `${path}.tls`, ['Terminate', 'Passthrough'] as const, 'Terminate');
  const certificateRefs = r.list(tlsFields?.['certificateRefs'], `${path}.tls.certificateRefs`, 64).flatMap((ref, i) => {
    const p = `${path}.tls.certificateRefs[${i}]`;
    const refFields = r.struct(ref, p, ['group', 'kind', 'name', 'namespace'], '{ name: shop-cert }');
    const refName = r.string(refFields, 'name', p, true);
    const namespace = r.string(refFields, 'namespace', p);
    return refName === undefined ? [] : [{ group: r.string(refFields, 'group', p) ?? '', kind: r.string(refFields, 'kind', p) ?? 'Secret', name: refName, ...(namespace ? { namespace } : {}) }];
  });
  if (tlsFields && mode === 'Passthrough' && certificateRefs.length > 0) r.problems.error(`${path}.tls.certificateRefs`, 'must be empty with mode Passthrough: the backend terminates TLS');
  const allowed = r.struct(fields['allowedRoutes'], `${path}.allowedRoutes`, ['namespaces', 'kinds'], '{ namespaces: { from: All } }');
  const namespaces = r.struct(allowed?.['namespaces'], `${path}.allowedRoutes.namespaces`, ['from', 'selector'], '{ from: Selector, selector: { matchLabels: { team: shop } } }');
  const from = r.oneOf(namespaces, 'from', `${path}.allowedRoutes.namespaces`, ['Same', 'All', 'Selector'] as const, 'Same');
  const selector = readSelector(r, namespaces?.['selector'], `${path}.allowedRoutes.namespaces.selector`);
  if (from === 'Selector' && !selector) r.problems.error(`${path}.allowedRoutes.namespaces.selector`, 'is required with from: Selector: write e.g. selector: { matchLabels: { team: shop } }');
  const kindsValue = allowed?.['kinds'];
  const kinds = r.list(kindsValue, `${path}.allowedRoutes.kinds`, 8).flatMap((entry, i) => {
    const p = `${path}.allowedRoutes.kinds[${i}]`;
    const k = r.struct(entry, p, ['group', 'kind'], '{ kind: HTTPRoute }');
    const kind = r.string(k, 'kind', p, true);
    return kind === undefined ? [] : [{ group: r.string(k, 'group', p) ?? GATEWAY_API_GROUP, kind }];
  });
  if (name === undefined || protocol === undefined || !isPortNumber(port)) return undefined;
  return {
    name,
    ...(hostname !== undefined ? { hostname } : {}),
    port,
    protocol,
    ...(tlsFields ? { tls: { mode, certificateRefs } } : {}),
    allowedRoutes: { from, ...(selector ? { selector } : {}), ...(kindsValue !== undefined && kindsValue !== null ? { kinds } : {}) },
  };
}

/** The spec of a GatewayClass or an XMesh: the controllerName that handles it (parametersRef and description are not used). */
function readControlled(input: SourcedObject, object: Fields, kind: string, meta: ObjectMeta, what: 'GatewayClass' | 'XMesh', controller: string): GatewayClassInfo | ParsedObject {
  const problems = new ObjectProblems();
  requireName(meta, problems, what);
  const r = new Reader(problems, what);
  const spec = r.struct(object['spec'], 'spec', ['controllerName', 'parametersRef', 'description'], `{ controllerName: ${controller} }`);
  if (!spec) problems.error('spec', 'is missing: add spec with controllerName');
  const controllerName = r.string(spec, 'controllerName', 'spec', true);
  r.string(spec, 'description', 'spec');
  if (problems.hasErrors() || meta.name === undefined || controllerName === undefined) return rejectedObject(input, kind, meta, problems.issues);
  const generation = generationOf(object);
  return { name: meta.name, source: input.source, ...(generation !== undefined ? { generation } : {}), controllerName };
}

export function parseGatewayClass(input: SourcedObject, object: Fields, kind: string, meta: ObjectMeta): ParsedObject {
  const gatewayClass = readControlled(input, object, kind, meta, 'GatewayClass', GATEWAY_CONTROLLER_NAME);
  return 'type' in gatewayClass ? gatewayClass : { type: 'gatewayClass', key: objectKey(kind, '', gatewayClass.name), source: input.source, gatewayClass };
}

/** An XMesh (gateway.networking.x-k8s.io): the mesh a controller names itself by, and reports its features on. */
export function parseXMesh(input: SourcedObject, object: Fields, kind: string, meta: ObjectMeta): ParsedObject {
  const mesh = readControlled(input, object, kind, meta, 'XMesh', MESH_CONTROLLER_NAME);
  return 'type' in mesh ? mesh : { type: 'xmesh', key: objectKey(kind, '', mesh.name), source: input.source, mesh };
}

export function parseGatewayApiGateway(input: SourcedObject, object: Fields, kind: string, meta: ObjectMeta): ParsedObject {
  const problems = new ObjectProblems();
  requireName(meta, problems, 'Gateway');
  const r = new Reader(problems, 'Gateway');
  const spec = r.struct(object['spec'], 'spec', ['gatewayClassName', 'listeners', 'addresses', 'infrastructure', 'tls', 'allowedListeners', 'backendTLS'], '{ gatewayClassName: meshpilot, listeners: [...] }');
  if (!spec) problems.error('spec', 'is missing: add spec with gatewayClassName and listeners');
  const className = r.string(spec, 'gatewayClassName', 'spec', true);
  const listenersValue = spec?.['listeners'];
  const listeners = r.list(listenersValue, 'spec.listeners', 64).flatMap((l, i) => readListener(r, l, `spec.listeners[${i}]`) ?? []);
  if (spec && (!Array.isArray(listenersValue) || listenersValue.length === 0)) problems.error('spec.listeners', 'must list at least one listener, e.g. [{ name: http, port: 80, protocol: HTTP }]');
  const seen = new Map<string, number>();
  listeners.forEach((listener, i) => {
    const first = seen.get(listener.name);
    if (first !== undefined) problems.error(`spec.listeners[${i}].name`, `"${listener.name}" is already the name of spec.listeners[${first}]: listener names must be unique`);
    else seen.set(listener.name, i);
  });
  const addresses = r.list(spec?.['addresses'], 'spec.addresses', 16).flatMap((entry, i) => {
    const p = `spec.addresses[${i}]`;
    const a = r.struct(entry, p, ['type', 'value'], '{ type: IPAddress, value: 203.0.113.10 }');
    const value = r.string(a, 'value', p, true);
    const type = r.string(a, 'type', p) ?? 'IPAddress';
    if (value !== undefined && type === 'IPAddress' && !isIpAddress(value)) problems.error(`${p}.value`, `"${value}" is not an IP address`);
    return value === undefined ? [] : [{ type, value }];
  });
  if (problems.hasErrors() || meta.name === undefined || className === undefined) return rejectedObject(input, kind, meta, problems.issues);
  const generation = generationOf(object);
  const gateway: GatewayInfo = {
    namespace: meta.namespace,
    name: meta.name,
    source: input.source,
    ...(generation !== undefined ? { generation } : {}),
    ...(meta.creationTimestamp !== undefined ? { creationTimestamp: meta.creationTimestamp } : {}),
    className,
    listeners,
    addresses,
  };
  return { type: 'gatewayApiGateway', key: objectKey(GATEWAY_API_GATEWAY_KEY, meta.namespace, meta.name), source: input.source, gateway };
}
