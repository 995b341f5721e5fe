// The per-stream protocol of Envoy's xds_protocol as tables: what a client sends, what the
// source holds, and what the stream answers and records. No transport and no generators: a
// fake source holds a few named resources per type, and each step says what the proxy sees.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Proxy } from '../src/model/proxy.ts';
import type { JsonObject } from '../src/xds/proto-json.ts';
import { EnvoyResource } from '../src/xds/resource.ts';
import type { DeltaDiscoveryRequest, DiscoveryRequest } from '../src/xds/server/messages.ts';
import { decodeDeltaDiscoveryRequest, decodeDiscoveryRequest, encodeDeltaDiscoveryRequestJson, encodeDiscoveryRequestJson } from '../src/xds/server/messages.ts';
import { SharedLists } from '../src/xds/server/shared-lists.ts';
import type { PlannedResponse, ProtocolEvent, ResourceSource } from '../src/xds/server/stream-protocol.ts';
import { StreamProtocol } from '../src/xds/server/stream-protocol.ts';
import type { Subscription } from '../src/xds/server/subscription.ts';
import { SubscriptionPool } from '../src/xds/server/subscription.ts';
import { syncStatus } from '../src/xds/server/watch-state.ts';
import type { ResourceTypeUrl, ShortType } from '../src/xds/type-urls.ts';
import { PUSH_ORDER, SHORT_TYPE, TYPE_BY_SHORT } from '../src/xds/type-urls.ts';

const NODE = { id: 'sidecar~10.0.0.1~productpage-v1-0.default~default.svc.cluster.local', user_agent_name: 'envoy' };

/** A resource named `name` whose content is `content` (a different content is a different version). */
function resource(typeUrl: ResourceTypeUrl, name: string, content = 'v1'): EnvoyResource {
  const json: JsonObject =
    typeUrl === TYPE_BY_SHORT.eds
      ? { cluster_name: name, endpoints: [{ locality: { zone: content } }] }
      : typeUrl === TYPE_BY_SHORT.cds
        ? { name, type: 'EDS', alt_stat_name: content }
        : typeUrl === TYPE_BY_SHORT.lds
          ? { name, stat_prefix: content }
          : { name, internal_only_headers: [content] };
  return new EnvoyResource(typeUrl, name, json);
}

/** The control plane's side: a few resources per type, one push after another. */
class FakeSource implements ResourceSource {
  sequence = 1;
  #byType = new Map<ResourceTypeUrl, readonly EnvoyResource[]>();

