// NACK attribution: when a proxy rejects a response, name the resources it rejected and the
// rules that produced them, for the log, /debug/syncz and /debug/configz.
import type { PushContext } from '../model/push-context.ts';
import type { RuleRef } from '../xds/attribution.ts';
import { formatRef, rejectedResources, resourceOrigins } from '../xds/attribution.ts';
import type { ConnectionEvents, XdsConnection } from '../xds/server/connection.ts';
import { syncStatus } from '../xds/server/connection.ts';
import type { ResourceTypeUrl, ShortType } from '../xds/type-urls.ts';
import { SHORT_TYPE } from '../xds/type-urls.ts';

export interface RejectedResource {
  readonly name: string;
  readonly rules: readonly RuleRef[];
}

export interface NackAttribution {
  readonly connectionId: string;
  readonly proxy: string;
  readonly type: ShortType;
  readonly version: string;
  readonly nonce: string;
  readonly at: Date;
  readonly message: string;
  /** True when the NACK text named the resources; else every resource of the response is listed. */
  readonly named: boolean;
  readonly resources: readonly RejectedResource[];
}

export class NackLedger {
  readonly #latest = new Map<string, NackAttribution>();
  readonly #currentPush: () => PushContext | undefined;

  constructor(options: { currentPush: () => PushContext | undefined }) {
    this.#currentPush = options.currentPush;
  }

  readonly events: ConnectionEvents = {
    onNack: (connection, typeUrl, nack, rejected) => {
      const push = this.#currentPush();
      const { resources, named } = rejectedResources(nack.message, rejected?.resources ?? []);
      const entry: NackAttribution = {
        connectionId: connection.id,
        proxy: connection.proxy?.id ?? connection.id,
        type: SHORT_TYPE[typeUrl],
        version: nack.version,
        nonce: nack.nonce,
        at: nack.at,
        message: nack.message,
        named,
        resources: resources.map((r) => ({ name: r.name, rules: resourceOrigins(r, push, named ? nack.message : undefined, connection.proxy?.namespace) })),
      };
      this.#latest.set(`${connection.id}/${typeUrl}`, entry);
      const rules = [...new Set(entry.resources.flatMap((r) => r.rules.filter((x) => x.kind !== 'Service').map(formatRef)))];
      connection.log.warn(
        { code: 'MP_XDS_NACK', type: entry.type, resources: entry.resources.map((r) => r.name), rules, named },
        `MP_XDS_NACK: ${entry.proxy} rejected ${entry.type} ${entry.resources.map((r) => `"${r.name}"`).join(', ') || '(empty response)'}` +
          `${rules.length > 0 ? `, produced by ${rules.join(', ')}` : ''}: ${nack.message}`,
      );
    },
  };

  /** The attribution of a connection's current rejection of a type, if that type is in ERROR. */
  current(connection: XdsConnection, typeUrl: ResourceTypeUrl): NackAttribution | undefined {
    const watch = connection.watches.get(typeUrl);
    const entry = this.#latest.get(`${connection.id}/${typeUrl}`);
    return entry && syncStatus(watch) === 'ERROR' && watch?.nack?.nonce === entry.nonce ? entry : undefined;
  }

  /** Every current rejection among the live connections. */
  active(connections: readonly XdsConnection[]): NackAttribution[] {
    const live = new Map(connections.map((c) => [c.id, c]));
    for (const key of this.#latest.keys()) if (!live.has(key.slice(0, key.indexOf('/')))) this.#latest.delete(key);
    return connections.flatMap((c) => [...c.watches.keys()].map((t) => this.current(c, t)).filter((e): e is NackAttribution => e !== undefined));
  }
}
