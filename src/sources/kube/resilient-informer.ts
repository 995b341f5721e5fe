// client-node's ListWatch informer, hardened against its known pitfalls: it stops for good on
// any watch or list error, its watch has no deadline, and it reconnects in a tight loop when a
// server keeps closing watches. 410 Gone it handles itself (relist, keeping its cache).
import type { KubernetesListObject, KubernetesObject } from '@kubernetes/client-node';
import { ListWatch, V1ListMeta, Watch } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { KubeConnection } from './kube-api.ts';
import { getJson } from './kube-api.ts';

export interface InformerTuning {
  /** Asked of the server for every watch, so it ends them and we re-watch (client-go uses 5-10 min). */
  readonly watchTimeoutSeconds: number;
  /** An open watch that delivers no event and no bookmark for this long is restarted. */
  readonly stallMs: number;
  /** Restart delay after an error, doubled per consecutive failure up to `backoffMaxMs`. */
  readonly backoffInitialMs: number;
  readonly backoffMaxMs: number;
  /** At most one new watch per this interval, however fast the server closes them. */
  readonly minWatchIntervalMs: number;
  readonly listTimeoutMs: number;
  /** Lists are read in pages of this many objects. */
  readonly pageSize: number;
}

export const DEFAULT_INFORMER_TUNING: InformerTuning = {
  watchTimeoutSeconds: 300,
  stallMs: 360_000,
  backoffInitialMs: 250,
  backoffMaxMs: 30_000,
  minWatchIntervalMs: 1000,
  listTimeoutMs: 60_000,
  pageSize: 500,
};

export interface InformerHandlers {
  upsert(object: KubernetesObject): void;
  remove(object: KubernetesObject): void;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

type WatchCallback = Parameters<Watch['watch']>[2];
type DoneCallback = Parameters<Watch['watch']>[3];

/** A Watch that asks for bookmarks and a server-side timeout, and reports each stream's life. */
class TrackedWatch extends Watch {
  streaming = false;
  lastActivity = Date.now();
  watchesStarted = 0;
  closed = false;
  #lastStart = 0;

  constructor(
    connection: KubeConnection,
    private readonly tuning: InformerTuning,
    private readonly onFirstWatch: () => void,
    private readonly onStreaming: () => void,
    private readonly labelSelector: string | undefined,
  ) {
    super(connection.config);
  }

  override async watch(path: string, queryParams: Record<string, string | number | boolean | undefined>, callback: WatchCallback, done: DoneCallback): Promise<AbortController> {
    const wait = this.#lastStart + this.tuning.minWatchIntervalMs - Date.now();
    if (wait > 0) await delay(wait);
    if (this.closed) return new AbortController();
    this.#lastStart = Date.now();
    this.watchesStarted++;
    // The informer only watches after its first list is in its cache.
    if (this.watchesStarted === 1) this.onFirstWatch();
    const life = { ended: false };
    const params = { ...queryParams, allowWatchBookmarks: true, timeoutSeconds: this.tuning.watchTimeoutSeconds, ...(this.labelSelector !== undefined ? { labelSelector: this.labelSelector } : {}) };
    const onEvent: WatchCallback = (phase, object, data) => {
      this.lastActivity = Date.now();
      callback(phase, object, data);
    };
    const onDone: DoneCallback = (error) => {
      life.ended = true;
      this.streaming = false;
      done(error);
    };
    try {
      const controller = await super.watch(path, params, onEvent, onDone);
      this.streaming = !life.ended;
      this.lastActivity = Date.now();
      if (this.streaming) this.onStreaming();
      return controller;
    } catch (error) {
      // Never reject: the informer would leave the rejection unhandled.
      onDone(error);
      return new AbortController();
    }
  }
}

export type InformerState = 'starting' | 'synced' | 'failing' | 'stopped';

/** One informer for one collection path, restarting itself until stopped. */
export class ResilientInformer {
  readonly path: string;
  readonly whenSynced: Promise<void>;
  #state: InformerState = 'starting';
  #synced = false;
  readonly #informer: ListWatch<KubernetesObject>;
  readonly #watch: TrackedWatch;
  readonly #tuning: InformerTuning;
  readonly #log: Logger;
  #failures = 0;
  #lastError: string | undefined;
  #restartTimer: NodeJS.Timeout | undefined;
  #watchdog: NodeJS.Timeout | undefined;
  #stopping = false;
  #markSynced: () => void = () => undefined;

