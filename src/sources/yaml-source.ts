// The --config-dir source: every YAML/JSON file under a directory, re-read on change, published
// to the config store. A broken file or object never takes down what was last good.
import type { FSWatcher } from 'node:fs';
import { watch } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { MeshpilotError } from '../errors.ts';
import { ruleLabel } from '../model/rules.ts';
import type { GatewayApiOptions } from './gateway-api-listeners.ts';
import type { ConfigStore, RejectedObject, SourceSnapshot } from '../model/store.ts';
import type { DirectoryState } from './config-dir.ts';
import { applyLastGood, EMPTY_DIRECTORY_STATE, errorCode, isHidden, readDirectory } from './config-dir.ts';
import type { ConvertedObjects } from './kube-objects.ts';
import { assembleObjects } from './kube-objects.ts';
import { ProblemLog, type LoggedProblem } from './problem-log.ts';

export type { DirectoryListing, DirectoryState, FileRead, TextReadResult } from './config-dir.ts';
export { applyLastGood, listConfigFiles, loadDirectory, readDirectory, readObjectsFromText } from './config-dir.ts';

/** How soon to retry when the directory itself cannot be read. */
const RETRY_MS = 1000;

export interface YamlSourceOptions {
  readonly dir: string;
  readonly store: ConfigStore;
  readonly log: Logger;
  /** Quiet period after the last file event before re-reading; bursts (editor saves, git checkouts) coalesce. */
  readonly quietMs?: number;
  /** Which GatewayClasses meshpilot serves. */
  readonly gatewayApi?: GatewayApiOptions;
}

function rejectionSignature(rejected: RejectedObject): string {
  return JSON.stringify([rejected.source.location, rejected.object, rejected.issues, rejected.keptLastGood]);
}

export class YamlSource {
  readonly sourceId: string;
  readonly #dir: string;
  readonly #store: ConfigStore;
  readonly #log: Logger;
  readonly #quietMs: number;
  readonly #gatewayApi: GatewayApiOptions | undefined;
  readonly #watchers = new Map<string, FSWatcher>();
  readonly #changedFiles = new Set<string>();
  #state: DirectoryState = EMPTY_DIRECTORY_STATE;
  #published: string | undefined;
  readonly #problemLog: ProblemLog;
  #timer: NodeJS.Timeout | undefined;
  #burstStartedAt: number | undefined;
  #reloading: Promise<void> | undefined;
  #nextReload: Promise<void> | undefined;
  #nextReason = '';
  #stopped = false;

  constructor(options: YamlSourceOptions) {
    this.#dir = path.resolve(options.dir);
    this.sourceId = `file:${this.#dir}`;
    this.#store = options.store;
    this.#quietMs = options.quietMs ?? 75;
    this.#gatewayApi = options.gatewayApi;
    this.#log = options.log.child({ source: this.sourceId });
    this.#problemLog = new ProblemLog(this.#log);
  }

  /** Reads the directory, publishes the first snapshot, then watches for changes. */
  async start(): Promise<void> {
    const info = await stat(this.#dir).catch(() => undefined);
    if (!info?.isDirectory()) {
      throw new MeshpilotError(
        'MP_CONFIG',
        `--config-dir ${this.#dir} ${info ? 'is not a directory' : 'does not exist'}: point --config-dir at a directory of Kubernetes/Istio YAML files`,
      );
    }
    await readdir(this.#dir).catch((error: unknown) => {
      throw new MeshpilotError('MP_CONFIG', `--config-dir ${this.#dir} cannot be read (${errorCode(error) ?? String(error)}): check its permissions`, { cause: error });
    });
    this.#stopped = false;
    this.#watch(this.#dir);
    await this.#reload('initial load');
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const watcher of this.#watchers.values()) watcher.close();
    this.#watchers.clear();
    await this.#reloading;
  }

  /** Re-reads now (a SIGHUP, or tests that cannot wait for file events). */
  async reload(reason = 'reload requested'): Promise<void> {
    await this.#reload(reason);
  }

  #watch(directory: string): void {
    if (this.#watchers.has(directory)) return;
    try {
      // One non-recursive watch per directory: works on every platform and survives rename-on-save.
      const watcher = watch(directory, { persistent: false }, (_event, filename) => {
        this.#schedule(filename ? path.relative(this.#dir, path.join(directory, filename)) : undefined);
      });
      watcher.on('error', (error) => {
        this.#log.debug({ directory, err: error }, 'watch ended; re-reading the directory');
        watcher.close();
        this.#watchers.delete(directory);
        this.#schedule(undefined);
      });
      this.#watchers.set(directory, watcher);
    } catch (error) {
      this.#log.warn({ directory, err: error }, `cannot watch ${directory}; its changes are picked up with the next change elsewhere`);
    }
  }

