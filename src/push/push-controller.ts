// Decides when to push: store changes are debounced into one new PushContext, then every
// connected proxy is sent what changed for it.
import type { Logger } from 'pino';
import type { MeshConfig } from '../model/mesh-config.ts';
import type { PushContext } from '../model/push-context.ts';
import { buildPushContext } from '../model/push-context.ts';
import type { ConfigStore, StoreChange } from '../model/store.ts';
import type { DebounceOptions } from './debounce.ts';
import { Debouncer } from './debounce.ts';

export interface PushTarget {
  pushAll(): void;
  connections(): readonly unknown[];
}

export interface PushRecord {
  readonly sequence: number;
  readonly at: Date;
  readonly reasons: readonly string[];
  readonly debounceMs: number;
  readonly durationMs: number;
  readonly proxies: number;
}

export class PushController {
  readonly #store: ConfigStore;
  readonly #target: PushTarget;
  readonly #log: Logger;
  readonly #debouncer: Debouncer<StoreChange>;
  readonly #meshConfig: MeshConfig | undefined;
  #current: PushContext | undefined;
  #last: PushRecord | undefined;
  #unsubscribe: (() => void) | undefined;
  readonly #listeners = new Set<(push: PushContext) => void>();

  constructor(options: { store: ConfigStore; target: PushTarget; log: Logger; debounce: DebounceOptions; meshConfig?: MeshConfig }) {
    this.#store = options.store;
    this.#meshConfig = options.meshConfig;
    this.#target = options.target;
    this.#log = options.log;
    this.#debouncer = new Debouncer(options.debounce, (changes, waited) => {
      this.#push(changes.map((c) => `${c.sourceId}: ${c.reason}`), waited);
    });
  }

  /** Builds the first PushContext from what the sources have published, then follows changes. */
  start(): PushContext {
    this.#unsubscribe = this.#store.onChange((change) => {
      this.#debouncer.add(change);
    });
    this.#push(['initial'], 0);
    return this.#current as PushContext;
  }

  stop(): void {
    this.#unsubscribe?.();
    this.#debouncer.cancel();
  }

  current(): PushContext | undefined {
    return this.#current;
  }

  lastPush(): PushRecord | undefined {
    return this.#last;
  }

  onPush(listener: (push: PushContext) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Pushes pending changes now (shutdown, tests). */
  flush(): void {
    this.#debouncer.flush();
  }

  #push(reasons: string[], debounceMs: number): void {
    const started = performance.now();
    const push = buildPushContext(this.#store.current(), this.#meshConfig);
    this.#current = push;
    this.#target.pushAll();
    const durationMs = Math.round((performance.now() - started) * 100) / 100;
    this.#last = { sequence: push.sequence, at: push.builtAt, reasons, debounceMs, durationMs, proxies: this.#target.connections().length };
    this.#log.info(
      { sequence: push.sequence, reasons, debounceMs, durationMs, proxies: this.#last.proxies, services: push.services.length },
      'push',
    );
    for (const listener of this.#listeners) listener(push);
  }
}
