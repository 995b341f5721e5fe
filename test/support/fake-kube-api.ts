// An in-process Kubernetes API server that speaks list/watch as the real one does: one global
// resourceVersion, paginated lists, chunked watch streams, bookmarks, 410 Gone after
// compaction, discovery for CRDs, and faults on demand (dropped, stalled and refused connections).
// Writes as a client makes them: create (201, or 409 AlreadyExists), update (409 on a stale
// resourceVersion), merge and JSON patches, the status subresource (status only, generation kept),
// Leases (coordination.k8s.io/v1, MicroTime checked), TokenReview against tokens a test registers,
// and each request's user, so a test can tell replicas apart. Deletes (of one object, a collection,
// a namespace with what it holds), label and field selectors, generateName, and
// CustomResourceDefinitions that serve their kind with their schema's defaults. pods/log and
// pods/exec (SPDY, in fake-kube-exec.ts) run what a test registers as the kubelet.
import { writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { stringify } from 'yaml';
import { applySchemaDefaults, resourceTypeOfCrd } from './fake-kube-crds.ts';
import { execOptions, refuseUpgrade, serveExecUpgrade, type AcceptedExec, type ExecHandler } from './fake-kube-exec.ts';
import { fieldSelector, labelSelector } from './fake-kube-selectors.ts';
import { jsonPatch, mergePatch } from './json-patch.ts';

export type KubeObject = Record<string, unknown> & { metadata?: Record<string, unknown> };

export interface ResourceType {
  readonly group: string;
  readonly versions: readonly string[];
  readonly plural: string;
  readonly kind: string;
  readonly namespaced: boolean;
  /** `subresources: status: {}` in its CRD: writes to the object keep its status, `/status` writes change only status. */
  readonly statusSubresource?: boolean;
  /** A CRD's structural schema per version, whose defaults writes get. */
  readonly schemas?: Readonly<Record<string, object>>;
}

/** What a change to the stored objects looks like to an in-process observer. */
export interface FakeKubeEvent {
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  readonly kind: string;
  readonly object: KubeObject;
}

const BUILTIN_TYPES: readonly ResourceType[] = [
  { group: '', versions: ['v1'], plural: 'namespaces', kind: 'Namespace', namespaced: false },
  { group: '', versions: ['v1'], plural: 'services', kind: 'Service', namespaced: true },
  { group: '', versions: ['v1'], plural: 'pods', kind: 'Pod', namespaced: true },
  { group: '', versions: ['v1'], plural: 'endpoints', kind: 'Endpoints', namespaced: true },
  { group: 'discovery.k8s.io', versions: ['v1'], plural: 'endpointslices', kind: 'EndpointSlice', namespaced: true },
  { group: '', versions: ['v1'], plural: 'secrets', kind: 'Secret', namespaced: true },
  { group: '', versions: ['v1'], plural: 'configmaps', kind: 'ConfigMap', namespaced: true },
  { group: 'coordination.k8s.io', versions: ['v1'], plural: 'leases', kind: 'Lease', namespaced: true },
  { group: 'apps', versions: ['v1'], plural: 'deployments', kind: 'Deployment', namespaced: true },
  { group: 'apiextensions.k8s.io', versions: ['v1'], plural: 'customresourcedefinitions', kind: 'CustomResourceDefinition', namespaced: false },
];
const CRD_KIND = 'CustomResourceDefinition';

const ADMIN_USER = 'admin';
/** metav1.MicroTime as the API server parses it (RFC3339 with exactly six fractional digits). */
const MICRO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}(Z|[+-]\d{2}:\d{2})$/;

/** What a registered service-account token stands for, as the API server's TokenReview sees it. */
export interface TokenIdentity {
  /** `system:serviceaccount:<namespace>:<name>` for a service account. */
  readonly username: string;
  /** Audiences the token was issued for (a projected token's `aud`). */
  readonly audiences: readonly string[];
  /** After this the token is expired. */
  readonly expiresAt?: Date;
}

const TOKEN_REVIEW_PATH = '/apis/authentication.k8s.io/v1/tokenreviews';
const POD_EXEC_PATH = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/exec$/;

/** The Istio traffic CRDs, served at the given versions (old clusters serve only v1alpha3). */
export function istioCrds(versions: readonly string[] = ['v1', 'v1beta1', 'v1alpha3']): ResourceType[] {
  return [
    ['VirtualService', 'virtualservices'],
    ['DestinationRule', 'destinationrules'],
    ['ServiceEntry', 'serviceentries'],
    ['WorkloadEntry', 'workloadentries'],
    ['Sidecar', 'sidecars'],
    ['Gateway', 'gateways'],
  ].map(([kind = '', plural = '']) => ({ group: 'networking.istio.io', versions, plural, kind, namespaced: true, statusSubresource: true }));
}

export const PEER_AUTHENTICATION_CRD: ResourceType = {
  group: 'security.istio.io',
  versions: ['v1', 'v1beta1'],
  plural: 'peerauthentications',
  kind: 'PeerAuthentication',
  namespaced: true,
  statusSubresource: true,
};

/** Istio's security CRDs, served at v1 and v1beta1 as Istio 1.22+ serves them. */
export const ISTIO_SECURITY_CRDS: readonly ResourceType[] = [
  PEER_AUTHENTICATION_CRD,
  { group: 'security.istio.io', versions: ['v1', 'v1beta1'], plural: 'authorizationpolicies', kind: 'AuthorizationPolicy', namespaced: true, statusSubresource: true },
];

/** The Gateway API kinds meshpilot reads for the mesh (GAMMA), as the standard channel serves them. */
export const GATEWAY_API_ROUTE_CRDS: readonly ResourceType[] = [
  { group: 'gateway.networking.k8s.io', versions: ['v1', 'v1beta1'], plural: 'httproutes', kind: 'HTTPRoute', namespaced: true, statusSubresource: true },
  { group: 'gateway.networking.k8s.io', versions: ['v1'], plural: 'grpcroutes', kind: 'GRPCRoute', namespaced: true, statusSubresource: true },
  { group: 'gateway.networking.k8s.io', versions: ['v1beta1'], plural: 'referencegrants', kind: 'ReferenceGrant', namespaced: true },
];