  #syncWatchers(directories: readonly string[]): void {
    const wanted = new Set(directories);
    for (const [directory, watcher] of this.#watchers) {
      if (!wanted.has(directory)) {
        watcher.close();
        this.#watchers.delete(directory);
      }
    }
    for (const directory of directories) this.#watch(directory);
  }

  #schedule(changed: string | undefined): void {
    if (this.#stopped) return;
    if (changed !== undefined) this.#changedFiles.add(changed.split(path.sep).join('/'));
    const now = Date.now();
    this.#burstStartedAt ??= now;
    // A steady stream of events must not postpone the reload forever.
    if (this.#timer && now - this.#burstStartedAt > this.#quietMs * 10) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#burstStartedAt = undefined;
      const files = [...this.#changedFiles].filter((file) => !file.split('/').some(isHidden));
      this.#changedFiles.clear();
      void this.#reload(files.length > 0 ? `changed: ${files.sort().join(', ')}` : 'directory changed');
    }, this.#quietMs);
  }

  /** Serialises reloads: requests during a reload share one more reload that starts after it. */
  #reload(reason: string): Promise<void> {
    if (this.#reloading) {
      this.#nextReason = reason;
      this.#nextReload ??= this.#reloading.then(() => {
        this.#nextReload = undefined;
        return this.#stopped ? undefined : this.#reload(this.#nextReason);
      });
      return this.#nextReload;
    }
    this.#reloading = this.#readAndPublish(reason).finally(() => {
      this.#reloading = undefined;
    });
    return this.#reloading;
  }

  /** Never rejects: a failed reload is logged and the last published snapshot stays. */
  async #readAndPublish(reason: string): Promise<void> {
    try {
      await this.#readAndPublishOnce(reason);
    } catch (error) {
      this.#log.error({ err: error, reason }, `reloading ${this.#dir} failed; still serving its last good config`);
    }
  }

  async #readAndPublishOnce(reason: string): Promise<void> {
    let read: Awaited<ReturnType<typeof readDirectory>>;
    try {
      read = await readDirectory(this.#dir);
    } catch (error) {
      // The whole directory vanishing is more likely a remount than an intent to delete every service.
      this.#log.error({ err: error }, `cannot read ${this.#dir}; still serving its last good config, retrying`);
      this.#syncWatchers([]);
      if (!this.#stopped && !this.#timer) {
        this.#timer = setTimeout(() => {
          this.#timer = undefined;
          void this.#reload('retry after read error');
        }, RETRY_MS);
      }
      return;
    }
    if (this.#stopped) return;
    this.#syncWatchers(read.listing.directories);
    const { state, parsed } = applyLastGood(this.#state, read.reads);
    this.#state = state;
    const converted = assembleObjects(parsed, this.#gatewayApi ? { gatewayApi: this.#gatewayApi } : {});
    const snapshot: SourceSnapshot = { services: converted.services, endpoints: converted.endpoints, rules: converted.rules, rejected: converted.rejected, warnings: converted.warnings, routeStatuses: converted.routeStatuses, gatewayStatuses: converted.gatewayStatuses };
    const signature = JSON.stringify(snapshot);
    if (signature === this.#published) {
      this.#log.debug({ reason }, 'files changed but the config they describe did not');
      return;
    }
    this.#published = signature;
    this.#logRejections(converted);
    this.#store.publish(this.sourceId, snapshot, reason);
    this.#log.info(
      {
        reason,
        files: read.reads.length,
        services: snapshot.services.length,
        endpoints: snapshot.endpoints.length,
        rules: snapshot.rules.length,
        rejected: snapshot.rejected.length,
        ...(Object.keys(converted.ignored).length > 0 ? { ignored: converted.ignored } : {}),
      },
      `published ${this.#dir}: ${snapshot.services.length} services, ${snapshot.endpoints.length} endpoints, ${snapshot.rules.length} rules, ${snapshot.rejected.length} rejected`,
    );
  }

  /** One warn line per rejected object or rule warning, logged when it first appears (no floods). */
  #logRejections(converted: ConvertedObjects): void {
    const rejections = converted.rejected.map((rejected): LoggedProblem => {
      const first = rejected.issues.find((issue) => issue.severity === 'error') ?? rejected.issues[0];
      const code = first?.code ?? 'MP_OBJECT_INVALID';
      const field = first?.path ?? '';
      const more = rejected.issues.length > 1 ? ` (and ${rejected.issues.length - 1} more)` : '';
      const kept = rejected.keptLastGood ? '; still serving its last good version' : '';
      return {
        signature: rejectionSignature(rejected),
        fields: { code, file: rejected.source.location, object: rejected.object, field, keptLastGood: rejected.keptLastGood, issues: rejected.issues },
        message: `${code}: ${rejected.object} in ${rejected.source.location}${field ? `: ${field}` : ''}: ${first?.message ?? 'rejected'}${more}${kept}`,
      };
    });
    const warned = [
      ...converted.rules.map((rule) => ({ object: ruleLabel(rule.meta), source: rule.meta.source, issues: rule.meta.warnings ?? [] })),
      ...converted.warnings,
    ];
    const warnings = warned.flatMap(({ object, source, issues }) =>
      issues.map((warning): LoggedProblem => ({
        signature: JSON.stringify([source.location, object, warning]),
        fields: { code: warning.code, file: source.location, object, field: warning.path, severity: 'warning' },
        message: `${warning.code}: ${object} in ${source.location}: ${warning.path}: ${warning.message}`,
      })),
    );
    this.#problemLog.report([...rejections, ...warnings]);
  }
}
