// An in-process Kubernetes API server that speaks list/watch as the real one does: one global
// resourceVersion, paginated lists, chunked watch streams, bookmarks, 410 Gone after
// compaction, discovery for CRDs, and faults on demand (dropped, stalled and refused connections).
// Writes as meshpilot's CA makes them: create (201, or 409 AlreadyExists), update (409 on a stale
// resourceVersion), and TokenReview against tokens a test registers.
import { writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { Socket } from 'node:net';
import { stringify } from 'yaml';

export type KubeObject = Record<string, unknown> & { metadata?: Record<string, unknown> };

export interface ResourceType {
  readonly group: string;
  readonly versions: readonly string[];
  readonly plural: string;
  readonly kind: string;
  readonly namespaced: boolean;
}

const BUILTIN_TYPES: readonly ResourceType[] = [
  { group: '', versions: ['v1'], plural: 'namespaces', kind: 'Namespace', namespaced: false },
  { group: '', versions: ['v1'], plural: 'services', kind: 'Service', namespaced: true },
  { group: '', versions: ['v1'], plural: 'pods', kind: 'Pod', namespaced: true },
  { group: '', versions: ['v1'], plural: 'endpoints', kind: 'Endpoints', namespaced: true },
  { group: 'discovery.k8s.io', versions: ['v1'], plural: 'endpointslices', kind: 'EndpointSlice', namespaced: true },
  { group: '', versions: ['v1'], plural: 'secrets', kind: 'Secret', namespaced: true },
  { group: '', versions: ['v1'], plural: 'configmaps', kind: 'ConfigMap', namespaced: true },
];

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

/** The Istio traffic CRDs, served at the given versions (old clusters serve only v1alpha3). */
export function istioCrds(versions: readonly string[] = ['v1', 'v1beta1', 'v1alpha3']): ResourceType[] {
  return [
    ['VirtualService', 'virtualservices'],
    ['DestinationRule', 'destinationrules'],
    ['ServiceEntry', 'serviceentries'],
    ['WorkloadEntry', 'workloadentries'],
    ['Sidecar', 'sidecars'],
  ].map(([kind = '', plural = '']) => ({ group: 'networking.istio.io', versions, plural, kind, namespaced: true }));
}

export const PEER_AUTHENTICATION_CRD: ResourceType = {
  group: 'security.istio.io',
  versions: ['v1', 'v1beta1'],
  plural: 'peerauthentications',
  kind: 'PeerAuthentication',
  namespaced: true,
};

/** Istio's security CRDs, served at v1 and v1beta1 as Istio 1.22+ serves them. */
export const ISTIO_SECURITY_CRDS: readonly ResourceType[] = [
  PEER_AUTHENTICATION_CRD,
  { group: 'security.istio.io', versions: ['v1', 'v1beta1'], plural: 'authorizationpolicies', kind: 'AuthorizationPolicy', namespaced: true },
];

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
  readonly timers: { end?: NodeJS.Timeout; bookmark?: NodeJS.Timeout };
}

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
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

async function readBody(request: IncomingMessage): Promise<KubeObject | undefined> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as KubeObject;
  } catch {
    return undefined;
  }
}