/** The Gateway API's GatewayClass and Gateway (standard channel); this fake keys kinds by name, so not beside Istio's Gateway. */
export const GATEWAY_API_GATEWAY_CRDS: readonly ResourceType[] = [
  { group: 'gateway.networking.k8s.io', versions: ['v1', 'v1beta1'], plural: 'gatewayclasses', kind: 'GatewayClass', namespaced: false, statusSubresource: true },
  { group: 'gateway.networking.k8s.io', versions: ['v1', 'v1beta1'], plural: 'gateways', kind: 'Gateway', namespaced: true, statusSubresource: true },
];

/** The Gateway API experimental channel's XMesh (cluster-scoped, with a status subresource). */
export const GATEWAY_API_MESH_CRD: ResourceType = { group: 'gateway.networking.x-k8s.io', versions: ['v1alpha1'], plural: 'xmeshes', kind: 'XMesh', namespaced: false, statusSubresource: true };

export const ROUTE_RULE_CRD: ResourceType = { group: 'config.istio.io', versions: ['v1alpha2'], plural: 'routerules', kind: 'RouteRule', namespaced: true };

export interface FakeKubeApiOptions {
  readonly host?: string;
  readonly port?: number;
  /** How a watch from a compacted resourceVersion is refused: an ERROR event (the watch cache) or HTTP 410. */
  readonly expiry?: 'error-event' | 'http-410';
  /** Bookmarks to watches that ask for them, this often (the real server: about every minute). */
  readonly bookmarkIntervalMs?: number;
  /** Write every watch event in two chunks, split mid-JSON, as a busy server's frames may fall. */
  readonly splitEvents?: boolean;
  readonly token?: string;
  /** Serve HTTPS with this certificate (client-go sends tokens only over TLS); plain HTTP without. */
  readonly tls?: { readonly cert: string; readonly key: string };
}

interface HistoryEvent {
  readonly rv: number;
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  readonly resource: ResourceType;
  readonly object: KubeObject;
}

interface OpenWatch {
  readonly resource: ResourceType;
  readonly version: string;
  readonly namespace: string | undefined;
  readonly response: ServerResponse;
  stalled: boolean;
  /** The watch's label and field selectors. */
  readonly matches: (object: KubeObject) => boolean;
  readonly timers: { end?: NodeJS.Timeout; bookmark?: NodeJS.Timeout };
}

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  /** Who made it: `admin` (the kubeconfig's default token) or a user from `kubeconfig(user)`. */
  readonly user: string;
}

interface Target {
  readonly resource: ResourceType;
  readonly version: string;
  readonly namespace?: string;
  readonly name?: string;
  readonly subresource?: 'status';
}

function clone<T>(value: T): T {
  return structuredClone(value);
}

function metaOf(object: KubeObject): Record<string, unknown> {
  return object.metadata ?? {};
}

