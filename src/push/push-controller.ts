// Decides when and what to push: store changes are debounced into one new PushContext, the
// config keys they changed become a scope (which types and names may have changed), and every
// connected proxy is queued to be sent what changed for it.
import type { Logger } from 'pino';
import type { MeshConfig } from '../model/mesh-config.ts';
import type { PushContext } from '../model/push-context.ts';
import { buildPushContext } from '../model/push-context.ts';
import type { ConfigChanges } from '../model/config-changes.ts';
import { mergeChanges } from '../model/config-changes.ts';
import type { ConfigStore, StoreChange } from '../model/store.ts';
import { describeScope, scopeIsEmpty } from '../xds/server/push-scope.ts';
import { computeChangeScope } from './change-scope.ts';
import type { DebounceOptions } from './debounce.ts';
import { Debouncer } from './debounce.ts';
import type { PushChange } from './proxy-scope.ts';
import { widestScope } from './proxy-scope.ts';

export interface PushTarget {
  pushAll(): void;
  /** Sends only what `change` may have changed; `sourceAt` is when the first change was seen. */
  pushScoped?(change: PushChange, sourceAt?: number): void;
  connections(): readonly unknown[];
}

interface TimedChange {
  readonly change: StoreChange;
  /** performance.now() when the change reached the controller. */
  readonly at: number;
}

export interface PushRecord {
  readonly sequence: number;
  readonly at: Date;
  readonly reasons: readonly string[];
  readonly debounceMs: number;
  readonly durationMs: number;
  readonly proxies: number;
  /** Which types (and how many names) the push may have changed; 'all' for a full comparison. */
  readonly scope: Readonly<Record<string, string | number>>;
}

export class PushController {
  readonly #store: ConfigStore;
  #loggedIssues = new Set<string>();
  readonly #target: PushTarget;
  readonly #log: Logger;
  readonly #debouncer: Debouncer<TimedChange>;
  readonly #meshConfig: MeshConfig | undefined;
  #current: PushContext | undefined;
  #last: PushRecord | undefined;
  #unsubscribe: (() => void) | undefined;
  readonly #listeners = new Set<(push: PushContext, changes: ConfigChanges) => void>();

  constructor(options: { store: ConfigStore; target: PushTarget; log: Logger; debounce: DebounceOptions; meshConfig?: MeshConfig }) {
    this.#store = options.store;
    this.#meshConfig = options.meshConfig;
    this.#target = options.target;
    this.#log = options.log;
    this.#debouncer = new Debouncer(options.debounce, (changes, waited) => {
      const sourceAt = Math.min(...changes.map((c) => c.at));
      const reasons = [...new Set(changes.map((c) => `${c.change.sourceId}: ${c.change.reason}`))];
      this.#push(reasons, waited, sourceAt, mergeChanges(changes.map((c) => c.change.changes)));
    });
  }

  /** Builds the first PushContext from what the sources have published, then follows changes. */
  start(): PushContext {
    this.#unsubscribe = this.#store.onChange((change) => {
      this.#debouncer.add({ change, at: performance.now() });
    });
    this.#push(['initial'], 0, undefined, undefined);
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

  /** After each push, with the config keys it carries (every object, as added, for the first). */
  onPush(listener: (push: PushContext, changes: ConfigChanges) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Pushes pending changes now (shutdown, tests). */
  flush(): void {
    this.#debouncer.flush();
  }

  /** `changes`: the config keys changed since the last push; undefined for the first, which compares everything. */
  #push(reasons: string[], debounceMs: number, sourceAt: number | undefined, changes: ConfigChanges | undefined): void {
    const started = performance.now();
    const push = buildPushContext(this.#store.current(), this.#meshConfig);
    const { change, kinds } = computeChangeScope(this.#current, push, changes);
    this.#current = push;
    this.#logRuleIssues(push);
    const widest = widestScope(change);
    if (!scopeIsEmpty(widest)) {
      if (this.#target.pushScoped) this.#target.pushScoped(change, sourceAt);
      else this.#target.pushAll();
    }
    const durationMs = Math.round((performance.now() - started) * 100) / 100;
    const scopeView = describeScope(widest);
    this.#last = { sequence: push.sequence, at: push.builtAt, reasons, debounceMs, durationMs, proxies: this.#target.connections().length, scope: scopeView };
    this.#log.info(
      { sequence: push.sequence, reasons, changes: kinds, scope: scopeView, debounceMs, durationMs, proxies: this.#last.proxies, services: push.services.length },
      'push',
    );
    const carried = changes ?? this.#store.everything();
    for (const listener of this.#listeners) listener(push, carried);
  }

  /** What only the whole model can see (references, conflicts, ineffective rules): one log line when it first appears. */
  #logRuleIssues(push: PushContext): void {
    const current = new Set<string>();
    for (const { rule, issues, applied } of push.ruleStatus.values()) {
      const object = `${rule.meta.kind} ${rule.meta.namespace}/${rule.meta.name}`;
      for (const issue of issues) {
        const signature = [object, issue.code, issue.severity, issue.path, issue.message].join('\n');
        current.add(signature);
        if (this.#loggedIssues.has(signature)) continue;
        this.#log.warn(
          { code: issue.code, object, file: rule.meta.source.location, field: issue.path, severity: issue.severity, applied },
          `${issue.code}: ${object} in ${rule.meta.source.location}: ${issue.path}: ${issue.message}`,
        );
      }
    }
    this.#loggedIssues = current;
  }
}