  constructor(options: { connection: KubeConnection; path: string; apiVersion: string; kind: string; handlers: InformerHandlers; tuning: InformerTuning; log: Logger; labelSelector?: string }) {
    this.path = options.path;
    this.#tuning = options.tuning;
    this.#log = options.log.child({ informer: options.path });
    this.whenSynced = new Promise((resolve) => {
      this.#markSynced = resolve;
    });
    this.#watch = new TrackedWatch(
      options.connection,
      options.tuning,
      () => {
        this.#synced = true;
        this.#state = 'synced';
        this.#markSynced();
      },
      () => {
        this.#recovered();
      },
      options.labelSelector,
    );
    const list = (): Promise<KubernetesListObject<KubernetesObject>> => listAll(options.connection, options.path, options.apiVersion, options.kind, options.tuning, options.labelSelector);
    this.#informer = new ListWatch(options.path, this.#watch, list, false);
    const { handlers } = options;
    this.#informer.on('add', (object) => {
      handlers.upsert(object);
    });
    this.#informer.on('update', (object) => {
      handlers.upsert(object);
    });
    this.#informer.on('delete', (object) => {
      handlers.remove(object);
    });
    this.#informer.on('error', (error: unknown) => {
      this.#onError(error);
    });
  }

  get state(): InformerState {
    return this.#state;
  }

  get synced(): boolean {
    return this.#synced;
  }

  get lastError(): string | undefined {
    return this.#lastError;
  }

  start(): void {
    this.#stopping = false;
    this.#run();
    this.#watchdog = setInterval(() => {
      this.#checkStall();
    }, Math.max(50, Math.floor(this.#tuning.stallMs / 4)));
    this.#watchdog.unref();
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    this.#state = 'stopped';
    this.#watch.closed = true;
    clearTimeout(this.#restartTimer);
    clearInterval(this.#watchdog);
    await this.#informer.stop();
  }

  #run(): void {
    this.#informer.start().catch((error: unknown) => {
      this.#onError(error);
    });
  }

  #recovered(): void {
    if (this.#failures === 0) return;
    this.#log.info({ failures: this.#failures }, `${this.path}: watching again after ${this.#failures} failed attempts`);
    this.#failures = 0;
    this.#lastError = undefined;
    if (this.#synced) this.#state = 'synced';
  }

  #onError(error: unknown): void {
    // Our own stop aborts the request; that is not a failure to recover from.
    if (this.#stopping || (error instanceof Error && error.name === 'AbortError')) return;
    this.#failures++;
    this.#state = 'failing';
    const message = error instanceof Error ? error.message : String(error);
    this.#lastError = message;
    const backoff = Math.min(this.#tuning.backoffMaxMs, this.#tuning.backoffInitialMs * 2 ** Math.min(this.#failures - 1, 20));
    // One warning when the trouble starts, then quiet until it ends (no floods while the API is down).
    const level = this.#failures === 1 ? 'warn' : 'debug';
    this.#log[level]({ err: error, failures: this.#failures, retryInMs: backoff }, `${this.path}: ${message}; still serving what was last seen, retrying`);
    clearTimeout(this.#restartTimer);
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      if (!this.#stopping) this.#run();
    }, backoff);
    this.#restartTimer.unref();
  }

  #checkStall(): void {
    if (this.#stopping || !this.#watch.streaming) return;
    const silentMs = Date.now() - this.#watch.lastActivity;
    if (silentMs < this.#tuning.stallMs) return;
    this.#log.warn({ silentMs }, `${this.path}: the watch sent nothing (not even a bookmark) for ${Math.round(silentMs / 1000)} s; reconnecting`);
    this.#watch.streaming = false;
    this.#stopping = true;
    void this.#informer.stop();
    this.#stopping = false;
    this.#run();
  }
}

/** Lists a collection page by page; items get the kind and apiVersion that list responses leave off. */
async function listAll(connection: KubeConnection, path: string, apiVersion: string, kind: string, tuning: InformerTuning, labelSelector?: string): Promise<KubernetesListObject<KubernetesObject>> {
  const items: KubernetesObject[] = [];
  let resourceVersion: string;
  let next: string | undefined;
  do {
    const query: Record<string, string> = { limit: String(tuning.pageSize), ...(next ? { continue: next } : {}), ...(labelSelector !== undefined ? { labelSelector } : {}) };
    const page = (await getJson(connection, path, query, tuning.listTimeoutMs)) as { metadata?: { resourceVersion?: string; continue?: string }; items?: unknown };
    if (!Array.isArray(page.items)) throw new Error(`GET ${path}: the answer is not a list`);
    for (const item of page.items as KubernetesObject[]) items.push({ ...item, apiVersion: item.apiVersion ?? apiVersion, kind: item.kind ?? kind });
    resourceVersion = page.metadata?.resourceVersion ?? '';
    next = page.metadata?.continue || undefined;
  } while (next);
  return { apiVersion, kind: `${kind}List`, metadata: Object.assign(new V1ListMeta(), { resourceVersion }), items };
}