function status(code: number, reason: string, message: string): KubeObject {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

async function readBody(request: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

/** Everything but metadata and status: what a change of bumps metadata.generation. */
function specOf(object: KubeObject | undefined): string {
  if (!object) return '';
  const { metadata: _metadata, status: _status, apiVersion: _apiVersion, kind: _kind, ...rest } = object;
  return JSON.stringify(rest);
}

export class FakeKubeApi {
  readonly requests: RecordedRequest[] = [];
  readonly #options: FakeKubeApiOptions;
  readonly #server;
  readonly #sockets = new Set<Socket>();
  readonly #types = new Map<string, ResourceType>();
  readonly #objects = new Map<string, KubeObject>();
  #history: HistoryEvent[] = [];
  readonly #watches = new Set<OpenWatch>();
  #rv = 1000;
  #compactedThrough = 1000;
  #offline = false;
  #heldLists: Promise<void> | undefined;
  readonly #tokens = new Map<string, TokenIdentity>();
  #heldCreates: { kind: string; count: number; waiting: (() => void)[] } | undefined;
  /** Bearer token -> user name. */
  readonly #users = new Map<string, string>();
  readonly #refusedUsers = new Set<string>();
  #port = 0;
  readonly #observers = new Set<(event: FakeKubeEvent) => void>();
  #logs: ((namespace: string, pod: string, sinceTime: Date | undefined) => string | undefined) | undefined;
  #exec: ExecHandler | undefined;
  #generated = 0;

  private constructor(options: FakeKubeApiOptions) {
    this.#options = options;
    const handle = (request: IncomingMessage, response: ServerResponse): void => {
      void this.#handle(request, response);
    };
    this.#server = options.tls ? createTlsServer({ cert: options.tls.cert, key: options.tls.key }, handle) : createServer(handle);
    this.#users.set(options.token ?? 'fake-token', ADMIN_USER);
    for (const type of BUILTIN_TYPES) this.#types.set(type.kind, type);
    this.#server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      this.#upgrade(request, socket, head);
    });
    this.#server.on('connection', (socket: Socket) => {
      if (this.#offline) {
        socket.destroy();
        return;
      }
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
  }

  static async start(options: FakeKubeApiOptions = {}): Promise<FakeKubeApi> {
    const api = new FakeKubeApi(options);
    await new Promise<void>((resolve) => api.#server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve));
    const address = api.#server.address();
    api.#port = typeof address === 'object' && address ? address.port : 0;
    return api;
  }

  get url(): string {
    return `${this.#options.tls ? 'https' : 'http'}://${this.#options.host ?? '127.0.0.1'}:${this.#port}`;
  }

  get resourceVersion(): string {
    return String(this.#rv);
  }

  /** How many watch streams are open now. */
  openWatches(resource?: string): number {
    return [...this.#watches].filter((watch) => resource === undefined || watch.resource.plural === resource).length;
  }

  /** A kubeconfig for this server, as `kubectl config view --raw` would print one; with `user`, that user's own token. */
  kubeconfig(user?: string): string {
    const token = user === undefined ? (this.#options.token ?? 'fake-token') : `token-of-${user}`;
    if (user !== undefined) this.#users.set(token, user);
    return stringify({
      apiVersion: 'v1',
      kind: 'Config',
      // client-node refuses plain http unless TLS verification is explicitly off.
      clusters: [{ name: 'fake', cluster: { server: this.url, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'fake', user: { token } }],
      contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'fake' } }],
      'current-context': 'fake',
    });
  }

  async writeKubeconfig(path: string, user?: string): Promise<void> {
    await writeFile(path, this.kubeconfig(user));
  }

  /** While refused, every request of `user` has its connection cut (that client is partitioned away; others are not). */
  refuseUser(user: string, refused = true): void {
    if (refused) this.#refusedUsers.add(user);
    else this.#refusedUsers.delete(user);
  }

  /** Writes (POST, PUT, PATCH) `user` made, optionally only those to paths ending in `suffix`. */
  writesBy(user: string, suffix = ''): RecordedRequest[] {
    return this.requests.filter((r) => r.user === user && r.method !== 'GET' && r.path.endsWith(suffix));
  }

  installCrd(type: ResourceType): void {
    this.#types.set(type.kind, type);
  }

  /** Deleting a CRD deletes its objects (each a DELETED event) and ends its watches. */
  removeCrd(kind: string): void {
    const type = this.#types.get(kind);
    if (!type) return;
    for (const [key, object] of [...this.#objects]) {
      if (key.startsWith(`${kind}/`)) {
        this.#objects.delete(key);
        this.#record('DELETED', type, object);
      }
    }
    for (const watch of [...this.#watches]) if (watch.resource === type) watch.response.end();
    this.#types.delete(kind);
  }

  /** Creates or replaces an object (like `kubectl apply`); returns what is stored. */
  apply(input: KubeObject): KubeObject {
    const kind = String(input['kind']);
    const type = this.#types.get(kind);
    if (!type) throw new Error(`the fake API does not serve kind ${kind}; install its CRD first`);
    const object = this.#defaulted(type, undefined, clone(input));
    const meta = (object.metadata = { ...metaOf(object) });
    const namespace = type.namespaced ? (typeof meta['namespace'] === 'string' ? meta['namespace'] : 'default') : undefined;
    if (namespace !== undefined) meta['namespace'] = namespace;
    const key = this.#key(type, namespace, String(meta['name']));
    const existing = this.#objects.get(key);
    meta['uid'] = existing ? metaOf(existing)['uid'] : (meta['uid'] ?? `uid-${key}`);
    meta['creationTimestamp'] = existing ? metaOf(existing)['creationTimestamp'] : (meta['creationTimestamp'] ?? new Date(Date.UTC(2026, 0, 1, 0, 0, this.#rv % 60)).toISOString());
    this.#setGeneration(type, object, existing);
    // As `kubectl apply`: a manifest without status leaves the status a controller wrote.
    if (type.statusSubresource && !('status' in input) && existing?.['status'] !== undefined) object['status'] = clone(existing['status']);
    this.#objects.set(key, object);
    this.#record(existing ? 'MODIFIED' : 'ADDED', type, object);
    if (kind === CRD_KIND) this.installCrd(resourceTypeOfCrd(object));
    return clone(object);
  }

  /** Calls `observer` with every change from now on (in-process controllers); returns the unsubscribe. */
  subscribe(observer: (event: FakeKubeEvent) => void): () => void {
    this.#observers.add(observer);
    return () => this.#observers.delete(observer);
  }

  /** Serves `pods/log` (the kubelet's part): a Pod's log text since `sinceTime`, undefined for a Pod with none. */
  serveLogs(logs: (namespace: string, pod: string, sinceTime: Date | undefined) => string | undefined): void {
    this.#logs = logs;
  }

  /** Serves `pods/exec` (the kubelet's part, over SPDY as client-go's executor asks): runs a command in a Pod's container. */
  serveExec(handler: ExecHandler): void {
    this.#exec = handler;
  }

  /** Every stored object of `kind`, optionally in one namespace. */
  list(kind: string, namespace?: string): KubeObject[] {
    const type = this.#types.get(kind);
    return type ? this.#inScope(type, namespace).map(clone) : [];
  }

  applyAll(objects: readonly KubeObject[]): void {
    for (const object of objects) this.apply(object);
  }

  get(kind: string, namespace: string | undefined, name: string): KubeObject | undefined {
    const type = this.#types.get(kind);
    const object = type ? this.#objects.get(this.#key(type, namespace, name)) : undefined;
    return object ? clone(object) : undefined;
  }

  delete(kind: string, namespace: string | undefined, name: string): void {
    const type = this.#types.get(kind);
    if (!type) return;
    const key = this.#key(type, namespace, name);
    const object = this.#objects.get(key);
    if (!object) return;
    // The namespace controller empties a namespace before it goes.
    if (kind === 'Namespace') {
      for (const held of [...this.#types.values()].filter((t) => t.namespaced)) {
        for (const inside of this.#inScope(held, name)) this.delete(held.kind, name, String(metaOf(inside)['name']));
      }
    }
    this.#objects.delete(key);
    this.#record('DELETED', type, object);
    if (kind === CRD_KIND) this.removeCrd(resourceTypeOfCrd(object).kind);
  }

  /** A MODIFIED event that changes nothing but the resourceVersion (a no-op update, a status heartbeat). */
  touch(kind: string, namespace: string | undefined, name: string): void {
    const object = this.get(kind, namespace, name);
    if (!object) throw new Error(`no ${kind} ${namespace ?? ''}/${name}`);
    this.apply(object);
  }

  /** Forgets the event history, as etcd compaction does: watches from older versions get 410 Gone. */
  compact(): void {
    this.#history = [];
    this.#compactedThrough = this.#rv;
  }

  /** Sends every open watch a 410 Gone ERROR event and ends it, as when the watch cache is re-initialised. */
  expireWatches(): void {
    this.compact();
    for (const watch of [...this.#watches]) {
      this.#send(watch, { type: 'ERROR', object: status(410, 'Expired', `too old resource version: ${this.#rv - 1} (${this.#rv})`) });
      watch.response.end();
    }
  }

  /** Cuts every open watch connection mid-stream (a load balancer or apiserver restart). */
  dropWatches(): void {
    for (const watch of [...this.#watches]) watch.response.socket?.destroy();
  }

  /** Open watches stay connected but never send another byte (a half-dead connection). */
  stallWatches(): void {
    for (const watch of this.#watches) watch.stalled = true;
  }

  /** While offline every connection is refused and open ones are cut; the objects stay. */
  setOffline(offline: boolean): void {
    this.#offline = offline;
    if (offline) for (const socket of this.#sockets) socket.destroy();
  }

  /** Lists wait until the returned function is called (a slow first list). */
  holdLists(): () => void {
    let release: () => void = () => undefined;
    this.#heldLists = new Promise((resolve) => {
      release = () => {
        this.#heldLists = undefined;
        resolve();
      };
    });
    return release;
  }

  /** A service-account token TokenReview accepts (for its audiences, until it expires). */
  registerToken(token: string, identity: TokenIdentity): void {
    this.#tokens.set(token, identity);
  }

  /** Creates of `kind` wait until `count` of them have arrived, then all proceed in arrival order (a race made certain). */
  holdCreates(kind: string, count: number): void {
    this.#heldCreates = { kind, count, waiting: [] };
  }

  async close(): Promise<void> {
    for (const watch of this.#watches) {
      clearTimeout(watch.timers.end);
      clearTimeout(watch.timers.bookmark);
    }
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => { resolve(); }));
  }

  #key(type: ResourceType, namespace: string | undefined, name: string): string {
    return `${type.kind}/${type.namespaced ? (namespace ?? 'default') : ''}/${name}`;
  }

  #isCustom(type: ResourceType): boolean {
    return !BUILTIN_TYPES.includes(type);
  }

  /** Custom resources: generation 1 on create, +1 whenever anything but metadata and status changes. */
  #setGeneration(type: ResourceType, object: KubeObject, existing: KubeObject | undefined): void {
    if (!this.#isCustom(type)) return;
    const meta = (object.metadata = { ...metaOf(object) });
    const before = Number(existing ? metaOf(existing)['generation'] : 0) || 0;
    meta['generation'] = !existing ? 1 : specOf(existing) === specOf(object) ? before : before + 1;
  }

  #record(type: HistoryEvent['type'], resource: ResourceType, object: KubeObject): void {
    this.#rv++;
    const meta: Record<string, unknown> = (object.metadata = { ...metaOf(object), resourceVersion: String(this.#rv) });
    const event: HistoryEvent = { rv: this.#rv, type, resource, object: clone(object) };
    this.#history.push(event);
    for (const watch of this.#watches) {
      if (watch.resource === resource && (watch.namespace === undefined || watch.namespace === meta['namespace']) && watch.matches(event.object)) {
        this.#send(watch, { type, object: this.#versioned(event.object, resource, watch.version) });
      }
    }
    for (const observer of this.#observers) observer({ type, kind: resource.kind, object: clone(event.object) });
  }

  /** What the server fills in on a write: a Namespace's `kubernetes.io/metadata.name` label (1.22+), a CRD schema's defaults for the version written (the storage version in process). */
  #defaulted(type: ResourceType, version: string | undefined, object: KubeObject): KubeObject {
    if (type.kind === 'Namespace') {
      const meta = metaOf(object);
      return { ...object, metadata: { ...meta, labels: { ...(meta['labels'] as Record<string, string> | undefined), 'kubernetes.io/metadata.name': meta['name'] } } };
    }
    const schema = type.schemas?.[version ?? type.versions[0] ?? ''];
    if (!schema) return object;
    const { metadata, ...rest } = object;
    return { ...(applySchemaDefaults(schema, rest) as KubeObject), ...(metadata ? { metadata } : {}) };
  }

  #versioned(object: KubeObject, resource: ResourceType, version: string): KubeObject {
    return { ...clone(object), apiVersion: resource.group ? `${resource.group}/${version}` : version, kind: resource.kind };
  }

  #send(watch: OpenWatch, event: { type: string; object: KubeObject }): void {
    if (watch.stalled || watch.response.writableEnded) return;
    const line = `${JSON.stringify(event)}\n`;
    if (this.#options.splitEvents) {
      const middle = Math.floor(line.length / 2);
      watch.response.write(line.slice(0, middle));
      watch.response.write(line.slice(middle));
    } else {
      watch.response.write(line);
    }
  }

  #json(response: ServerResponse, code: number, body: unknown): void {
    response.writeHead(code, { 'Content-Type': 'application/json' });
    response.end(JSON.stringify(body));
  }

  /** Records the request; its user, or undefined for an unknown token. */
  #authenticate(request: IncomingMessage): { url: URL; query: Record<string, string>; user: string | undefined } {
    const url = new URL(request.url ?? '/', this.url);
    const query = Object.fromEntries(url.searchParams);
    const bearer = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1];
    const user = bearer === undefined ? undefined : this.#users.get(bearer);
    this.requests.push({ method: request.method ?? 'GET', path: url.pathname, query, user: user ?? '' });
    return { url, query, user };
  }

  /** Upgrade requests: pods/exec, checked as the API server does before it hands the connection to the kubelet. */
  #upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    const { url, user } = this.#authenticate(request);
    if (user !== undefined && this.#refusedUsers.has(user)) {
      socket.destroy();
      return;
    }
    const exec = user === undefined ? { refusal: status(401, 'Unauthorized', 'Unauthorized') } : this.#execCheck(request.method, url);
    if ('refusal' in exec) refuseUpgrade(socket, Number(exec.refusal['code']), JSON.stringify(exec.refusal));
    else serveExecUpgrade(request, socket, head, exec.options, exec.handler);
  }

  /** The exec the API server would pass on to the kubelet, or why it would not. */
  #execCheck(method: string | undefined, url: URL): { refusal: KubeObject } | { options: AcceptedExec; handler: ExecHandler } {
    const [, namespace = '', name = ''] = POD_EXEC_PATH.exec(url.pathname) ?? [];
    if (name === '' || (method !== 'POST' && method !== 'GET')) return { refusal: status(404, 'NotFound', `the server could not find the requested resource (${url.pathname})`) };
    const pod = this.get('Pod', namespace, name);
    if (!pod) return { refusal: status(404, 'NotFound', `pods "${name}" not found`) };
    const spec = (pod['spec'] ?? {}) as { containers?: { name?: string }[] };
    const options = execOptions(namespace, name, (spec.containers ?? []).map((c) => c.name ?? ''), url.searchParams);
    if (!options.ok) return { refusal: status(options.code, options.reason, options.message) };
    if (!this.#exec) return { refusal: status(500, 'InternalError', 'Internal error occurred: error dialing backend: no kubelet serves exec here (serveExec)') };
    return { options, handler: this.#exec };
  }

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const { url, query, user } = this.#authenticate(request);
    if (user === undefined) {
      this.#json(response, 401, status(401, 'Unauthorized', 'Unauthorized'));
      return;
    }
    if (this.#refusedUsers.has(user)) {
      request.socket.destroy();
      return;
    }
    if (POD_EXEC_PATH.test(url.pathname)) {
      await readBody(request);
      this.#json(response, 400, status(400, 'BadRequest', 'Upgrade request required'));
      return;
    }
    const segments = url.pathname.split('/').filter((segment) => segment !== '');
    if (request.method === 'POST' || request.method === 'PUT' || request.method === 'PATCH') {
      const body = await readBody(request);
      if (request.method === 'POST' && url.pathname === TOKEN_REVIEW_PATH) {
        this.#tokenReview(response, body as KubeObject | undefined);
        return;
      }
      const target = this.#resolve(segments);
      if (!target) {
        this.#json(response, 404, status(404, 'NotFound', `the server could not find the requested resource (${url.pathname})`));
        return;
      }
      if (request.method === 'POST' && target.name === undefined && target.subresource === undefined) await this.#create(response, target, body as KubeObject | undefined);
      else if (request.method === 'PUT' && target.name !== undefined) this.#update(response, { ...target, name: target.name }, body as KubeObject | undefined);
      else if (request.method === 'PATCH' && target.name !== undefined) this.#patch(response, { ...target, name: target.name }, request.headers['content-type'] ?? '', body);
      else this.#json(response, 405, status(405, 'MethodNotAllowed', `${request.method} is not allowed on ${url.pathname}`));
      return;
    }
    if (request.method === 'DELETE') {
      await readBody(request);
      const target = this.#resolve(segments);
      if (!target || target.subresource !== undefined) this.#json(response, 404, status(404, 'NotFound', `the server could not find the requested resource (${url.pathname})`));
      else if (target.name === undefined) this.#deleteCollection(response, target, query);
      else this.#deleteOne(response, { ...target, name: target.name });
      return;
    }
    if (request.method !== 'GET') {
      this.#json(response, 405, status(405, 'MethodNotAllowed', `${request.method ?? ''} is not served by this fake API server`));
      return;
    }
    const log = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/log$/.exec(url.pathname);
    if (log) {
      const [, namespace = '', pod = ''] = log;
      const text = this.get('Pod', namespace, pod) ? this.#logs?.(namespace, pod, query['sinceTime'] ? new Date(query['sinceTime']) : undefined) : undefined;
      if (text === undefined) this.#json(response, 404, status(404, 'NotFound', `pods "${pod}" not found`));
      else {
        response.writeHead(200, { 'Content-Type': 'text/plain' });
        response.end(text);
      }
      return;
    }
    const discovery = this.#discovery(segments);
    if (discovery !== undefined) {
      this.#json(response, discovery === null ? 404 : 200, discovery ?? status(404, 'NotFound', `the server could not find the requested resource (${url.pathname})`));
      return;
    }
    const target = this.#resolve(segments);
    if (!target) {
      this.#json(response, 404, status(404, 'NotFound', `the server could not find the requested resource (${url.pathname})`));
      return;
    }
    if ((query['watch'] === 'true' || query['watch'] === '1') && target.subresource === undefined) {
      this.#watch(response, target, query);
      return;
    }
    if (this.#heldLists) await this.#heldLists;
    if (target.name !== undefined) {
      const object = this.#objects.get(this.#key(target.resource, target.namespace, target.name));
      if (object) this.#json(response, 200, this.#versioned(object, target.resource, target.version));
      else this.#json(response, 404, status(404, 'NotFound', `${target.resource.plural} "${target.name}" not found`));
      return;
    }
    this.#list(response, target, query);
  }

  /** DELETE of one object: 200 with the object as it was (deletion is immediate: no finalizers here). */
  #deleteOne(response: ServerResponse, target: Target & { name: string }): void {
    const existing = this.#objects.get(this.#key(target.resource, target.namespace, target.name));
    if (!existing) {
      this.#json(response, 404, status(404, 'NotFound', `${target.resource.plural}${target.resource.group ? `.${target.resource.group}` : ''} "${target.name}" not found`));
      return;
    }
    this.delete(target.resource.kind, target.namespace, target.name);
    this.#json(response, 200, this.#versioned(existing, target.resource, target.version));
  }

  /** DELETE of a collection (deletecollection): every object in scope its selectors pick. */
  #deleteCollection(response: ServerResponse, target: Target, query: Record<string, string>): void {
    const matches = this.#selectors(response, query);
    if (!matches) return;
    const gone = this.#inScope(target.resource, target.namespace).filter(matches);
    for (const object of gone) this.delete(target.resource.kind, metaOf(object)['namespace'] as string | undefined, String(metaOf(object)['name']));
    this.#json(response, 200, { kind: `${target.resource.kind}List`, apiVersion: target.resource.group ? `${target.resource.group}/${target.version}` : target.version, metadata: { resourceVersion: String(this.#rv) }, items: gone.map((o) => this.#versioned(o, target.resource, target.version)) });
  }

  /** The query's labelSelector and fieldSelector as one predicate; a 400 (and undefined) for a malformed one. */
  #selectors(response: ServerResponse, query: Record<string, string>): ((object: KubeObject) => boolean) | undefined {
    try {
      const byLabels = labelSelector(query['labelSelector']);
      const byFields = fieldSelector(query['fieldSelector']);
      return (object) => byLabels((metaOf(object)['labels'] ?? {}) as Record<string, string>) && byFields(object);
    } catch (error) {
      this.#json(response, 400, status(400, 'BadRequest', error instanceof Error ? error.message : String(error)));
      return undefined;
    }
  }

  /** TokenReview as the API server answers it: 201 with status.authenticated and, when true, the user and audiences. */
  #tokenReview(response: ServerResponse, body: KubeObject | undefined): void {
    const spec = (body?.['spec'] ?? {}) as { token?: string; audiences?: string[] };
    const wanted = spec.audiences ?? [];
    const identity = spec.token === undefined ? undefined : this.#tokens.get(spec.token);
    const review = (status: Record<string, unknown>): void => {
      this.#json(response, 201, { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', metadata: { creationTimestamp: null }, spec, status });
    };
    if (!identity) {
      review({ authenticated: false, error: '[invalid bearer token, square/go-jose: error in cryptographic primitive]' });
      return;
    }
    if (identity.expiresAt && identity.expiresAt <= new Date()) {
      review({ authenticated: false, error: '[invalid bearer token, service account token has expired]' });
      return;
    }
    const audiences = wanted.length === 0 ? identity.audiences : identity.audiences.filter((audience) => wanted.includes(audience));
    if (audiences.length === 0) {
      review({ authenticated: false, error: `[invalid bearer token, token audiences ${JSON.stringify(identity.audiences)} is invalid for the target audiences ${JSON.stringify(wanted)}]` });
      return;
    }
    const user = /^system:serviceaccount:([^:]+):/.exec(identity.username);
    review({
      authenticated: true,
      user: { username: identity.username, uid: `uid-${identity.username}`, groups: user ? ['system:serviceaccounts', `system:serviceaccounts:${user[1] ?? ''}`, 'system:authenticated'] : ['system:authenticated'] },
      audiences,
    });
  }

  async #create(response: ServerResponse, target: Target, body: KubeObject | undefined): Promise<void> {
    const held = this.#heldCreates;
    if (held?.kind === target.resource.kind) {
      await new Promise<void>((resolve) => {
        held.waiting.push(resolve);
        if (held.waiting.length >= held.count) {
          this.#heldCreates = undefined;
          for (const release of held.waiting) release();
        }
      });
    }
    const generateName = body?.metadata?.['generateName'];
    // The server appends five random characters to generateName (here: a counter, base 36).
    const name = typeof generateName === 'string' && generateName !== '' && !body?.metadata?.['name'] ? `${generateName}${(this.#generated++).toString(36).padStart(5, '0')}` : body?.metadata?.['name'];
    if (typeof name !== 'string' || name === '') {
      this.#json(response, 422, status(422, 'Invalid', `${target.resource.kind} "" is invalid: metadata.name: Required value: name or generateName is required`));
      return;
    }
    if (this.#objects.has(this.#key(target.resource, target.namespace, name))) {
      this.#json(response, 409, { ...status(409, 'AlreadyExists', `${target.resource.plural} "${name}" already exists`), details: { name, kind: target.resource.plural } });
      return;
    }
    const object: KubeObject = this.#defaulted(target.resource, target.version, { ...body, kind: target.resource.kind, metadata: { ...body?.metadata, name, ...(target.resource.namespaced ? { namespace: target.namespace ?? 'default' } : {}) } });
    // A status subresource means status is not set on create.
    if (target.resource.statusSubresource) delete object['status'];
    if (!this.#valid(response, target.resource, name, object)) return;
    const stored = this.apply(object);
    this.#json(response, 201, this.#versioned(stored, target.resource, target.version));
  }

  #update(response: ServerResponse, target: Target & { name: string }, body: KubeObject | undefined): void {
    const existing = this.#objects.get(this.#key(target.resource, target.namespace, target.name));
    if (!existing) {
      this.#json(response, 404, status(404, 'NotFound', `${target.resource.plural} "${target.name}" not found`));
      return;
    }
    const given = body?.metadata?.['resourceVersion'];
    if (given === undefined && this.#isCustom(target.resource)) {
      // Custom resources allow no unconditional update.
      this.#json(response, 422, status(422, 'Invalid', `${target.resource.kind} "${target.name}" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update`));
      return;
    }
    this.#write(response, target, existing, body ?? {});
  }

  /** PATCH: a merge or JSON patch of the stored object, then written as an update (preconditions come from the patch itself). */
  #patch(response: ServerResponse, target: Target & { name: string }, contentType: string, body: unknown): void {
    const existing = this.#objects.get(this.#key(target.resource, target.namespace, target.name));
    if (!existing) {
      this.#json(response, 404, status(404, 'NotFound', `${target.resource.plural} "${target.name}" not found`));
      return;
    }
    const type = contentType.split(';')[0]?.trim();
    const current = this.#versioned(existing, target.resource, target.version);
    let patched: KubeObject;
    try {
      if (type === 'application/merge-patch+json') patched = mergePatch(current, body) as KubeObject;
      else if (type === 'application/json-patch+json') patched = jsonPatch(current, body);
      else if (type === 'application/strategic-merge-patch+json' && !this.#isCustom(target.resource)) patched = mergePatch(current, body) as KubeObject;
      else {
        this.#json(response, 415, status(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json${this.#isCustom(target.resource) ? '' : ', application/strategic-merge-patch+json'}`));
        return;
      }
    } catch (error) {
      this.#json(response, 422, status(422, 'Invalid', `the patch cannot be applied: ${error instanceof Error ? error.message : String(error)}`));
      return;
    }
    // A patch that leaves metadata.resourceVersion as stored is unconditional.
    this.#write(response, target, existing, patched);
  }

  /** An update of an existing object, as the API server's registry makes it. */
  #write(response: ServerResponse, target: Target & { name: string }, existing: KubeObject, body: KubeObject): void {
    const { resource } = target;
    const given = body.metadata?.['resourceVersion'];
    if (given !== undefined && given !== metaOf(existing)['resourceVersion']) {
      this.#json(response, 409, status(409, 'Conflict', `Operation cannot be fulfilled on ${resource.plural}${resource.group ? `.${resource.group}` : ''} "${target.name}": the object has been modified; please apply your changes to the latest version and try again`));
      return;
    }
    let next: KubeObject;
    if (target.subresource === 'status') {
      // The status strategy: everything but status stays as stored.
      next = clone(existing);
      if (body['status'] === undefined) delete next['status'];
      else next['status'] = clone(body['status']);
    } else {
      const kept = metaOf(existing);
      next = { ...clone(body), kind: resource.kind, metadata: { ...body.metadata, uid: kept['uid'], creationTimestamp: kept['creationTimestamp'], name: target.name, ...(resource.namespaced ? { namespace: target.namespace ?? 'default' } : {}) } };
      delete next['apiVersion'];
      // With a status subresource, writes to the object leave its status alone.
      if (resource.statusSubresource) {
        if (existing['status'] === undefined) delete next['status'];
        else next['status'] = clone(existing['status']);
      }
      next = this.#defaulted(resource, target.version, next);
      this.#setGeneration(resource, next, existing);
    }
    if (!this.#valid(response, resource, target.name, next)) return;
    const unchanged = JSON.stringify({ ...next, metadata: { ...metaOf(next), resourceVersion: undefined } }) === JSON.stringify({ ...existing, metadata: { ...metaOf(existing), resourceVersion: undefined } });
    if (unchanged) {
      // A no-op update writes nothing: no new resourceVersion, no watch event.
      this.#json(response, 200, this.#versioned(existing, resource, target.version));
      return;
    }
    const key = this.#key(resource, target.namespace, target.name);
    this.#objects.set(key, next);
    this.#record('MODIFIED', resource, next);
    this.#json(response, 200, this.#versioned(next, resource, target.version));
  }

  /** What the API server's decoding and validation refuse of the kinds the fake writes: Leases' times and durations. */
  #valid(response: ServerResponse, resource: ResourceType, name: string, object: KubeObject): boolean {
    if (resource.kind !== 'Lease') return true;
    const spec = (object['spec'] ?? {}) as Record<string, unknown>;
    for (const field of ['acquireTime', 'renewTime']) {
      const value = spec[field];
      if (value !== undefined && value !== null && (typeof value !== 'string' || !MICRO_TIME.test(value))) {
        this.#json(response, 400, status(400, 'BadRequest', `Lease in version "v1" cannot be handled as a Lease: parsing time ${JSON.stringify(value)} as "2006-01-02T15:04:05.000000Z07:00": cannot parse as RFC3339 with microseconds`));
        return false;
      }
    }
    for (const [field, minimum] of [['leaseDurationSeconds', 1], ['leaseTransitions', 0]] as const) {
      const value = spec[field];
      if (value !== undefined && value !== null && (typeof value !== 'number' || !Number.isInteger(value) || value < minimum)) {
        this.#json(response, 422, status(422, 'Invalid', `Lease.coordination.k8s.io "${name}" is invalid: spec.${field}: Invalid value: ${JSON.stringify(value)}: must be ${minimum === 1 ? 'greater than 0' : 'greater than or equal to 0'}`));
        return false;
      }
    }
    return true;
  }

  /** Discovery documents; null for a group or version that is not served, undefined for other paths. */
  #discovery(segments: string[]): unknown {
    const types = [...this.#types.values()];
    const resourceList = (group: string, version: string): unknown => {
      const served = types.filter((type) => type.group === group && type.versions.includes(version));
      if (served.length === 0) return null;
      return {
        kind: 'APIResourceList',
        apiVersion: 'v1',
        groupVersion: group ? `${group}/${version}` : version,
        resources: served.flatMap((type) => [
          { name: type.plural, singularName: type.kind.toLowerCase(), namespaced: type.namespaced, kind: type.kind, verbs: ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'] },
          ...(type.statusSubresource ? [{ name: `${type.plural}/status`, singularName: '', namespaced: type.namespaced, kind: type.kind, verbs: ['get', 'patch', 'update'] }] : []),
        ]),
      };
    };
    const apiGroup = (group: string): unknown => {
      const versions = [...new Set(types.filter((type) => type.group === group).flatMap((type) => type.versions))];
      if (versions.length === 0) return null;
      const entries = versions.map((version) => ({ groupVersion: `${group}/${version}`, version }));
      return { kind: 'APIGroup', apiVersion: 'v1', name: group, versions: entries, preferredVersion: entries[0] };
    };
    if (segments.length === 1 && segments[0] === 'api') return { kind: 'APIVersions', versions: ['v1'] };
    if (segments.length === 2 && segments[0] === 'api') return resourceList('', segments[1] ?? '');
    if (segments.length === 1 && segments[0] === 'apis') {
      const groups = [...new Set(types.map((type) => type.group).filter((group) => group !== ''))];
      return { kind: 'APIGroupList', apiVersion: 'v1', groups: groups.map(apiGroup) };
    }
    if (segments.length === 2 && segments[0] === 'apis') return apiGroup(segments[1] ?? '');
    if (segments.length === 3 && segments[0] === 'apis') return resourceList(segments[1] ?? '', segments[2] ?? '');
    return undefined;
  }

  #resolve(segments: string[]): Target | undefined {
    const [root, ...rest] = segments;
    let group = '';
    if (root === 'apis') group = rest.shift() ?? '';
    else if (root !== 'api') return undefined;
    const version = rest.shift() ?? '';
    let namespace: string | undefined;
    // `/namespaces/NS/plural...` scopes to a namespace; `/namespaces` and `/namespaces/NS` are Namespace objects.
    if (rest[0] === 'namespaces' && rest.length >= 3) {
      namespace = rest[1];
      rest.splice(0, 2);
    }
    const [plural, name, subresource, ...extra] = rest;
    if (extra.length > 0 || (subresource !== undefined && subresource !== 'status')) return undefined;
    const resource = [...this.#types.values()].find((type) => type.group === group && type.plural === plural && type.versions.includes(version));
    if (!resource || (namespace !== undefined && !resource.namespaced)) return undefined;
    if (subresource === 'status' && !resource.statusSubresource) return undefined;
    return { resource, version, ...(namespace !== undefined ? { namespace } : {}), ...(name !== undefined ? { name } : {}), ...(subresource === 'status' ? { subresource } : {}) };
  }

  #inScope(resource: ResourceType, namespace: string | undefined): KubeObject[] {
    return [...this.#objects.entries()]
      .filter(([key, object]) => key.startsWith(`${resource.kind}/`) && (namespace === undefined || metaOf(object)['namespace'] === namespace))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, object]) => object);
  }

  #list(response: ServerResponse, target: Target, query: Record<string, string>): void {
    const { resource, version, namespace } = target;
    let listRv = this.#rv;
    let start = 0;
    if (query['continue']) {
      const token = JSON.parse(Buffer.from(query['continue'], 'base64url').toString('utf8')) as { rv: number; start: number };
      if (token.rv < this.#compactedThrough) {
        this.#json(response, 410, status(410, 'Expired', 'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.'));
        return;
      }
      listRv = token.rv;
      start = token.start;
    }
    const matches = this.#selectors(response, query);
    if (!matches) return;
    const all = this.#inScope(resource, namespace).filter(matches);
    const limit = Number(query['limit'] ?? 0);
    const end = limit > 0 ? Math.min(all.length, start + limit) : all.length;
    // Lists of built-in types leave kind and apiVersion off their items; custom resources keep them.
    const items = all.slice(start, end).map((object) => {
      const item = this.#versioned(object, resource, version);
      if (resource.group === '' || resource.group.endsWith('.k8s.io')) {
        delete item['kind'];
        delete item['apiVersion'];
      }
      return item;
    });
    const more = end < all.length;
    this.#json(response, 200, {
      kind: `${resource.kind}List`,
      apiVersion: resource.group ? `${resource.group}/${version}` : version,
      metadata: {
        resourceVersion: String(listRv),
        ...(more ? { continue: Buffer.from(JSON.stringify({ rv: listRv, start: end })).toString('base64url'), remainingItemCount: all.length - end } : {}),
      },
      items,
    });
  }

  #watch(response: ServerResponse, target: Target, query: Record<string, string>): void {
    const { resource, version, namespace } = target;
    const from = query['resourceVersion'] ?? '';
    const fromRv = Number(from);
    const expired = from !== '' && from !== '0' && fromRv < this.#compactedThrough;
    if (expired && this.#options.expiry === 'http-410') {
      this.#json(response, 410, status(410, 'Expired', `too old resource version: ${from} (${this.#compactedThrough})`));
      return;
    }
    const matches = this.#selectors(response, query);
    if (!matches) return;
    response.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    response.flushHeaders();
    const watch: OpenWatch = { resource, version, namespace, response, stalled: false, matches, timers: {} };
    if (expired) {
      this.#send(watch, { type: 'ERROR', object: status(410, 'Expired', `too old resource version: ${from} (${this.#compactedThrough})`) });
      response.end();
      return;
    }
    this.#watches.add(watch);
    response.on('close', () => {
      this.#watches.delete(watch);
      clearTimeout(watch.timers.end);
      clearTimeout(watch.timers.bookmark);
    });
    if (from === '' || from === '0') {
      for (const object of this.#inScope(resource, namespace).filter(matches)) this.#send(watch, { type: 'ADDED', object: this.#versioned(object, resource, version) });
    } else {
      for (const event of this.#history) {
        if (event.rv > fromRv && event.resource === resource && (namespace === undefined || metaOf(event.object)['namespace'] === namespace) && matches(event.object)) {
          this.#send(watch, { type: event.type, object: this.#versioned(event.object, resource, version) });
        }
      }
    }
    const timeoutSeconds = Number(query['timeoutSeconds'] ?? 0);
    if (timeoutSeconds > 0) watch.timers.end = setTimeout(() => response.end(), timeoutSeconds * 1000);
    const bookmarkMs = this.#options.bookmarkIntervalMs ?? 0;
    if (query['allowWatchBookmarks'] === 'true' && bookmarkMs > 0) {
      const bookmark = (): void => {
        this.#send(watch, { type: 'BOOKMARK', object: { kind: resource.kind, apiVersion: resource.group ? `${resource.group}/${version}` : version, metadata: { resourceVersion: String(this.#rv) } } });
        watch.timers.bookmark = setTimeout(bookmark, bookmarkMs);
      };
      watch.timers.bookmark = setTimeout(bookmark, bookmarkMs);
    }
  }
}