export class FakeKubeApi {
  readonly requests: RecordedRequest[] = [];
  readonly #options: FakeKubeApiOptions;
  readonly #server = createServer((request, response) => {
    void this.#handle(request, response);
  });
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
  #port = 0;

  private constructor(options: FakeKubeApiOptions) {
    this.#options = options;
    for (const type of BUILTIN_TYPES) this.#types.set(type.kind, type);
    this.#server.on('connection', (socket) => {
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
    return `http://${this.#options.host ?? '127.0.0.1'}:${this.#port}`;
  }

  get resourceVersion(): string {
    return String(this.#rv);
  }

  /** How many watch streams are open now. */
  openWatches(resource?: string): number {
    return [...this.#watches].filter((watch) => resource === undefined || watch.resource.plural === resource).length;
  }

  /** A kubeconfig for this server, as `kubectl config view --raw` would print one. */
  kubeconfig(): string {
    return stringify({
      apiVersion: 'v1',
      kind: 'Config',
      // client-node refuses plain http unless TLS verification is explicitly off.
      clusters: [{ name: 'fake', cluster: { server: this.url, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'fake', user: { token: this.#options.token ?? 'fake-token' } }],
      contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'fake' } }],
      'current-context': 'fake',
    });
  }

  async writeKubeconfig(path: string): Promise<void> {
    await writeFile(path, this.kubeconfig());
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
    const object = clone(input);
    const meta = (object.metadata = { ...metaOf(object) });
    const namespace = type.namespaced ? (typeof meta['namespace'] === 'string' ? meta['namespace'] : 'default') : undefined;
    if (namespace !== undefined) meta['namespace'] = namespace;
    const key = this.#key(type, namespace, String(meta['name']));
    const existing = this.#objects.get(key);
    meta['uid'] = existing ? metaOf(existing)['uid'] : (meta['uid'] ?? `uid-${key}`);
    meta['creationTimestamp'] = existing ? metaOf(existing)['creationTimestamp'] : (meta['creationTimestamp'] ?? new Date(Date.UTC(2026, 0, 1, 0, 0, this.#rv % 60)).toISOString());
    this.#objects.set(key, object);
    this.#record(existing ? 'MODIFIED' : 'ADDED', type, object);
    return clone(object);
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
    this.#objects.delete(key);
    this.#record('DELETED', type, object);
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

  #record(type: HistoryEvent['type'], resource: ResourceType, object: KubeObject): void {
    this.#rv++;
    const meta: Record<string, unknown> = (object.metadata = { ...metaOf(object), resourceVersion: String(this.#rv) });
    const event: HistoryEvent = { rv: this.#rv, type, resource, object: clone(object) };
    this.#history.push(event);
    for (const watch of this.#watches) {
      if (watch.resource === resource && (watch.namespace === undefined || watch.namespace === meta['namespace'])) {
        this.#send(watch, { type, object: this.#versioned(event.object, resource, watch.version) });
      }
    }
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

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', this.url);
    const query = Object.fromEntries(url.searchParams);
    this.requests.push({ method: request.method ?? 'GET', path: url.pathname, query });
    if (request.headers.authorization !== `Bearer ${this.#options.token ?? 'fake-token'}`) {
      this.#json(response, 401, status(401, 'Unauthorized', 'Unauthorized'));
      return;
    }
    const segments = url.pathname.split('/').filter((segment) => segment !== '');
    if (request.method === 'POST' || request.method === 'PUT') {
      const body = await readBody(request);
      if (request.method === 'POST' && url.pathname === TOKEN_REVIEW_PATH) {
        this.#tokenReview(response, body);
        return;
      }
      const target = this.#resolve(segments);
      if (!target || !BUILTIN_TYPES.includes(target.resource)) {
        this.#json(response, 405, status(405, 'MethodNotAllowed', 'this fake API server writes only built-in kinds and TokenReviews; change other objects in process'));
        return;
      }
      if (request.method === 'POST' && target.name === undefined) await this.#create(response, target, body);
      else if (request.method === 'PUT' && target.name !== undefined) this.#update(response, { ...target, name: target.name }, body);
      else this.#json(response, 405, status(405, 'MethodNotAllowed', `${request.method} is not allowed on ${url.pathname}`));
      return;
    }
    if (request.method !== 'GET') {
      this.#json(response, 405, status(405, 'MethodNotAllowed', 'this fake API server is read-only over HTTP; change objects in process'));
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
    if (query['watch'] === 'true' || query['watch'] === '1') {
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

  async #create(response: ServerResponse, target: { resource: ResourceType; version: string; namespace?: string }, body: KubeObject | undefined): Promise<void> {
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
    const name = body?.metadata?.['name'];
    if (typeof name !== 'string' || name === '') {
      this.#json(response, 422, status(422, 'Invalid', `${target.resource.kind} "" is invalid: metadata.name: Required value: name or generateName is required`));
      return;
    }
    if (this.#objects.has(this.#key(target.resource, target.namespace, name))) {
      this.#json(response, 409, { ...status(409, 'AlreadyExists', `${target.resource.plural} "${name}" already exists`), details: { name, kind: target.resource.plural } });
      return;
    }
    const stored = this.apply({ ...body, kind: target.resource.kind, metadata: { ...body?.metadata, namespace: target.namespace ?? 'default' } });
    this.#json(response, 201, this.#versioned(stored, target.resource, target.version));
  }

  #update(response: ServerResponse, target: { resource: ResourceType; version: string; namespace?: string; name: string }, body: KubeObject | undefined): void {
    const existing = this.#objects.get(this.#key(target.resource, target.namespace, target.name));
    if (!existing) {
      this.#json(response, 404, status(404, 'NotFound', `${target.resource.plural} "${target.name}" not found`));
      return;
    }
    const given = body?.metadata?.['resourceVersion'];
    if (given !== undefined && given !== metaOf(existing)['resourceVersion']) {
      this.#json(response, 409, status(409, 'Conflict', `Operation cannot be fulfilled on ${target.resource.plural} "${target.name}": the object has been modified; please apply your changes to the latest version and try again`));
      return;
    }
    const stored = this.apply({ ...body, kind: target.resource.kind, metadata: { ...body?.metadata, name: target.name, namespace: target.namespace ?? 'default' } });
    this.#json(response, 200, this.#versioned(stored, target.resource, target.version));
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
        resources: served.map((type) => ({ name: type.plural, singularName: type.kind.toLowerCase(), namespaced: type.namespaced, kind: type.kind, verbs: ['get', 'list', 'watch'] })),
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

  #resolve(segments: string[]): { resource: ResourceType; version: string; namespace?: string; name?: string } | undefined {
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
    const [plural, name, ...extra] = rest;
    if (extra.length > 0) return undefined;
    const resource = [...this.#types.values()].find((type) => type.group === group && type.plural === plural && type.versions.includes(version));
    if (!resource || (namespace !== undefined && !resource.namespaced)) return undefined;
    return { resource, version, ...(namespace !== undefined ? { namespace } : {}), ...(name !== undefined ? { name } : {}) };
  }

  #inScope(resource: ResourceType, namespace: string | undefined): KubeObject[] {
    return [...this.#objects.entries()]
      .filter(([key, object]) => key.startsWith(`${resource.kind}/`) && (namespace === undefined || metaOf(object)['namespace'] === namespace))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, object]) => object);
  }

  #list(response: ServerResponse, target: { resource: ResourceType; version: string; namespace?: string }, query: Record<string, string>): void {
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
    const all = this.#inScope(resource, namespace);
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

  #watch(response: ServerResponse, target: { resource: ResourceType; version: string; namespace?: string }, query: Record<string, string>): void {
    const { resource, version, namespace } = target;
    const from = query['resourceVersion'] ?? '';
    const fromRv = Number(from);
    const expired = from !== '' && from !== '0' && fromRv < this.#compactedThrough;
    if (expired && this.#options.expiry === 'http-410') {
      this.#json(response, 410, status(410, 'Expired', `too old resource version: ${from} (${this.#compactedThrough})`));
      return;
    }
    response.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    response.flushHeaders();
    const watch: OpenWatch = { resource, version, namespace, response, stalled: false, timers: {} };
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
      for (const object of this.#inScope(resource, namespace)) this.#send(watch, { type: 'ADDED', object: this.#versioned(object, resource, version) });
    } else {
      for (const event of this.#history) {
        if (event.rv > fromRv && event.resource === resource && (namespace === undefined || metaOf(event.object)['namespace'] === namespace)) {
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