  /** `spec` is `name` or `name=content`; every list is a new array, as every push's are. */
  set(short: ShortType, specs: readonly string[]): ReadonlySet<string> {
    const typeUrl = TYPE_BY_SHORT[short];
    const before = new Map((this.#byType.get(typeUrl) ?? []).map((r) => [r.name, r.version]));
    const list = specs.map((spec) => {
      const [name = '', content] = spec.split('=');
      return resource(typeUrl, name, content);
    });
    this.#byType.set(typeUrl, list);
    this.sequence++;
    // What a push's change scope would name: every name whose bytes differ, or that came or went.
    const changed = new Set(list.filter((r) => before.get(r.name) !== r.version).map((r) => r.name));
    for (const name of before.keys()) if (!list.some((r) => r.name === name)) changed.add(name);
    return changed;
  }

  generate(typeUrl: ResourceTypeUrl, _proxy: Proxy, names?: readonly string[]): readonly EnvoyResource[] {
    const all = this.#byType.get(typeUrl) ?? [];
    return names ? all.filter((r) => names.includes(r.name)) : all;
  }

  subscribed(typeUrl: ResourceTypeUrl, proxy: Proxy, subscription: Subscription): readonly EnvoyResource[] {
    return this.generate(typeUrl, proxy, subscription.names);
  }
}

/** One step: a request (`reply` answers the type's last response: ack, nack or stale for the one before), or a change in the source. */
type Step =
  | { readonly sotw: ShortType; readonly names?: readonly string[]; readonly reply?: 'ack' | 'nack' | 'stale'; readonly expect: readonly string[] }
  | {
      readonly delta: ShortType;
      readonly subscribe?: readonly string[];
      readonly unsubscribe?: readonly string[];
      readonly initial?: Readonly<Record<string, string>>;
      readonly reply?: 'ack' | 'nack' | 'stale';
      readonly expect: readonly string[];
    }
  | { readonly change: ShortType; readonly to: readonly string[]; readonly expect: readonly string[] };

interface Case {
  readonly name: string;
  /** The source before the first step. */
  readonly source?: Partial<Record<ShortType, readonly string[]>>;
  readonly steps: readonly Step[];
  /** syncStatus of each type at the end. */
  readonly status?: Partial<Record<ShortType, string>>;
}

/** `cds a,b #1` is the stream's first response, a CDS with a and b; Delta adds `-x` for removed names. */
function describeResponse(planned: PlannedResponse): string {
  const names = planned.resources.map((r) => r.name).join(',') || '(none)';
  const removed = planned.removed.length > 0 ? ` -${planned.removed.join(',')}` : '';
  return `${SHORT_TYPE[planned.typeUrl]} ${names}${removed} #${planned.nonce.slice(planned.nonce.indexOf('-') + 1)}`;
}

function describeEvent(event: ProtocolEvent): string | undefined {
  switch (event.kind) {
    case 'identified':
      return undefined;
    case 'unserved-type':
      return `unserved ${event.typeUrl}`;
    case 'stale-nonce':
      return `stale ${SHORT_TYPE[event.typeUrl]}${event.ignored ? ' (ignored)' : ''}`;
    case 'ack':
      return `ack ${SHORT_TYPE[event.typeUrl]} #${event.ack.nonce.slice(event.ack.nonce.indexOf('-') + 1)}`;
    case 'nack':
      return `nack ${SHORT_TYPE[event.typeUrl]} #${event.nack.nonce.slice(event.nack.nonce.indexOf('-') + 1)}`;
  }
}

/** Plays a case on one stream, as the connection does with a client that always reads. */
function play(mode: 'sotw' | 'delta', testCase: Case): { seen: string[][]; stream: StreamProtocol } {
  const source = new FakeSource();
  for (const [short, specs] of Object.entries(testCase.source ?? {})) source.set(short as ShortType, specs);
  const stream = new StreamProtocol({ id: 's', mode, shared: { subscriptions: new SubscriptionPool(), lists: new SharedLists() } });
  const sent = new Map<ResourceTypeUrl, PlannedResponse[]>();
  const at = new Date(0);
  const respond = (typeUrl: ResourceTypeUrl, out: string[]): void => {
    const planned = stream.respond(typeUrl, source, at);
    if (!planned) return;
    sent.set(typeUrl, [...(sent.get(typeUrl) ?? []), planned]);
    out.push(describeResponse(planned));
  };
  const answered = (typeUrl: ResourceTypeUrl, reply: 'ack' | 'nack' | 'stale' | undefined): PlannedResponse | undefined => {
    const list = sent.get(typeUrl) ?? [];
    return reply === 'stale' ? list.at(-2) : reply ? list.at(-1) : undefined;
  };
  let first = true;
  const seen = testCase.steps.map((step) => {
    const out: string[] = [];
    if ('change' in step) {
      const changed = source.set(step.change, step.to);
      stream.enqueue(new Map([[TYPE_BY_SHORT[step.change], changed]]));
      for (const typeUrl of PUSH_ORDER) respond(typeUrl, out);
      return out;
    }
    const node = first ? { node: NODE } : {};
    first = false;
    const typeUrl = TYPE_BY_SHORT['sotw' in step ? step.sotw : step.delta];
    const last = answered(typeUrl, step.reply);
    const reply = last ? { response_nonce: last.nonce, ...(step.reply === 'nack' ? { error_detail: { code: 3, message: 'rejected' } } : {}) } : {};
    const outcome =
      'sotw' in step
        ? stream.request(sotwRequest({ ...node, ...reply, type_url: typeUrl, resource_names: [...(step.names ?? [])], version_info: last?.version ?? '' }), at)
        : stream.deltaRequest(
            deltaRequest({
              ...node,
              ...reply,
              type_url: typeUrl,
              resource_names_subscribe: [...(step.subscribe ?? [])],
              resource_names_unsubscribe: [...(step.unsubscribe ?? [])],
              initial_resource_versions: { ...step.initial },
            }),
            at,
          );
    for (const event of outcome.events) {
      const line = describeEvent(event);
      if (line) out.push(line);
    }
    for (const answer of outcome.answer) respond(answer, out);
    return out;
  });
  return { seen, stream };
}

const sotwRequest = (json: Record<string, unknown>): DiscoveryRequest => decodeDiscoveryRequest(encodeDiscoveryRequestJson(json as never));
const deltaRequest = (json: Record<string, unknown>): DeltaDiscoveryRequest => decodeDeltaDiscoveryRequest(encodeDeltaDiscoveryRequestJson(json as never));

function runCases(mode: 'sotw' | 'delta', cases: readonly Case[]): void {
  for (const testCase of cases) {
    it(testCase.name, () => {
      const { seen, stream } = play(mode, testCase);
      assert.deepEqual(
        seen,
        testCase.steps.map((s) => s.expect),
      );
      for (const [short, status] of Object.entries(testCase.status ?? {})) {
        assert.equal(syncStatus(stream.watches.get(TYPE_BY_SHORT[short as ShortType])), status, `${short} status`);
      }
    });
  }
}

// Versions the fake source gives `a=v2` and so on differ from `a` (content v1).
describe('SotW, one stream against a fake source', () => {
  runCases('sotw', [
    {
      name: 'a first CDS request without names is a wildcard: every cluster, then silence after the ACK and the same request again',
      source: { cds: ['a', 'b'] },
      steps: [
        { sotw: 'cds', expect: ['cds a,b #1'] },
        { sotw: 'cds', reply: 'ack', expect: ['ack cds #1'] },
        { sotw: 'cds', reply: 'ack', expect: ['ack cds #1'] },
      ],
      status: { cds: 'SYNCED' },
    },
    {
      name: '"*" is a wildcard too, and explicit names after it narrow the subscription; an empty list then means nothing',
      source: { lds: ['l1', 'l2'] },
      steps: [
        { sotw: 'lds', names: ['*'], expect: ['lds l1,l2 #1'] },
        { sotw: 'lds', names: ['l2'], reply: 'ack', expect: ['ack lds #1', 'lds l2 #2'] },
        { sotw: 'lds', names: [], reply: 'ack', expect: ['ack lds #2', 'lds (none) #3'] },
      ],
    },
    {
      name: 'an EDS name that does not exist is answered when it appears, and only the changed load assignment is sent',
      source: { eds: ['a'] },
      steps: [
        { sotw: 'eds', names: ['a', 'b'], expect: ['eds a #1'] },
        { sotw: 'eds', names: ['a', 'b'], reply: 'ack', expect: ['ack eds #1'] },
        { change: 'eds', to: ['a', 'b'], expect: ['eds b #2'] },
        { change: 'eds', to: ['a=v2', 'b'], expect: ['eds a #3'] },
      ],
    },
    {
      name: 'a subscription that names nothing existing yet sends nothing',
      steps: [{ sotw: 'rds', names: ['9080'], expect: [] }],
      status: { rds: 'NOT SENT' },
    },
    {
      name: 'a reply to a superseded response is ignored, new names in it included',
      source: { eds: ['a', 'b'] },
      steps: [
        { sotw: 'eds', names: ['a'], expect: ['eds a #1'] },
        { sotw: 'eds', names: ['a', 'b'], expect: ['eds a,b #2'] },
        { sotw: 'eds', names: ['b'], reply: 'stale', expect: ['stale eds (ignored)'] },
        { sotw: 'eds', names: ['a', 'b'], reply: 'ack', expect: ['ack eds #2'] },
      ],
      status: { eds: 'SYNCED' },
    },
    {
      name: 'a NACK is recorded and nothing is sent again until the source changes',
      source: { cds: ['a'] },
      steps: [
        { sotw: 'cds', expect: ['cds a #1'] },
        { sotw: 'cds', reply: 'nack', expect: ['nack cds #1'] },
        { change: 'cds', to: ['a=v2'], expect: ['cds a #2'] },
      ],
      status: { cds: 'STALE' },
    },
    {
      name: 'a changed cluster is sent with every cluster, and its held load assignment again after it (Envoy warms it)',
      source: { cds: ['a', 'b'], eds: ['a', 'b'] },
      steps: [
        { sotw: 'cds', expect: ['cds a,b #1'] },
        { sotw: 'eds', names: ['a', 'b'], expect: ['eds a,b #2'] },
        { change: 'cds', to: ['a=v2', 'b'], expect: ['cds a,b #3', 'eds a #4'] },
      ],
    },
    {
      name: 'a push that changes nothing the client holds sends nothing',
      source: { cds: ['a'] },
      steps: [
        { sotw: 'cds', expect: ['cds a #1'] },
        { change: 'cds', to: ['a'], expect: [] },
      ],
    },
    {
      name: 'unsubscribed load assignments are forgotten: subscribing again sends them whole',
      source: { eds: ['a', 'b'] },
      steps: [
        { sotw: 'eds', names: ['a', 'b'], expect: ['eds a,b #1'] },
        { sotw: 'eds', names: ['a'], reply: 'ack', expect: ['ack eds #1', 'eds a #2'] },
        { change: 'eds', to: ['a', 'b=v2'], expect: [] },
        { sotw: 'eds', names: ['a', 'b'], reply: 'ack', expect: ['ack eds #2', 'eds a,b #3'] },
      ],
    },
  ]);

  it('a per-type service serves its type only, and an empty type URL means that type', () => {
    const source = new FakeSource();
    source.set('cds', ['a']);
    const stream = new StreamProtocol({ id: 's', mode: 'sotw', onlyType: TYPE_BY_SHORT.cds, shared: { subscriptions: new SubscriptionPool(), lists: new SharedLists() } });
    const other = stream.request(sotwRequest({ node: NODE, type_url: TYPE_BY_SHORT.lds }), new Date(0));
    assert.deepEqual(other.events.map(describeEvent), [undefined, `unserved ${TYPE_BY_SHORT.lds}`]);
    const own = stream.request(sotwRequest({ type_url: '' }), new Date(0));
    assert.deepEqual(own.answer, [TYPE_BY_SHORT.cds, TYPE_BY_SHORT.eds]);
    assert.equal(stream.respond(TYPE_BY_SHORT.cds, source, new Date(0))?.resources.length, 1);
  });

  it('names proxyless gRPC clients by their user agent, or by asking for host:port listeners', () => {
    const shared = { subscriptions: new SubscriptionPool(), lists: new SharedLists() };
    const byAgent = new StreamProtocol({ id: 'a', mode: 'sotw', shared });
    byAgent.request(sotwRequest({ node: { id: 'x', user_agent_name: 'gRPC Node' }, type_url: TYPE_BY_SHORT.lds, resource_names: ['reviews:9080'] }), new Date(0));
    assert.equal(byAgent.proxy?.generator, 'grpc');
    const byNames = new StreamProtocol({ id: 'b', mode: 'sotw', shared });
    byNames.request(sotwRequest({ node: { id: 'y', user_agent_name: 'other' }, type_url: TYPE_BY_SHORT.lds, resource_names: ['reviews.default.svc.cluster.local:9080'] }), new Date(0));
    assert.equal(byNames.proxy?.generator, 'grpc');
    const envoy = new StreamProtocol({ id: 'c', mode: 'sotw', shared });
    envoy.request(sotwRequest({ node: NODE, type_url: TYPE_BY_SHORT.lds }), new Date(0));
    assert.equal(envoy.proxy?.generator, 'envoy');
    assert.equal(envoy.proxy.id, NODE.id);
  });
});

describe('Delta, one stream against a fake source', () => {
  runCases('delta', [
    {
      name: 'a first CDS request without names is a wildcard, and an ACK that changes nothing sends nothing',
      source: { cds: ['a', 'b'] },
      steps: [
        { delta: 'cds', expect: ['cds a,b #1'] },
        { delta: 'cds', reply: 'ack', expect: ['ack cds #1'] },
      ],
      status: { cds: 'SYNCED' },
    },
    {
      name: 'a subscribed name that does not exist comes back in removed_resources, and is sent when it appears',
      source: { eds: ['a'] },
      steps: [
        { delta: 'eds', subscribe: ['a', 'missing'], expect: ['eds a -missing #1'] },
        { change: 'eds', to: ['a', 'missing'], expect: ['eds missing #2'] },
        { change: 'eds', to: ['missing'], expect: ['eds (none) -a #3'] },
      ],
    },
    {
      name: 'a reconnecting client is spared what it says it holds (initial_resource_versions)',
      source: { cds: ['a', 'b'] },
      steps: [{ delta: 'cds', subscribe: ['*'], initial: { a: resource(TYPE_BY_SHORT.cds, 'a').version, b: 'old' }, expect: ['cds b #1'] }],
    },
    {
      name: 'a reconnecting client that says it holds a cluster no longer served is told to drop it, the rest compared whole',
      source: { cds: ['a', 'b'] },
      steps: [{ delta: 'cds', subscribe: ['*'], initial: { a: resource(TYPE_BY_SHORT.cds, 'a').version, b: 'old', gone: 'v0' }, expect: ['cds b -gone #1'] }],
    },
    {
      name: 'a reconnecting client that holds everything current is sent nothing, and is in sync',
      source: { cds: ['a', 'b'] },
      steps: [{ delta: 'cds', subscribe: ['*'], initial: { a: resource(TYPE_BY_SHORT.cds, 'a').version, b: resource(TYPE_BY_SHORT.cds, 'b').version }, expect: [] }],
      status: { cds: 'SYNCED' },
    },
    {
      name: 'a client that held everything current falls out of sync when the source changes, until it ACKs',
      source: { cds: ['a'] },
      steps: [
        { delta: 'cds', subscribe: ['*'], initial: { a: resource(TYPE_BY_SHORT.cds, 'a').version }, expect: [] },
        { change: 'cds', to: ['a=v2'], expect: ['cds a #1'] },
      ],
      status: { cds: 'STALE' },
    },
    {
      name: 'an unsubscribed and re-subscribed resource is sent again, unchanged as it is',
      source: { eds: ['a', 'b'] },
      steps: [
        { delta: 'eds', subscribe: ['a', 'b'], expect: ['eds a,b #1'] },
        { delta: 'eds', unsubscribe: ['b'], reply: 'ack', expect: ['ack eds #1'] },
        { delta: 'eds', subscribe: ['b'], expect: ['eds b #2'] },
      ],
    },
    {
      name: 'a reply to a superseded response records nothing, but its subscription changes count',
      source: { eds: ['a', 'b'] },
      steps: [
        { delta: 'eds', subscribe: ['a'], expect: ['eds a #1'] },
        { delta: 'eds', subscribe: ['b'], expect: ['eds b #2'] },
        { delta: 'eds', unsubscribe: ['a'], reply: 'stale', expect: ['stale eds'] },
        { change: 'eds', to: ['a=v2', 'b'], expect: [] },
      ],
      status: { eds: 'STALE' },
    },
    {
      name: 'a NACK shows as ERROR, and the rejected resource is not sent again',
      source: { lds: ['l1'] },
      steps: [
        { delta: 'lds', expect: ['lds l1 #1'] },
        { delta: 'lds', reply: 'nack', expect: ['nack lds #1'] },
      ],
      status: { lds: 'ERROR' },
    },
    {
      name: 'a changed cluster brings its load assignment again; an unchanged one does not',
      source: { cds: ['a', 'b'], eds: ['a', 'b'] },
      steps: [
        { delta: 'cds', expect: ['cds a,b #1'] },
        { delta: 'eds', subscribe: ['a', 'b'], expect: ['eds a,b #2'] },
        { change: 'cds', to: ['a', 'b=v2'], expect: ['cds b #3', 'eds b #4'] },
        { change: 'cds', to: ['a'], expect: ['cds (none) -b #5'] },
      ],
    },
  ]);

  it('records what the proxy rejected as it held it when the NACK came, whatever the same request unsubscribes', () => {
    const source = new FakeSource();
    source.set('eds', ['a', 'b']);
    const stream = new StreamProtocol({ id: 's', mode: 'delta', shared: { subscriptions: new SubscriptionPool(), lists: new SharedLists() } });
    stream.deltaRequest(deltaRequest({ node: NODE, type_url: TYPE_BY_SHORT.eds, resource_names_subscribe: ['a', 'b'] }), new Date(0));
    const sent = stream.respond(TYPE_BY_SHORT.eds, source, new Date(0));
    assert.ok(sent);
    const outcome = stream.deltaRequest(
      deltaRequest({ type_url: TYPE_BY_SHORT.eds, response_nonce: sent.nonce, error_detail: { code: 3, message: 'b is bad' }, resource_names_unsubscribe: ['b'] }),
      new Date(0),
    );
    const nack = outcome.events.find((e) => e.kind === 'nack');
    assert.deepEqual(nack?.kind === 'nack' ? nack.rejected?.resources.map((r) => r.name) : undefined, ['a', 'b']);
    assert.deepEqual(stream.watches.get(TYPE_BY_SHORT.eds)?.sent?.resources.map((r) => r.name), ['a']);
  });
});

describe('nonces', () => {
  it('count per stream: two streams of one server start alike, and neither moves the other', () => {
    const source = new FakeSource();
    source.set('cds', ['a']);
    const shared = { subscriptions: new SubscriptionPool(), lists: new SharedLists() };
    const streams = ['1', '2'].map((id) => new StreamProtocol({ id, mode: 'sotw', shared }));
    const nonces = streams.map((stream) => {
      stream.request(sotwRequest({ node: NODE, type_url: TYPE_BY_SHORT.cds }), new Date(0));
      return stream.respond(TYPE_BY_SHORT.cds, source, new Date(0))?.nonce;
    });
    assert.deepEqual(nonces, ['1-1', '2-1']);
  });
});
